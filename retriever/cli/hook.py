"""`retrieve hook AGENT`: the skills for each prompt, as an agent's hook."""

from __future__ import annotations

import argparse

from retriever.cli.options import common_options, positive, seconds


def add_parser(sub) -> None:
    p = sub.add_parser(
        "hook",
        help="an agent hook: `hook claude-code` adds the skills for each prompt "
        "(UserPromptSubmit); --print-config shows the settings entry",
    )
    p.add_argument("agent", choices=("claude-code",), help="the agent whose hook this is")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the .claude/settings.json entry for these options and exit",
    )
    p.add_argument("-k", type=positive, default=None, help="how many skills (default 3)")
    p.add_argument(
        "--max-chars",
        type=positive,
        default=None,
        help="budget of the added context in characters (default 4000)",
    )
    p.add_argument(
        "--min-words",
        type=positive,
        default=None,
        help="prompts of fewer words get nothing (default 3)",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        help="give up (adding nothing) after this many seconds (default 5)",
    )
    common_options(p, rebuild=False)


def run(args: argparse.Namespace) -> int:
    from retriever.serve.hook import run_claude_code

    return run_claude_code(args)  # always 0: a hook must never block the prompt
