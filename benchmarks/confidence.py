"""Confidence: does the result answer real problems and refuse everything else, on each
collection and on collections together?

Run from the repository root::

    python -m benchmarks.confidence            # every collection below; ~25 min for a first
                                               # build of the two-corpus indexes, ~3 min warm

For each collection, the in-domain query sets (labelled) and the off-topic ones (``"relevant":
[]``) are searched twice through ``SkillRetriever.search``: with the rule before graded
confidence (no match when the best listed skill's score is under 0.41; expressed as a
``ScoringConfig`` whose evidence is that score alone) and with the defaults (high / low /
none from the evidence, see ``retriever.rank``). Printed per query file and half
(``split``: ``calibration`` or ``test``; files without it are halved by a hash of the id):
the share answered (confidence high or low), the share high, and for off-topic files the
share refused (none); for refused real problems, how often a labelled skill was in the top 3
anyway. The off-topic file's Agent Skills topics are left out on collections that hold the
Agent Skills corpus (they are answerable there).

The weights and thresholds of the defaults were fitted on the calibration halves only (a
logistic regression of in-domain against off-topic over the best listed score, the best
document cosine and the cosine with the collection's center, each collection weighted
equally, coefficients rounded; the none threshold at the 90th percentile of the off-topic
calibration queries' evidence on the collection where it is highest, the high threshold at
the 99th); the test halves are reported apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/confidence.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HELD_OUT, REPO, RESULTS, shared_dir  # noqa: E402

PROG = "confidence"
BEFORE = {  # the rule before graded confidence: the best listed score alone, under 0.41
    "evidence_best_weight": 0.0,
    "evidence_center_weight": 0.0,
    "no_match_threshold": 0.41,
    "high_confidence_threshold": 0.41,
}


def collections() -> list[tuple[str, list[Path], list[Path]]]:
    """``(name, roots, query files)``: each collection and what is asked of it."""
    s = shared_dir()
    c, e = s / "corpora", s / "eval"
    dev, skillmd = e / "dev-queries.jsonl", e / "skillmd-dev-queries.jsonl"
    mine = [HELD_OUT / f"{n}.jsonl" for n in ("symptoms", "situations", "problems")]
    off = [HELD_OUT / "offtopic.jsonl", HELD_OUT / "everyday.jsonl"]
    return [
        ("spawner-skills-holdout", [c / "spawner-skills-holdout"], [dev, *mine, *off]),
        ("spawner-skills", [c / "spawner-skills"], [*mine, *off]),
        ("agent-skills-holdout", [c / "agent-skills-holdout"], [skillmd, *off]),
        (
            "both-holdout",
            [c / "spawner-skills-holdout", c / "agent-skills-holdout"],
            [dev, skillmd, *mine, *off],
        ),
        ("both", [c / "spawner-skills", c / "agent-skills"], [*mine, *off]),
        ("bundled", [REPO / "skills"], [HELD_OUT / "gotchas.jsonl", *off]),
    ]


def half(q: dict) -> str:
    if q.get("split"):
        return q["split"]
    return (
        "calibration" if int(hashlib.sha256(q["id"].encode()).hexdigest(), 16) % 2 == 0 else "test"
    )


def measure(name: str, roots: list[Path], files: list[Path]) -> dict:
    from retriever import SkillRetriever
    from retriever.search.rank import ScoringConfig

    folder = RESULTS / f"index-{name}"
    after = SkillRetriever.open(roots if len(roots) > 1 else roots[0], index_dir=folder)
    before = SkillRetriever.open(
        roots if len(roots) > 1 else roots[0],
        index_dir=folder,
        rebuild="never",
        config=replace(ScoringConfig(), **BEFORE),
    )
    agent = any("agent-skills" in str(r) for r in roots)
    out: dict = {}
    for f in files:
        queries = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if agent:
            queries = [q for q in queries if q.get("topic") != "agent-skills"]
        for system, r in (("before", before), ("after", after)):
            for h in ("calibration", "test", "all"):
                qs = [q for q in queries if h == "all" or half(q) == h]
                if not qs:
                    continue
                results = [(q, r.search(q["query"], k=5)) for q in qs]
                answered = sum(not res.no_match for _, res in results)
                high = sum(res.confidence == "high" for _, res in results)
                refused_real = [(q, res) for q, res in results if q["relevant"] and res.no_match]
                in_top3 = sum(
                    bool(set(q["relevant"]) & set(res.skill_ids[:3])) for q, res in refused_real
                )
                out.setdefault(f.stem, {}).setdefault(system, {})[h] = {
                    "n": len(qs),
                    "in_domain": bool(qs[0]["relevant"]),
                    "answered": answered / len(qs),
                    "high": high / len(qs),
                    "refused": 1 - answered / len(qs),
                    "refused_with_gold_in_top3": in_top3,
                    "refused_real": len(refused_real),
                }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", help="collection name(s) to measure")
    p.add_argument("--json-out", type=Path, default=RESULTS / "confidence.json")
    args = p.parse_args(argv)
    report = {}
    for name, roots, files in collections():
        if args.only and name not in args.only:
            continue
        missing = [x for x in [*roots, *files] if not x.exists()]
        if missing:
            print(f"{PROG}: error: not found: {missing[0]}", file=sys.stderr)
            return 2
        report[name] = measure(name, roots, files)
        print(f"\n== {name}")
        print(f"  {'file':<22}{'half':<13}{'n':>5}   {'before':>16}   {'after':>30}")
        for stem, systems in report[name].items():
            for h in ("calibration", "test", "all"):
                if h not in systems["after"]:
                    continue
                b, a = systems["before"][h], systems["after"][h]
                if a["in_domain"]:
                    extra = (
                        f"  refused with gold in top 3: {a['refused_with_gold_in_top3']}"
                        f"/{a['refused_real']}"
                    )
                    now = f"answered {a['answered']:>6.1%} (high {a['high']:>6.1%})"
                    print(f"  {stem:<22}{h:<13}{a['n']:>5}   answered {b['answered']:>6.1%}"
                          f"   {now}{extra}")  # fmt: skip
                else:
                    print(f"  {stem:<22}{h:<13}{a['n']:>5}   refused  {b['refused']:>6.1%}"
                          f"   refused  {a['refused']:>6.1%} (high {a['high']:>6.1%})")  # fmt: skip
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
