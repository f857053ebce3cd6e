"""Quality of skill-retriever against the competitors, side by side, in one process.

Run from the repository root::

    python -m benchmarks.quality                         # the dev set
    python -m benchmarks.quality --queries ../shared/eval/dev-queries.jsonl \\
        --queries benchmarks/queries/symptoms.jsonl --queries benchmarks/queries/situations.jsonl \\
        --queries benchmarks/queries/offtopic.jsonl

Systems, all on the same corpus and queries:

- ``keyword``: the spawner MCP search. The lower-cased query split on whitespace; per term
  +10 when the skill's name contains it, +10 when its id (hyphens as spaces) does, +1 when its
  description does; zero scores dropped.
- ``bm25``: bm25s (Lucene BM25, k1=1.5, b=0.75) over each skill's indexed texts
  (``retriever.index.documents.skill_documents`` joined), English stopwords, Snowball stemming.
- ``description``: one all-MiniLM-L6-v2 vector per skill description, cosine.
- ``trigger-router``: every trigger an utterance (a skill without triggers gets its name as
  its one utterance: semantic-router refuses a route without utterances); the 5 utterances
  nearest the query, each skill scored by the mean score of its utterances among those 5
  (semantic-router's default ``top_k=5``, ``aggregation="mean"``).
- ``ours``: ``SkillRetriever`` with its default ``ScoringConfig``; ranking =
  ``rank(q, 10)`` (the ranked skills, without handoff targets).

Queries with ``"relevant": []`` (the off-topic set) are left out of the ranking metrics; for
them the table at the end gives how often ours flags the result as ``weak``.
Embeddings of the competitors and of the queries are cached under ``benchmarks/results/cache``
(keyed by model and text), our index under ``benchmarks/results/index-<corpus>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/quality.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    BenchError,
    BenchQuery,
    MemoEmbedder,
    Run,
    cached_encode,
    default_queries,
    fail,
    format_table,
    holdout_skills,
    leak_check,
    open_ours,
    read_queries,
    require_data,
    rounded,
    score_run,
    unknown_labels,
)

PROG = "quality"
SYSTEMS = ("keyword", "bm25", "description", "trigger-router", "ours-dense", "ours", "ours-tuned")
# A variant of ours: the first end-to-end ranking (multi-field dense only: best document +
# 0.1 x the next two, no trigger weight, no BM25), to show what the hybrid adds.
DENSE_ONLY = {"aggregation": "best+", "kind_weights": (), "lexical_weight": 0.0}
K = 10  # ranking depth every system returns
ROUTER_TOP_K = 5


# -- the competitors ------------------------------------------------------------------------


def keyword_run(queries: Sequence[BenchQuery], skills) -> Run:
    """The spawner MCP keyword search (see the module docstring)."""
    fields = [
        (s.id, s.name.lower(), s.id.replace("-", " ").lower(), s.description.lower())
        for s in skills
    ]
    run = {}
    for q in queries:
        terms = q.query.lower().split()
        scored = []
        for pos, (sid, name, spaced_id, desc) in enumerate(fields):
            score = sum(10 * (t in name) + 10 * (t in spaced_id) + (t in desc) for t in terms)
            if score > 0:
                scored.append((-score, pos, sid))
        scored.sort()
        run[q.id] = [sid for _, _, sid in scored[:K]]
    return run


class BM25:
    """bm25s over one text per item; ``stem`` uses PyStemmer's English Snowball stemmer."""

    def __init__(self, texts: Sequence[str], stem: bool = True) -> None:
        import bm25s

        self._bm25s = bm25s
        self.stemmer = None
        if stem:
            try:
                import Stemmer
            except ImportError as e:
                raise BenchError("BM25 with stemming needs PyStemmer: pip install PyStemmer") from e
            self.stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(
            list(texts), stopwords="en", stemmer=self.stemmer, show_progress=False
        )
        self.model = bm25s.BM25()
        self.model.index(tokens, show_progress=False)
        self.n = len(texts)

    def scores(self, query_texts: Sequence[str]):
        """A dense ``(queries, items)`` score matrix."""
        import numpy as np

        tokens = self._bm25s.tokenize(
            list(query_texts),
            stopwords="en",
            stemmer=self.stemmer,
            show_progress=False,
            return_ids=False,
        )
        out = np.zeros((len(query_texts), self.n), dtype=np.float32)
        for i, toks in enumerate(tokens):
            if toks:
                out[i] = self.model.get_scores(toks)
        return out


