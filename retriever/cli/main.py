"""The `retrieve` command: its parser and `main`. Each command is a module of this package
with `add_parser(sub)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from retriever.cli.options import EXIT_USER_ERROR, UsageError
from retriever.errors import RetrieverError
from retriever.present.terminal import safe

# The commands in the order `retrieve --help` lists them; each is retriever.cli.<module>.
COMMANDS = {
    "search": "search",
    "index": "index",
    "show": "show",
    "eval": "eval",
    "lint": "lint",
    "mcp": "mcp",
    "serve": "serve",
    "hook": "hook",
    "doctor": "doctor",
    "tune": "tune",
}


def _command(name: str):
    """The module of command ``name`` (its heavy imports are inside its ``run``)."""
    import importlib

    return importlib.import_module(f"retriever.cli.{COMMANDS[name]}")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (and a "did you mean" for a command)."""

    def error(self, message: str):
        if "invalid choice" in message and self.prog == "retrieve":
            import difflib
            import re

            m = re.search(r"invalid choice: '([^']*)'", message)
            if m:
                close = difflib.get_close_matches(m.group(1), list(COMMANDS), n=1)
                if close:
                    message = f"unknown command '{m.group(1)}'; did you mean '{close[0]}'?"
        self.exit(EXIT_USER_ERROR, f"retrieve: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="retrieve",
        description="Find the right agent skills for a task: ranked skills, their patterns, "
        "and handoffs.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def _is_hook(argv: Sequence[str]) -> bool:
    """Whether this command line runs ``retrieve hook`` (after any global options)."""
    for word in argv:
        if not word.startswith("-"):
            return word == "hook"
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(words)
    except SystemExit:
        # A hook's exit 2 would block the user's prompt: a bad option is said on stderr
        # (one line, printed already) and the prompt goes on.
        if _is_hook(words):
            return 0
        raise

    if args.version:
        from retriever import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return EXIT_USER_ERROR
    # Our own progress notes at INFO; other libraries only for warnings (some, like bm25s,
    # set their loggers to DEBUG themselves, so a level on them is not enough).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("retrieve: %(message)s"))
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith("retriever"))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[handler])
    try:
        return _command(args.command).run(args)
    except (RetrieverError, UsageError) as e:
        print(safe(f"retrieve: error: {e}"), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `retrieve search ... | head`
        return 0
