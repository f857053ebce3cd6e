"""`retrieve lint`: findings for skill authors; exit 1 on any error or warning (notes are
said, never a failure)."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import (
    UsageError,
    common_options,
    load_skills,
    open_retriever,
    positive,
    progress_bar,
)
from retriever.present.terminal import safe


def add_parser(sub) -> None:
    p = sub.add_parser("lint", help="check a collection for skill authors; exit 1 on findings")
    p.add_argument("--json", action="store_true", help="findings as JSON, for CI")
    p.add_argument(
        "--no-reach",
        action="store_true",
        help="skip the reachability check (it needs the index and model)",
    )
    p.add_argument(
        "--overlap",
        action="store_true",
        help="skills the retriever confuses: they take each other's questions in eval "
        "--self, or their cards are near-identical and share a trigger; most confused first",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="list every handoff to a skill outside the collection as an error (by default "
        "one note: published collections hand off to skills installed separately)",
    )
    p.add_argument(
        "--budget",
        action="store_true",
        help="the characters the names and descriptions take in Claude Code's skill listing "
        "(1%% of the context window, 8,000 characters by default) and which skills would be "
        "listed by name only",
    )
    p.add_argument(
        "--context-window",
        type=positive,
        metavar="TOKENS",
        help="--budget: the model's context window (default: Claude Code's 8,000-character "
        "fallback; $SLASH_COMMAND_TOOL_CHAR_BUDGET, when set, wins as it does in Claude Code)",
    )
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from retriever.authoring.lint import ERROR, NOTE, lint

    if args.context_window and not args.budget:
        raise UsageError("--context-window goes with --budget")
    report = load_skills(args)
    budget = None
    if args.budget:
        from retriever.authoring.budget import budget_of, listing_budget

        try:
            chars, basis = budget_of(args.context_window)
        except ValueError as e:
            raise UsageError(str(e)) from None
        budget = listing_budget(report.skills, chars, basis)
    rank, bar, retriever = None, None, None
    if (not args.no_reach or args.overlap) and report.skills:
        retriever = open_retriever(args)
    if not args.no_reach and retriever is not None:
        rank = lambda q: retriever.rank(q, 10)  # noqa: E731
        bar = progress_bar(len(report.skills), "reachability", args.json)
    findings = lint(report, rank, (lambda n: bar.update(1)) if bar else None, strict=args.strict)
    if bar:
        bar.close()
    if args.overlap and retriever is not None:
        from retriever.authoring.overlap import overlap_findings
        from retriever.authoring.selfeval import self_evaluate

        findings += overlap_findings(
            retriever.index, self_evaluate(retriever.index, retriever.embedder)
        )
    if budget is not None:
        from retriever.authoring.budget import budget_findings

        findings += budget_findings(budget, report.skills)
    errors = sum(f.severity == ERROR for f in findings)
    notes = sum(f.severity == NOTE for f in findings)
    warnings = len(findings) - errors - notes
    if args.json:
        out = {
            "skills": len(report.skills),
            "errors": errors,
            "warnings": warnings,
            "notes": notes,
            "findings": [f.to_dict() for f in findings],
        }
        if budget is not None:
            out["budget"] = budget.to_dict()
        print(json.dumps(out, indent=2))
    else:
        for f in findings:
            where = f"  [{f.path}]" if f.path else ""
            print(safe(f"{f.severity}: {f.check}: {f.skill_id or '-'}: {f.message}{where}"))
        print(
            f"{count(len(report.skills), 'skill')}: {count(errors, 'error')}, "
            f"{count(warnings, 'warning')}" + (f", {count(notes, 'note')}" if notes else "")
        )
    return 1 if errors or warnings else 0


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
