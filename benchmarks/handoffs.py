"""Handoff precision: do the rules fire when they should, and only then?

Run from the repository root::

    python -m benchmarks.handoffs

``queries/handoffs.jsonl`` holds 64 labelled cases written by hand from randomly sampled rules
of the real corpus, before any gate was tried: 32 where a rule of ``from_skill`` must hand off
to the target, 32 where a common word of a rule ('bug', 'optimization', 'C#') appears in the
query incidentally and the target must not be handed to. Each case is measured two ways:
with the rules of its ``from_skill`` tried as if it led the ranking
(``SkillRetriever.handoffs_for``), and end to end (the handoffs of ``search``). Before: every
keyword phrase fires on its own (``lone_word_rule_threshold=-1``); after: the defaults, where
a one-word phrase fires only when the query is similar enough to the target. The dev queries
give how many handoffs fire per query either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/handoffs.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    default_queries,
    fail,
    require_data,
    shared_dir,
)

PROG = "handoffs"


def score(cases, fired_of) -> dict[str, float]:
    """Precision and recall over the cases' targets: a target that must fire and did is a
    true positive, one that must not and did a false positive."""
    tp = fp = fn = 0
    for case in cases:
        fired = fired_of(case)
        tp += sum(t in fired for t in case["expect_fire"])
        fn += sum(t not in fired for t in case["expect_fire"])
        fp += sum(t in fired for t in case["must_not_fire"])
    return {
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--skills",
        type=Path,
        default=None,
        help="corpus (default: ../shared/corpora/spawner-skills-holdout)",
    )
    p.add_argument("--cases", type=Path, default=HELD_OUT / "handoffs.jsonl")
    p.add_argument("--json-out", type=Path, default=RESULTS / "handoffs.json")
    args = p.parse_args(argv)
    skills_root = args.skills or shared_dir() / "corpora" / "spawner-skills-holdout"
    try:
        require_data(skills_root, [args.cases, default_queries()])
    except BenchError as e:
        fail(PROG, str(e))
    from retriever import SkillRetriever
    from retriever.authoring.evaluate import read_queries
    from retriever.search.rank import ScoringConfig

    cases = [json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()]
    dev = read_queries(default_queries())
    index = RESULTS / f"index-{skills_root.name}-onnx"
    after = SkillRetriever.open(skills_root, index_dir=index)
    before = SkillRetriever.open(
        skills_root,
        index_dir=index,
        rebuild="never",
        config=replace(ScoringConfig(), lone_word_rule_threshold=-1.0),
    )
    out: dict = {"corpus": str(skills_root), "cases": len(cases)}
    print(
        f"{'rule':<10}{'mode':<14}{'precision':>10}{'recall':>8}{'tp':>5}{'fp':>5}{'fn':>5}"
        f"{'per dev query':>15}"
    )
    for name, r in (("before", before), ("after", after)):

        def from_skill(case, r=r) -> set[str]:
            return {h.to_skill for h in r.handoffs_for(case["query"], [case["from_skill"]])}

        def end_to_end(case, r=r) -> set[str]:
            return {h.to_skill for h in r.search(case["query"], k=5).handoffs}

        forced, end = score(cases, from_skill), score(cases, end_to_end)
        per_query = sum(len(r.search(q.query, k=5).handoffs) for q in dev) / len(dev)
        out[name] = {"forced": forced, "end_to_end": end, "handoffs_per_dev_query": per_query}
        for mode, m in (("from_skill", forced), ("end to end", end)):
            print(
                f"{name:<10}{mode:<14}{m['precision']:>10.2f}{m['recall']:>8.2f}{m['tp']:>5}"
                f"{m['fp']:>5}{m['fn']:>5}"
                + (f"{per_query:>15.2f}" if mode == "end to end" else "")
            )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
