"""Handoff precision: do the rules fire when they should, and only then?

Run from the repository root::

    python -m benchmarks.handoffs

``queries/handoffs.jsonl`` holds 64 labelled cases written by hand from randomly sampled rules
of the real corpus, before any gate was tried: 32 where a rule of ``from_skill`` must hand off
to the target, 32 where a common word of a rule ('bug', 'optimization', 'C#') appears in the
query incidentally and the target must not be handed to.

``queries/handoffs-lone.jsonl`` adds 40 cases of one-word rules written later from randomly
sampled real rules (20 where the query asks for the rule's work, "we also need help with
pricing", 20 where the word is incidental, "the backend already runs").
Each case is measured three ways: with the rules of its ``from_skill`` tried as if it led the
ranking (``SkillRetriever.handoffs_for``), end to end (the handoffs of ``search``, which lists
no handoff to a skill it already lists), and end to end counting a target reached either by a
handoff or by being listed. Rules compared: every keyword phrase fires on its own; a one-word
phrase fires only when the query is 0.5 similar to the target (issue 13); and the defaults,
where it also fires when the query asks for the work (``handoffs.word_asked``) and never when
its clause says the work is unwanted or done. The dev queries give how many handoffs fire per
query.
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
    p.add_argument(
        "--cases",
        type=Path,
        action="append",
        help="case files (default: queries/handoffs.jsonl and queries/handoffs-lone.jsonl)",
    )
    p.add_argument("--json-out", type=Path, default=RESULTS / "handoffs.json")
    args = p.parse_args(argv)
    skills_root = args.skills or shared_dir() / "corpora" / "spawner-skills-holdout"
    case_files = args.cases or [HELD_OUT / "handoffs.jsonl", HELD_OUT / "handoffs-lone.jsonl"]
    try:
        require_data(skills_root, [*case_files, default_queries()])
    except BenchError as e:
        fail(PROG, str(e))
    from retriever import SkillRetriever
    from retriever.authoring.evaluate import read_queries
    from retriever.search.rank import ScoringConfig

    cases = [
        {**json.loads(line), "file": f.stem}
        for f in case_files
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    dev = read_queries(default_queries())
    index = RESULTS / f"index-{skills_root.name}"
    after = SkillRetriever.open(skills_root, index_dir=index)

    def variant(**changes) -> SkillRetriever:
        config = replace(ScoringConfig(), **changes)
        return SkillRetriever.open(skills_root, index_dir=index, rebuild="never", config=config)

    systems = (
        # every keyword phrase fires on its own
        ("every word", variant(lone_word_rule_threshold=-1.0, asked_rule_threshold=None)),
        # issue 13's gate: a lone word fires only when the query is 0.5 similar to the target
        ("similarity", variant(asked_rule_threshold=None)),
        # now: also when the query asks for the work, never when it says it is not wanted
        ("asked", after),
    )
    out: dict = {"corpus": str(skills_root), "cases": len(cases)}
    print(
        f"{'rule':<12}{'mode':<12}{'cases':<15}{'precision':>10}{'recall':>8}{'tp':>5}{'fp':>5}"
        f"{'fn':>5}{'per dev query':>15}"
    )
    groups = [(f.stem, [c for c in cases if c["file"] == f.stem]) for f in case_files]
    if len(groups) > 1:
        groups.append(("all", cases))
    for name, r in systems:

        def from_skill(case, r=r) -> set[str]:
            return {h.to_skill for h in r.handoffs_for(case["query"], [case["from_skill"]])}

        def end_to_end(case, r=r) -> set[str]:
            return {h.to_skill for h in r.search(case["query"], k=5).handoffs}

        def listed(case, r=r) -> set[str]:
            """Handoff targets and listed skills: the target reached either way."""
            res = r.search(case["query"], k=5)
            return {h.to_skill for h in res.handoffs} | set(res.skill_ids)

        per_query = sum(len(r.search(q.query, k=5).handoffs) for q in dev) / len(dev)
        out[name] = {"handoffs_per_dev_query": per_query}
        for mode, fired_of in (("from_skill", from_skill), ("end to end", end_to_end),
                               ("or listed", listed)):  # fmt: skip
            for group, cs in groups:
                m = score(cs, fired_of)
                out[name].setdefault(mode, {})[group] = m
                print(
                    f"{name:<12}{mode:<12}{group:<15}{m['precision']:>10.2f}{m['recall']:>8.2f}"
                    f"{m['tp']:>5}{m['fp']:>5}{m['fn']:>5}"
                    + (f"{per_query:>15.2f}" if mode == "end to end" and group == "all" else "")
                )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
