"""`retrieve show`: one skill, read from its files."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import common_options, load_skills


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="print one skill")
    p.add_argument("skill_id")
    p.add_argument("--json", action="store_true")
    common_options(p, index=False)


def run(args: argparse.Namespace) -> int:
    from retriever.api import unknown_skill_message
    from retriever.errors import UnknownSkillError

    report = load_skills(args, require=True)
    skill = report.by_id().get(args.skill_id)
    if skill is None:
        raise UnknownSkillError(unknown_skill_message(args.skill_id, report.by_id()))
    if args.json:
        print(json.dumps(skill.to_dict(), indent=2, ensure_ascii=False))
    else:
        from retriever.present.terminal import format_skill

        print(format_skill(skill))
    return 0
