"""`retrieve lint`: findings for skill authors; exit 1 on any."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import common_options, load_skills, open_retriever, progress_bar
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
        help="near-twin skills (very close cards, shared triggers), sorted by how much they "
        "collide in eval --self",
    )
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from retriever.authoring.lint import ERROR, lint

    report = load_skills(args)
    rank, bar, retriever = None, None, None
    if (not args.no_reach or args.overlap) and report.skills:
        retriever = open_retriever(args)
    if not args.no_reach and retriever is not None:
        rank = lambda q: retriever.rank(q, 10)  # noqa: E731
        bar = progress_bar(len(report.skills), "reachability", args.json)
    findings = lint(report, rank, (lambda n: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    if args.overlap and retriever is not None:
        from retriever.authoring.overlap import overlap_findings
        from retriever.authoring.selfeval import self_evaluate

        findings += overlap_findings(
            retriever.index, self_evaluate(retriever.index, retriever.embedder)
        )
    errors = sum(f.severity == ERROR for f in findings)
    if args.json:
        print(
            json.dumps(
                {
                    "skills": len(report.skills),
                    "errors": errors,
                    "warnings": len(findings) - errors,
                    "findings": [f.to_dict() for f in findings],
                },
                indent=2,
            )
        )
    else:
        for f in findings:
            print(safe(f"{f.severity}: {f.check}: {f.skill_id or '-'}: {f.message}  [{f.path}]"))
        warnings = len(findings) - errors
        print(
            f"{count(len(report.skills), 'skill')}: {count(errors, 'error')}, "
            f"{count(warnings, 'warning')}"
        )
    return 1 if findings else 0


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
