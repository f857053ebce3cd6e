"""``retrieve eval --self`` on the 462 skills: how long it takes, and whether its per-skill
R@1 agrees with the dev queries measured against the holdout corpus.

Run from the repository root::

    python -m benchmarks.selfeval

The self-evaluation asks every skill's own questions (validation messages, sharp edges,
``receives_from`` contexts) of an index without them, over the full corpus. The dev queries
are one such entry per skill, removed from the holdout corpus and asked of it. Both measure
the same thing on different samples: a skill whose own questions find it should find its dev
query too. Printed: the time, the overall numbers side by side (by source), the per-skill
agreement (mean self R@1 of the skills whose dev query ranked first, and of those whose did
not; Spearman correlation of the two R@1 over skills), and the skills where they differ most.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/selfeval.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    BenchError,
    default_queries,
    default_skills,
    fail,
    holdout_skills,
    require_data,
)

PROG = "selfeval"


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    import numpy as np

    ra, rb = np.array(_ranks(a)), np.array(_ranks(b))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--json-out", type=Path, default=RESULTS / "selfeval.json")
    args = p.parse_args(argv)
    try:
        require_data(default_skills(), [default_queries()])
        require_data(holdout_skills(), [])
    except BenchError as e:
        fail(PROG, str(e))
    from retriever import SkillRetriever
    from retriever.authoring.evaluate import query_metrics, read_queries
    from retriever.authoring.selfeval import self_evaluate

    full = SkillRetriever.open(default_skills(), index_dir=RESULTS / "index-spawner-skills-onnx")
    started = time.perf_counter()
    report = self_evaluate(full.index, full.embedder, folds=args.folds)
    seconds = time.perf_counter() - started
    holdout = SkillRetriever.open(
        holdout_skills(), index_dir=RESULTS / "index-spawner-skills-holdout-onnx"
    )
    dev = read_queries(default_queries())
    dev_r1: dict[str, list[float]] = defaultdict(list)
    dev_source: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for q in dev:
        m = query_metrics(holdout.rank(q.query, 10), q.relevant)
        for sid in q.relevant:
            dev_r1[sid].append(m["R@1"])
        for name in ("R@1", "R@5", "MRR@10"):
            dev_source[q.source][name].append(m[name])
    self_r1 = {s.skill_id: s.metrics["R@1"] for s in report.per_skill}
    common = sorted(set(self_r1) & set(dev_r1))
    a = [self_r1[s] for s in common]
    b = [sum(dev_r1[s]) / len(dev_r1[s]) for s in common]
    hit = [x for x, y in zip(a, b, strict=True) if y >= 0.5]
    miss = [x for x, y in zip(a, b, strict=True) if y < 0.5]
    differ = sorted(
        ((abs(x - y), s, x, y) for s, x, y in zip(common, a, b, strict=True)), reverse=True
    )[:15]
    print(
        f"eval --self on {report.skills} skills: {report.questions} questions, {args.folds} "
        f"folds, {seconds:.0f} s ({seconds / 60:.1f} min) on this machine"
    )
    print("\n                       R@1      R@5   MRR@10")
    for source, ms in report.by_source.items():
        print(
            f"self  {source:<14}{ms['R@1']:>7.3f}  {ms['R@5']:>7.3f}  {ms['MRR@10']:>7.3f}"
            f"   (n={int(ms['n'])})"
        )
    for source, ms in sorted(dev_source.items()):
        n = len(ms["R@1"])
        print(
            f"dev   {source:<14}"
            + "".join(f"{sum(v) / n:>7.3f}  " for v in ms.values())
            + f" (n={n}, against the holdout)"
        )
    rho = spearman(a, b)
    print(
        f"\nper skill ({len(common)} skills with a dev query): mean self R@1 "
        f"{sum(hit) / max(1, len(hit)):.3f} where the dev query ranked first (n={len(hit)}), "
        f"{sum(miss) / max(1, len(miss)):.3f} where it did not (n={len(miss)}); Spearman "
        f"rho {rho:.3f}"
    )
    print("largest differences (skill: self R@1, dev R@1):")
    for _, s, x, y in differ:
        print(f"  {s:<36} {x:.2f}  {y:.2f}")
    out = {
        "seconds": round(seconds, 1),
        "selfeval": report.to_dict(),
        "agreement": {
            "skills": len(common),
            "spearman": rho,
            "self_r1_where_dev_hit": sum(hit) / max(1, len(hit)),
            "self_r1_where_dev_missed": sum(miss) / max(1, len(miss)),
            "largest_differences": [
                {"skill": s, "self_r1": x, "dev_r1": y} for _, s, x, y in differ
            ],
        },
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
