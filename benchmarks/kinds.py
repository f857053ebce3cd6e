"""What each kind of document adds: the problem kinds (validation checks, sharp edges, the
contexts other skills hand work in) measured one by one and together, with their weights
chosen on dev-A and reported on dev-B and the hand-written sets.

Run from the repository root::

    python -m benchmarks.kinds                  # dev queries against the holdout corpus

The dev queries are validation messages and ``receives_from`` contexts of their gold skills,
so an index that holds those texts would read its own answers. They are measured against
``../shared/corpora/spawner-skills-holdout``, the same corpus less exactly the entries the
queries were taken from; the script refuses the full corpus for them (``--allow-leak``
overrides, to show the leak's size). The hand-written sets (symptoms, situations, off-topic)
were not taken from any corpus and are measured against the same holdout index.

One index holding every kind is built once (``open_ours``); each variant is that index with
some kinds left out (their documents and vectors dropped, BM25 rebuilt over the kept text, so
BM25 sees what the ranking sees), ranked by the library's own ``rank`` functions through
``benchmarks.variants.Bench``. Sharp edges do not exist in the shared corpus; their weight is
checked not to matter there and measured on the bundled skills by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # run as ``python benchmarks/kinds.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    default_queries,
    fail,
    holdout_skills,
    leak_check,
    require_data,
)
from benchmarks.variants import (  # noqa: E402
    Bench,
    Report,
    Row,
    bootstrap,
    load_queries_and_vectors,
    no_match,
    with_kind_weight,
)
from retriever.index.documents import (  # noqa: E402
    ANTI_PATTERN,
    CARD,
    HANDOFF_IN,
    PATTERN,
    RECEIVES,
    SECTION,
    SHARP_EDGE,
    TOPICS,
    TRIGGER,
    VALIDATION,
)
from retriever.search.rank import ScoringConfig  # noqa: E402

PROG = "kinds"
BASE_KINDS = (CARD, TRIGGER, TOPICS, PATTERN, ANTI_PATTERN, SECTION)
NEW_KINDS = (VALIDATION, RECEIVES, HANDOFF_IN, SHARP_EDGE)
WEIGHTS = (0.6, 0.8, 1.0, 1.2)


def sub_index(index, kinds):
    """``index`` with only the documents of ``kinds`` (vectors reused, BM25 rebuilt)."""
    from retriever.index.build import subset_index

    return subset_index(index, [i for i, d in enumerate(index.documents) if d.kind in kinds])


def bench_over(full, kinds, queries, vectors, dev_stem) -> Bench:
    """A ``Bench`` over ``full``'s index with only ``kinds`` indexed."""
    sub = sub_index(full.index, kinds)
    stand_in = SimpleNamespace(index=sub, skills=sub.skills, embedder=full.embedder)
    return Bench(stand_in, queries, vectors, dev_stem)


