"""The ``retrieve`` command line: ``main`` and its parser (``main.py``), what the commands
share (``options.py``), and one module per command, each with ``add_parser(sub)`` and
``run(args) -> int``.

Results go to stdout, diagnostics to stderr; ``--json`` for scripts. A user error prints one
line and exits 2, never a traceback. Heavy modules load only inside the chosen command's
``run``. May import anything in the package; nothing imports it.
"""

from retriever.cli.main import main

__all__ = ["main"]
