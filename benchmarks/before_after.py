"""Quality of two source trees on the same corpus and queries: what did a change gain?

Run from the repository root, with the older code checked out beside it::

    git worktree add /tmp/base main
    python -m benchmarks.before_after --base /tmp/base \\
        --skills ../shared/corpora/agent-skills-holdout \\
        --queries ../shared/eval/skillmd-dev-queries.jsonl

Each tree runs in its own fresh process (nothing of the other loaded) and opens, building it
first when missing, its own index of the corpus (``--index-dir``/base and /new: an index
made by one tree's document recipe is stale to the other). Per query it records the ranking
(``SkillRetriever.rank(query, 10)``, what an evaluation measures) and, from ``search(query,
5)``, whether the result is a no match and its confidence. Printed per query file, and for a
labelled file per half of its gold skills (dev-A / dev-B by ``variants.dev_half``, as every
choice of this project is made on dev-A): MRR@10 and R@5 of each side and the paired
bootstrap of the gain (2,000 resamples of the queries, 95% interval); the share answered
(labelled files) or refused (``"relevant": []``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, run_in_tree  # noqa: E402
from benchmarks.speed import REPO  # noqa: E402
from benchmarks.variants import dev_half  # noqa: E402

PROG = "before_after"

# One side, run as ``python -c`` in a fresh process with the tree first on sys.path: prints
# {query id: {"ranked": [...], "no_match": bool, "confidence": str}} as one JSON line.
_SIDE = r"""
import json, sys
tree, corpus, index, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, tree)
from pathlib import Path
import retriever
if not Path(retriever.__file__).resolve().is_relative_to(tree):
    raise SystemExit(f"imported retriever from {retriever.__file__}, not from {tree}")
from retriever import SkillRetriever
r = SkillRetriever.open(corpus, index_dir=index)
out = {}
for f in files:
    for line in open(f):
        if not line.strip():
            continue
        q = json.loads(line)
        res = r.search(q["query"], k=5)
        conf = getattr(res, "confidence", "none" if res.no_match else "high")
        out[q["id"]] = {"ranked": r.rank(q["query"], 10), "no_match": res.no_match,
                        "confidence": conf}
print(json.dumps(out))
"""


def run_side(tree: Path, corpus: Path, index: Path, files: list[Path]) -> dict:
    return run_in_tree(
        _SIDE, [str(tree), str(corpus), str(index), *map(str, files)], f"{PROG}: the side {tree}"
    )


def metrics(ranked: Sequence[str], relevant: Sequence[str]) -> tuple[float, float]:
    """MRR@10 and R@5 of one query, as ``retrieve eval`` computes them."""
    from retriever.authoring.evaluate import query_metrics

    m = query_metrics(ranked, relevant)
    return m["MRR@10"], m["R@5"]


def paired(before: list[float], after: list[float], n: int = 2000) -> tuple[float, float, float]:
    """The mean gain of ``after`` over ``before`` and its 95% paired-bootstrap interval."""
    import numpy as np

    d = np.array(after) - np.array(before)
    idx = np.random.default_rng(0).integers(0, len(d), size=(n, len(d)))
    lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def compare(queries: list[dict], base: dict, new: dict) -> dict:
    """Per half of the labelled queries (and all): both sides' metrics and the gains."""
    out: dict = {}
    labelled = [q for q in queries if q["relevant"]]
    if not labelled:
        n = len(queries)
        return {
            "all": {
                "n": n,
                "refused_before": sum(base[q["id"]]["no_match"] for q in queries) / n,
                "refused_after": sum(new[q["id"]]["no_match"] for q in queries) / n,
            }
        }
    for half in ("dev-A", "dev-B", "all"):
        qs = [q for q in labelled if half == "all" or dev_half(q["relevant"][0]) == half]
        if not qs:
            continue
        row: dict = {"n": len(qs)}
        for name, i in (("MRR@10", 0), ("R@5", 1)):
            b = [metrics(base[q["id"]]["ranked"], q["relevant"])[i] for q in qs]
            a = [metrics(new[q["id"]]["ranked"], q["relevant"])[i] for q in qs]
            gain, lo, hi = paired(b, a)
            row[name] = {
                "before": round(sum(b) / len(b), 4),
                "after": round(sum(a) / len(a), 4),
                "gain": round(gain, 4),
                "ci95": [round(lo, 4), round(hi, 4)],
            }
        row["answered_before"] = sum(not base[q["id"]]["no_match"] for q in qs) / len(qs)
        row["answered_after"] = sum(not new[q["id"]]["no_match"] for q in qs) / len(qs)
        out[half] = row
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, required=True, help="the older source tree")
    p.add_argument("--new", type=Path, default=REPO, help="the newer tree (default: this one)")
    p.add_argument("--skills", type=Path, required=True)
    p.add_argument("--queries", type=Path, action="append", required=True)
    p.add_argument("--index-dir", type=Path, default=None, help="default: results/ab-<corpus>")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    folder = args.index_dir or RESULTS / f"ab-{args.skills.name}"
    args.queries = [f.resolve() for f in args.queries]  # the sides run from /
    base = run_side(args.base.resolve(), args.skills, folder / "base", args.queries)
    new = run_side(args.new.resolve(), args.skills, folder / "new", args.queries)
    report: dict = {"base": str(args.base), "new": str(args.new), "skills": str(args.skills)}
    for f in args.queries:
        queries = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        report[f.stem] = compare(queries, base, new)
        print(f"\n== {f.stem} ({args.skills.name})")
        for half, row in report[f.stem].items():
            if "MRR@10" not in row:
                print(f"  {half:<6} n {row['n']:>4}  refused {row['refused_before']:.1%} -> "
                      f"{row['refused_after']:.1%}")  # fmt: skip
                continue
            cells = [
                f"{m} {row[m]['before']:.3f} -> {row[m]['after']:.3f} "
                f"({row[m]['gain']:+.3f} [{row[m]['ci95'][0]:+.3f}, {row[m]['ci95'][1]:+.3f}])"
                for m in ("MRR@10", "R@5")
            ]
            print(f"  {half:<6} n {row['n']:>4}  {'  '.join(cells)}  answered "
                  f"{row['answered_before']:.1%} -> {row['answered_after']:.1%}")  # fmt: skip
    out = args.json_out or RESULTS / f"before-after-{args.skills.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
