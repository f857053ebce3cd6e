"""`retrieve hook AGENT`: the skills for each prompt, as an agent's prompt hook."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from retriever.cli.options import common_options, positive, seconds

AGENTS = ("claude-code", "codex", "gemini")  # retriever.serve.agents.AGENTS, not imported here


def add_parser(sub) -> None:
    p = sub.add_parser(
        "hook",
        help="an agent's prompt hook: `hook claude-code|codex|gemini` adds the skills for "
        "each prompt; --print-config shows the settings entry",
    )
    _arguments(p)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent", choices=AGENTS, help="the agent whose hook this is")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the agent's settings entry for these options (and on stderr the file "
        "it goes in) and exit",
    )
    p.add_argument(
        "--http",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="with --print-config, for Claude Code: the `type: http` entry calling a "
        "running `retrieve serve` (default: the one running for this index, else "
        "http://127.0.0.1:8765), the token read from $SKILL_RETRIEVER_TOKEN",
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


class _HookParser(argparse.ArgumentParser):
    def error(self, message: str):
        # exit 0: a hook's exit 2 would block the user's prompt; the line says what is wrong
        self.exit(0, f"retrieve: error: {message} (see retrieve hook --help)\n")


def main(words: Sequence[str]) -> int:
    """`retrieve hook ...` on its own short path (``retriever.cli.main`` imports every
    command's module to build its parser)."""
    parser = _HookParser(prog="retrieve hook", description="An agent's prompt hook.")
    _arguments(parser)
    args = parser.parse_args(list(words))
    return run(args)


def run(args: argparse.Namespace) -> int:
    from retriever.serve.hook import run_hook

    code = run_hook(args.agent, args)  # 0 on a prompt, whatever happens
    sys.stdout.flush()
    return code
