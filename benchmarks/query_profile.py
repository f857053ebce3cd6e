"""Where a query's time goes: the API query path split into its steps.

Run from the repository root::

    python -m benchmarks.query_profile                 # the 580 dev queries

Times each dev query through ``SkillRetriever.search`` on the ONNX fast path and, inside
the same calls, the query embedding (tokenisation + the model's forward pass) and the exact
scan of every document vector; the rest (BM25, trigger matching, partial sort, ranking,
handoffs, explanations) is the difference per query. The forward pass is also timed back to
back (all queries in a row, nothing between them), which shows what the rest of the query
path costs it in caches and thread wake-ups. Medians and p99 in milliseconds, and JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    BenchError,
    default_queries,
    default_skills,
    fail,
    require_data,
)
from benchmarks.speed import REPO, dev_queries, usual_index, write_report  # noqa: E402
from benchmarks.timing import query_times, stats  # noqa: E402


class StepTimer:
    """Wraps a callable and records how long each call took."""

    def __init__(self, fn):
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - start)


def profile(corpus: Path, index: Path) -> dict:
    from retriever import SkillRetriever
    from retriever.errors import RetrieverError
    from retriever.search.query import clean_query
    from retriever.search.rank import ScoringConfig

    queries = dev_queries()
    try:
        retriever = SkillRetriever.open(corpus, index_dir=index, backend="onnx", rebuild="never")
    except RetrieverError as e:  # e.g. no ONNX model: nothing of the fast path to profile
        raise SystemExit(f"query_profile: {e}") from None
    embedder = retriever.embedder
    # The scan is timed by wrapping the vector index's method for the run (an instance
    # attribute, removed afterwards).
    vectors = retriever.index.vectors
    candidates = ScoringConfig().candidates
    if not vectors.exact or candidates >= vectors.ntotal:
        raise SystemExit(
            "query_profile: this index is not searched by a full exact scan "
            f"({vectors.kind}, {vectors.ntotal} documents, {candidates} "
            "candidates); nothing to split into steps"
        )

    embed = StepTimer(embedder.encode_query)
    scan = StepTimer(vectors.inner_products)
    embedder.encode_query = embed  # instance attributes, removed below
    vectors.inner_products = scan
    try:
        total = query_times(retriever, queries)
    finally:
        del embedder.encode_query
        del vectors.inner_products
    n = len(queries)  # the timers also saw query_times' warm-up queries, first

    cleaned = [clean_query(q)[0] for q in queries]  # what search embeds
    back_to_back = []
    for q in cleaned:
        start = time.perf_counter()
        embedder.encode_query(q)
        back_to_back.append(time.perf_counter() - start)

    e, s, t = (np.array(x[-n:]) for x in (embed.seconds, scan.seconds, total))
    tokens = [embedder.count_tokens(q) + 2 for q in cleaned]  # + [CLS] and [SEP]
    return {
        "queries": len(queries),
        "tokens_median": float(np.median(tokens)),
        "search_s": stats(total),
        "embed_in_search_s": stats(e.tolist()),
        "scan_in_search_s": stats(s.tolist()),
        "rest_in_search_s": stats((t - e - s).tolist()),
        "embed_back_to_back_s": stats(back_to_back),
        "documents": vectors.ntotal,
    }


def print_report(r: dict) -> None:
    def row(name: str, key: str) -> None:
        s = r[key]
        print(f"  {name:<44} median {s['median'] * 1e3:7.3f} ms   p99 {s['p99'] * 1e3:7.3f} ms")

    print(
        f"Query path, {r['queries']} dev queries ({r['tokens_median']:.0f} tokens at the "
        f"median), {r['documents']} documents"
    )
    row("whole search", "search_s")
    row("  embedding (tokenise + forward pass)", "embed_in_search_s")
    row("  exact scan of every vector", "scan_in_search_s")
    row("  the rest (per query: whole - the two)", "rest_in_search_s")
    row("embedding back to back, nothing between", "embed_back_to_back_s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skills", type=Path, default=default_skills())
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        help="an index folder (default: the corpus's usual index, built if needed)",
    )
    p.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/query-profile.json")
    args = p.parse_args(argv)
    try:
        require_data(args.skills, [default_queries()])  # the file dev_queries() reads
    except BenchError as e:
        fail("query_profile", str(e))
    report = profile(args.skills, args.index or usual_index(args.skills))
    print_report(report)
    write_report(args.json_out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