def bm25_run(queries: Sequence[BenchQuery], skills, stem: bool = True) -> Run:
    ids = [s.id for s in skills]
    from retriever.index.build import skill_texts  # what our own BM25 sees of a skill

    scores = BM25(skill_texts(skills), stem=stem).scores([q.query for q in queries])
    return top_k_run(queries, scores, ids)


def top_k_run(
    queries: Sequence[BenchQuery], scores, ids: Sequence[str], positive_only: bool = True
) -> Run:
    import numpy as np

    run = {}
    for q, row in zip(queries, scores, strict=True):
        order = np.argsort(-row, kind="stable")[:K]
        run[q.id] = [ids[i] for i in order if row[i] > 0 or not positive_only]
    return run


def description_vectors(skills, embedder):
    return cached_encode(embedder, [s.description for s in skills], "descriptions")


def description_run(queries: Sequence[BenchQuery], qvecs, skills, vectors) -> Run:
    return top_k_run(queries, qvecs @ vectors.T, [s.id for s in skills], positive_only=False)


def router_utterances(skills) -> list[tuple[str, str]]:
    return [(s.id, t) for s in skills for t in (s.triggers or (s.name,))]


def trigger_router_run(queries: Sequence[BenchQuery], qvecs, skills, vectors) -> Run:
    import numpy as np

    utterances = router_utterances(skills)
    sims = qvecs @ vectors.T
    run = {}
    k = min(ROUTER_TOP_K, len(utterances))
    for q, row in zip(queries, sims, strict=True):
        top = np.argsort(-row)[:k]
        per_skill: dict[str, list[float]] = defaultdict(list)
        for i in top:
            per_skill[utterances[i][0]].append(float(row[i]))
        ranked = sorted(per_skill.items(), key=lambda kv: -sum(kv[1]) / len(kv[1]))
        run[q.id] = [sid for sid, _ in ranked]
    return run


# -- the benchmark --------------------------------------------------------------------------