def by_source(bench: Bench, row: Row) -> dict[str, dict[str, float]]:
    """MRR@10 / R@5 of the dev queries split by where they came from (validation, receives)."""
    from retriever.authoring.evaluate import mean_metrics

    out = {}
    sources = bench.sources
    for source in sorted(set(sources.values())):
        per = [
            row.per_query[i]
            for i, q in enumerate(bench.queries)
            if sources.get(q.id) == source and row.per_query[i] is not None
        ]
        if per:
            m = mean_metrics(per)
            out[source] = {"n": int(m["n"]), "MRR@10": m["MRR@10"], "R@5": m["R@5"]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--skills",
        type=Path,
        default=None,
        help="corpus (default: ../shared/corpora/spawner-skills-holdout)",
    )
    p.add_argument("--dev", type=Path, default=None, help="dev query file (split by skill)")
    p.add_argument("--held-out", type=Path, action="append", default=None)
    p.add_argument("--offtopic", type=Path, default=HELD_OUT / "offtopic.jsonl")
    p.add_argument("--index", type=Path, default=None)
    p.add_argument(
        "--allow-leak",
        action="store_true",
        help="allow the dev queries against a corpus that holds them",
    )
    p.add_argument("--json-out", type=Path, default=RESULTS / "kinds.json")
    args = p.parse_args(argv)
    args.skills = args.skills or holdout_skills()
    args.dev = args.dev or default_queries()
    args.held_out = args.held_out or [HELD_OUT / "symptoms.jsonl", HELD_OUT / "situations.jsonl"]
    try:
        require_data(args.skills, [args.dev, *args.held_out, args.offtopic])
    except BenchError as e:
        fail(PROG, str(e))
    leak = leak_check(args.skills, [args.dev])
    if leak and not args.allow_leak:
        fail(PROG, leak)
    started = time.perf_counter()
    # The library indexes only some kinds; this benchmark measures all of them, so its index
    # (a folder of its own) holds every kind, and each variant leaves some out.
    import retriever.index.documents as documents_module

    documents_module.INDEXED_KINDS = documents_module.KINDS
    args.index = args.index or RESULTS / f"index-{args.skills.name}-all-kinds"
    full, queries, vectors = load_queries_and_vectors(args)
    sources = {q.id: q.source for q in queries if q.source}
    report_rows: dict[str, dict] = {}

    bench_cache: dict[tuple[str, ...], Bench] = {}  # one bench per set of kinds

    def measure(name: str, kinds, config: ScoringConfig) -> tuple[Row, Bench]:
        kinds = tuple(kinds)
        if kinds not in bench_cache:
            bench_cache[kinds] = bench_over(full, kinds, queries, vectors, args.dev.stem)
            bench_cache[kinds].sources = sources
        bench = bench_cache[kinds]
        row = Report(bench).ours("kinds", config, variant=name, record=False)
        report_rows[name] = {
            "kinds": list(kinds),
            "config": str(config.kind_weights),
            "results": row.results,
            "by_source": by_source(bench, row),
        }
        return row, bench

    default = ScoringConfig()
    base = replace(default, kind_weights=(("trigger", 0.6),))
    base_row, base_bench = measure("today: base kinds", BASE_KINDS, base)
    bm25_base = Report(base_bench).add("bm25", "bm25 over the base text", base_bench.bm25_run())
    rows = [(base_row, "")]
    # Forward selection on dev-A: each round adds the kind and weight that gain most, kept
    # only when the gain exceeds 0.005 MRR@10 (smaller gaps are noise); kinds chosen alone
    # and merely put together can undo each other.
    chosen: dict[str, float] = {}
    state, state_row = base, base_row
    while True:
        best = None
        for kind in (k for k in NEW_KINDS if k not in chosen):
            for w in WEIGHTS:
                config = with_kind_weight(state, kind, w)
                kinds = (*BASE_KINDS, *chosen, kind)
                label = " ".join(f"+{k} x{v:g}" for k, v in {**chosen, kind: w}.items())
                row, _ = measure(label, kinds, config)
                rows.append((row, kind))
                if best is None or _key(row) > _key(best[0]):
                    best = (row, kind, w, config)
        if best is None or _key(best[0])[0] - _key(state_row)[0] <= 0.005:
            break
        state_row, chosen[best[1]], state = best[0], best[2], best[3]
    together = state
    all_row, all_bench = measure("chosen", (*BASE_KINDS, *chosen), together)
    everything = base
    for kind in NEW_KINDS:
        everything = with_kind_weight(everything, kind, chosen.get(kind, 1.0))
    every_row, every_bench = measure("every kind", (*BASE_KINDS, *NEW_KINDS), everything)
    bm25_all = Report(all_bench).add("bm25", "bm25 over the same text", all_bench.bm25_run())
    bm25_every = Report(every_bench).add("bm25", "bm25 over every kind", every_bench.bm25_run())

    groups = ("dev-A", "dev-B", "dev", "symptoms", "situations")
    print(
        f"\n{'variant (MRR@10/R@5)':<56}"
        + "".join(f"{g:>13}" for g in groups)
        + f"{'dev-valid.':>13}{'dev-recv.':>13}"
    )
    for row, _ in rows + [
        (all_row, ""),
        (every_row, ""),
        (bm25_base, ""),
        (bm25_all, ""),
        (bm25_every, ""),
    ]:
        cells = [
            f"{row.results[g]['MRR@10']:.3f}/{row.results[g]['R@5']:.3f}"
            for g in groups
            if g in row.results
        ]
        src = by_source(base_bench, row)  # per-query metrics: every bench's queries align
        cells += [
            f"{src[k]['MRR@10']:.3f}/{src[k]['R@5']:.3f}" if k in src else "-"
            for k in ("validation", "receives")
        ]
        print(f"{row.variant[:56]:<56}" + "".join(f"{c:>13}" for c in cells))
    print(f"\nchosen on dev-A (> +0.005 MRR@10 over the base): {chosen or 'nothing'}")
    print(f"kind_weights to adopt: {together.kind_weights}")
    for name, row in (("chosen", all_row), ("every kind", every_row)):
        print(
            f"dev by source, {name}: "
            + "; ".join(
                f"{s} {m['MRR@10']:.3f}/{m['R@5']:.3f} (n={m['n']})"
                for s, m in by_source(all_bench if name == "chosen" else every_bench, row).items()
            )
        )
    margin = {
        g: {
            "MRR@10": all_row.results[g]["MRR@10"] - bm25_all.results[g]["MRR@10"],
            "R@5": all_row.results[g]["R@5"] - bm25_all.results[g]["R@5"],
        }
        for g in groups
    }
    print(
        "ours minus BM25 over the same text: "
        + "; ".join(f"{g} {m['MRR@10']:+.3f}/{m['R@5']:+.3f}" for g, m in margin.items())
    )
    gains = bootstrap(all_bench, [(all_row, base_row)]) if all_row is not base_row else {}
    refusal = no_match(all_bench, {"chosen": together})
    out = {
        "corpus": str(args.skills),
        "rows": report_rows,
        "chosen": chosen,
        "kind_weights": [list(x) for x in together.kind_weights],
        "margin_vs_bm25": margin,
        "bootstrap": gains,
        "no_match": refusal,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nwrote {args.json_out} ({out['seconds']:.0f} s)")
    return 0


def _key(row: Row) -> tuple[float, float]:
    return (round(row.results["dev-A"]["MRR@10"], 4), round(row.results["dev-A"]["R@5"], 4))


if __name__ == "__main__":
    sys.exit(main())
