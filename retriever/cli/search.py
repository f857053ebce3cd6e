"""`retrieve search`: the ranked skills, their patterns and handoffs for a task."""

from __future__ import annotations

import argparse
import json
import logging

from retriever.cli.options import UsageError, common_options, open_retriever, positive, say_skipped
from retriever.present.terminal import safe


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="rank skills and patterns for a task")
    p.add_argument("query", help="the task, in words")
    p.add_argument("-k", type=positive, default=5, help="how many skills (default 5)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON output (see README)")
    output.add_argument(
        "--markdown", action="store_true", help="prompt-ready Markdown of the results"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-chars",
        type=positive,
        default=None,
        help="budget for --markdown in characters (default 6000)",
    )
    budget.add_argument(
        "--max-tokens",
        type=positive,
        default=None,
        help="budget for --markdown in the model's tokens",
    )
    common_options(p)


def run(args: argparse.Namespace) -> int:
    if (args.max_chars or args.max_tokens) and not args.markdown:
        raise UsageError("--max-chars and --max-tokens go with --markdown")
    retriever = open_retriever(args)
    say_skipped(retriever)
    result = retriever.search(args.query, k=args.k)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif args.markdown:
        markdown = retriever.render_markdown(result, args.max_chars, max_tokens=args.max_tokens)
        if not markdown:  # one blank line and nothing else would look like a failure
            why = "nothing in the collection fits" if result.no_match else "the budget is too small"
            logging.getLogger("retriever.cli").warning(
                "no Markdown to print: %s%s",
                why,
                "" if result.no_match else " for the first skill's heading and description",
            )
        print(safe(markdown))
    else:
        from retriever.present.terminal import format_result

        print(format_result(result))
    return 0