def ours_gains(answerable: Sequence[BenchQuery], runs: dict[str, Run]) -> dict:
    """Ours against each other system on the answerable queries: the MRR@10 and R@5 gains
    with their paired-bootstrap 95% intervals (printed, and returned for the JSON)."""
    from benchmarks.before_after import metrics, paired

    out: dict = {}
    if "ours" not in runs or not answerable:
        return out
    print()
    for name, run in runs.items():
        if name == "ours":
            continue
        row = {}
        for m, i in (("MRR@10", 0), ("R@5", 1)):
            theirs = [metrics(run.get(q.id, []), q.relevant)[i] for q in answerable]
            ours = [metrics(runs["ours"].get(q.id, []), q.relevant)[i] for q in answerable]
            gain, lo, hi = paired(theirs, ours)
            row[m] = {"gain": round(gain, 4), "ci95": [round(lo, 4), round(hi, 4)]}
        out[name] = row
        print(
            f"ours vs {name:<16}"
            + "  ".join(
                f"{m} {r['gain']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]"
                for m, r in row.items()
            )
            + "  (paired bootstrap, 95%)"
        )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--skills",
        type=Path,
        default=None,
        help="skills root (default: ../shared/corpora/spawner-skills-holdout, the corpus less "
        "the entries the dev queries were taken from)",
    )
    p.add_argument(
        "--allow-leak",
        action="store_true",
        help="measure the dev queries against a corpus that holds them (to show the leak)",
    )
    p.add_argument(
        "--queries",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="labelled query file, repeatable (default: ../shared/eval/dev-queries.jsonl)",
    )
    p.add_argument("--json-out", type=Path, default=RESULTS / "quality.json", metavar="FILE")
    p.add_argument(
        "--dump-misses",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the queries ours does not answer at rank 1, with its top 5 "
        "(JSON lines when FILE ends in .jsonl, else readable text)",
    )
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS[:-1]),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        metavar="DIR",
        help="our index folder (default: benchmarks/results/index-<corpus name>)",
    )
    p.add_argument(
        "--tuned-model",
        type=Path,
        default=None,
        metavar="DIR",
        help="a model folder written by `retrieve tune`: adds the system "
        "ours-tuned (ours, defaults, with that model)",
    )
    args = p.parse_args(argv)
    args.skills = (args.skills or holdout_skills()).expanduser()
    args.queries = [q.expanduser() for q in (args.queries or [default_queries()])]
    leak = leak_check(args.skills, args.queries)
    if leak and not args.allow_leak:
        p.error(leak)
    if leak:
        print(f"{PROG}: warning: {leak}", file=sys.stderr)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.tuned_model and "ours-tuned" not in args.systems:
        args.systems.append("ours-tuned")
    if "ours-tuned" in args.systems and not args.tuned_model:
        p.error("ours-tuned needs --tuned-model DIR (a folder written by `retrieve tune`)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_data(args.skills, args.queries)
        queries = read_queries(args.queries)
    except BenchError as e:
        fail(PROG, str(e))
    return run_benchmark(args, queries)


def run_benchmark(args: argparse.Namespace, queries: list[BenchQuery]) -> int:
    from retriever.index.embed import SentenceTransformerEmbedder
    from retriever.load import load_collection

    start = time.perf_counter()
    timings: dict[str, dict[str, float]] = {}

    t = time.perf_counter()
    report = load_collection([args.skills])
    skills = report.skills
    timings["load corpus (shared)"] = {"prep": time.perf_counter() - t, "query": 0.0}
    if not skills:
        fail(PROG, f"no skills found under {args.skills}")
    bad = unknown_labels(queries, {s.id for s in skills})
    for qid, sid in bad[:10]:
        print(f"{PROG}: warning: query {qid} names unknown skill '{sid}'", file=sys.stderr)
    answerable = [q for q in queries if q.relevant]
    no_answer = [q for q in queries if not q.relevant]

    embedder = MemoEmbedder(SentenceTransformerEmbedder())
    needs_vectors = {"description", "trigger-router", "ours", "ours-dense"} & set(args.systems)
    qvecs = None
    if needs_vectors:
        t = time.perf_counter()
        qvecs = cached_encode(embedder.inner, [q.query for q in queries], "queries")
        embedder.remember([q.query for q in queries], qvecs)
        timings["encode queries (shared)"] = {"prep": time.perf_counter() - t, "query": 0.0}

    runs: dict[str, Run] = {}
    ours_results = {}
    for name in args.systems:
        t = time.perf_counter()
        prep = 0.0
        if name == "keyword":
            runs[name] = keyword_run(queries, skills)
        elif name == "bm25":
            runs[name] = bm25_run(queries, skills)
        elif name == "description":
            vectors = description_vectors(skills, embedder.inner)
            prep = time.perf_counter() - t
            t = time.perf_counter()
            runs[name] = description_run(queries, qvecs, skills, vectors)
        elif name == "trigger-router":
            vectors = cached_encode(
                embedder.inner, [u for _, u in router_utterances(skills)], "utterances"
            )
            prep = time.perf_counter() - t
            t = time.perf_counter()
            runs[name] = trigger_router_run(queries, qvecs, skills, vectors)
        elif name in ("ours", "ours-dense"):
            from retriever.search.rank import ScoringConfig

            config = ScoringConfig(**DENSE_ONLY) if name == "ours-dense" else None
            retriever = open_ours(args.skills, embedder, config=config, index_dir=args.index)
            prep = time.perf_counter() - t
            why = retriever.rebuilt_because
            if why:
                print(f"  built our index ({why}) in {prep:.0f} s", file=sys.stderr)
            t = time.perf_counter()
            run = {}
            for q in queries:
                res = retriever.search(q.query, k=K)
                if name == "ours":
                    ours_results[q.id] = res
                run[q.id] = res.skill_ids
            runs[name] = run
        elif name == "ours-tuned":
            from retriever.index.embed import make_embedder

            # its own index (another model), embedded by the fast path like a user's would be
            folder = RESULTS / f"index-{args.skills.name}-tuned-{args.tuned_model.name}"
            retriever = open_ours(
                args.skills, make_embedder(str(args.tuned_model)), index_dir=folder
            )
            prep = time.perf_counter() - t
            t = time.perf_counter()
            runs[name] = {q.id: retriever.rank(q.query, K) for q in queries}
        total = time.perf_counter() - t
        timings[name] = {"prep": prep, "query": total}
    wall = time.perf_counter() - start

    # -- report ------------------------------------------------------------------------------
    files = list(dict.fromkeys(q.file for q in queries))
    sources = sorted({q.source for q in answerable})
    scored = {
        n: {"by_source": score_run(queries, r, "source"), "by_file": score_run(queries, r, "file")}
        for n, r in runs.items()
    }
    print(f"corpus: {args.skills} ({len(skills)} skills)")
    print(
        "queries: "
        + ", ".join(f"{f} ({sum(q.file == f for q in queries)})" for f in files)
        + f"; {len(answerable)} answerable, {len(no_answer)} with no answer"
    )
    print()
    print(format_table([(n, s["by_source"]["all"]) for n, s in scored.items()], "overall"))
    if len(files) > 1:
        for f in files:
            if any(q.file == f and q.relevant for q in queries):
                print()
                print(
                    format_table([(n, s["by_file"][f]) for n, s in scored.items()], f"file = {f}")
                )
    if len(sources) > 1:
        for src in sources:
            ids = {q.id for q in answerable if q.source == src}
            if len(files) > 1 and any(
                ids == {q.id for q in answerable if q.file == f} for f in files
            ):
                continue  # the same queries as a file's table above
            print()
            print(
                format_table(
                    [(n, s["by_source"][src]) for n, s in scored.items()], f"source = {src}"
                )
            )

    weak, refusal, patterns = {}, {}, {}
    if ours_results:
        flagged = lambda qs: sum(ours_results[q.id].weak for q in qs)  # noqa: E731
        weak = {
            "answerable": flagged(answerable) / max(len(answerable), 1),
            "no_answer": flagged(no_answer) / max(len(no_answer), 1) if no_answer else None,
        }
        print()
        print(
            f"ours flags 'weak' on {weak['answerable']:.1%} of answerable queries"
            + (
                f" and {weak['no_answer']:.1%} of {len(no_answer)} no-answer queries"
                if no_answer
                else ""
            )
        )
        # No match: answerable queries must be answered, off-topic ones refused.
        print()
        print(f"{'no match (ours)':<22}{'n':>6}{'answered':>10}{'refused':>9}")
        groups = [(f, [q for q in queries if q.file == f]) for f in files]
        for name, qs in groups:
            if not qs:
                continue
            refused = sum(ours_results[q.id].no_match for q in qs) / len(qs)
            refusal[name] = {"n": len(qs), "answered": 1 - refused, "refused": refused}
            print(f"{name:<22}{len(qs):>6}{1 - refused:>10.1%}{refused:>9.1%}")
        # Patterns: when a gold skill is in the top 5, does the first pattern returned
        # belong to a gold skill?
        print()
        print(
            f"{'top pattern (ours)':<22}{'n':>6}{'gold skill in top 5':>21}"
            f"{'its pattern first':>19}"
        )
        for name, qs in groups:
            found = [
                q
                for q in qs
                if q.relevant and set(q.relevant) & set(ours_results[q.id].skill_ids[:5])
            ]
            if not found:
                continue
            own = sum(
                bool(ours_results[q.id].patterns)
                and ours_results[q.id].patterns[0].skill_id in q.relevant
                for q in found
            ) / len(found)
            n_ans = sum(1 for q in qs if q.relevant)
            patterns[name] = {
                "n": n_ans,
                "gold_in_top5": len(found) / n_ans,
                "top_pattern_is_gold": own,
            }
            print(f"{name:<22}{n_ans:>6}{len(found) / n_ans:>21.1%}{own:>19.1%}")

    gains = ours_gains(answerable, runs)
    print()
    print(
        f"{'wall time (s)':<26}{'prep':>8}{'queries':>9}{'total':>8}"
        "   (prep: embedding or index build; cached after the first run)"
    )
    for name, tm in timings.items():
        print(f"{name:<26}{tm['prep']:>8.1f}{tm['query']:>9.1f}{tm['prep'] + tm['query']:>8.1f}")
    print(f"{'benchmark':<26}{'':>8}{'':>9}{wall:>8.1f}")

    out = {
        "skills": str(args.skills),
        "n_skills": len(skills),
        "query_files": [str(p) for p in args.queries],
        "n_queries": len(queries),
        "n_no_answer": len(no_answer),
        "systems": {
            n: {
                "overall": rounded(s["by_source"]["all"]),
                "by_source": {k: rounded(v) for k, v in s["by_source"].items() if k != "all"},
                "by_file": {k: rounded(v) for k, v in s["by_file"].items() if k != "all"},
                "seconds": {k: round(v, 2) for k, v in timings[n].items()},
            }
            for n, s in scored.items()
        },
        "ours_weak_rate": weak,
        "ours_no_match": refusal,
        "ours_top_pattern": patterns,
        "ours_gains": gains,
        "shared_seconds": {k: round(v["prep"], 2) for k, v in timings.items() if "shared" in k},
        "wall_seconds": round(wall, 2),
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json_out}")
    if args.dump_misses:
        if not ours_results:
            print(f"{PROG}: warning: --dump-misses needs the 'ours' system", file=sys.stderr)
        else:
            n = dump_misses(args.dump_misses, answerable, ours_results, runs.get("bm25"))
            print(f"wrote {n} misses to {args.dump_misses}")
    return 0


def dump_misses(path: Path, queries: Sequence[BenchQuery], results, bm25: Run | None) -> int:
    """Queries whose first answer is wrong, worst first, with ours' top 5 and why."""
    misses = []
    for q in queries:
        res = results[q.id]
        ids = res.skill_ids
        rank = next((i + 1 for i, s in enumerate(ids[:K]) if s in q.relevant), None)
        if rank == 1:
            continue
        top = [
            {
                "id": h.id,
                "score": round(h.score, 3),
                "via": h.via,
                "match": (f"{h.matches[0].field}: {h.matches[0].text[:120]}" if h.matches else ""),
            }
            for h in res.skills[:5]
        ]
        misses.append(
            {
                "id": q.id,
                "query": q.query,
                "relevant": list(q.relevant),
                "source": q.source,
                "rank": rank,
                "weak": res.weak,
                "top5": top,
                "bm25_top5": (bm25 or {}).get(q.id, [])[:5],
            }
        )
    misses.sort(key=lambda m: (-(m["rank"] or 99), m["id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for m in misses:
            if path.suffix in (".jsonl", ".json"):
                f.write(json.dumps(m) + "\n")
                continue
            where = f"rank {m['rank']}" if m["rank"] else "not in top 10"
            f.write(f"[{m['id']}] ({m['source']}, {where}{', weak' if m['weak'] else ''})\n")
            f.write(f"  query:    {m['query']}\n  relevant: {', '.join(m['relevant'])}\n")
            for i, h in enumerate(m["top5"], 1):
                f.write(f"  {i}. {h['id']:<28} {h['score']:.3f} {h['via']:<8} {h['match']}\n")
            if m["bm25_top5"]:
                f.write(f"  bm25: {', '.join(m['bm25_top5'])}\n")
            f.write("\n")
    return len(misses)


if __name__ == "__main__":
    raise SystemExit(main())
