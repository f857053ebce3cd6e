"""`retrieve doctor`: what a search would use, and what needs doing first."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import common_options


def add_parser(sub) -> None:
    p = sub.add_parser(
        "doctor", help="check what a search would use: roots, index, model, backend, server"
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    common_options(p, rebuild=False)


def run(args: argparse.Namespace) -> int:
    from retriever.serve.doctor import diagnose, format_report

    report = diagnose(args.skills, args.index, args.model, args.backend)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["usable"] else 1
