"""The ``retrieve`` command line: ``main`` and its parser (``main.py``), what the commands
share (``options.py``), and one module per command, each with ``add_parser(sub)`` and
``run(args) -> int``.

Results go to stdout, diagnostics to stderr; ``--json`` for scripts. A user error prints one
line and exits 2, never a traceback. Heavy modules load only inside the chosen command's
``run``. May import anything in the package; nothing imports it.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``retrieve``. A hook (``retrieve [-q] hook ...``) runs on every prompt of an agent,
    so it takes a path of its own that imports only its parser, not every command's."""
    import sys

    words = sys.argv[1:] if argv is None else list(argv)
    if words and words[words[0] in ("-q", "--quiet") :][:1] == ["hook"]:
        from retriever.cli.hook import main as hook_main

        return hook_main(words[words.index("hook") + 1 :])
    from retriever.cli.main import main as full_main

    return full_main(words)


__all__ = ["main"]
