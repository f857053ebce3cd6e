"""The ``retrieve`` command line.

Results go to stdout, diagnostics to stderr; ``--json`` for scripts. A user error prints one
line and exits 2, never a traceback. Heavy modules load only inside the chosen subcommand.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from retriever.errors import RetrieverError
from retriever.terminal import safe

EXIT_USER_ERROR = 2


class UsageError(Exception):
    """Options that make no sense together; reported like argparse's own errors."""


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


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not '{value}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _common(p: argparse.ArgumentParser, *, index: bool = True) -> None:
    p.add_argument(
        "--skills",
        action="append",
        metavar="PATH",
        help="a skills root (repeatable; default: ~/.spawner/skills and "
        "~/.claude/skills where they exist, else the bundled collection)",
    )
    if index:
        p.add_argument(
            "--index", metavar="DIR", help="index folder (default: one per collection, see README)"
        )
        p.add_argument(
            "--model",
            metavar="NAME_OR_PATH",
            help="sentence-transformers model (default: $SKILL_RETRIEVER_MODEL, "
            "else the packaged all-MiniLM-L6-v2)",
        )
        p.add_argument(
            "--backend",
            choices=("auto", "onnx", "torch"),
            help="embedding runtime: ONNX export (fast start) or sentence-"
            "transformers; default auto ($SKILL_RETRIEVER_BACKEND)",
        )
        p.add_argument(
            "--no-rebuild",
            action="store_true",
            help="fail instead of rebuilding a missing or stale index",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="retrieve",
        description="Find the right agent skills for a task: ranked skills, their patterns, "
        "and handoffs.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("search", help="rank skills and patterns for a task")
    p.add_argument("query", help="the task, in words")
    p.add_argument("-k", type=_positive, default=5, help="how many skills (default 5)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON output (see README)")
    output.add_argument(
        "--markdown", action="store_true", help="prompt-ready Markdown of the results"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-chars",
        type=_positive,
        default=None,
        help="budget for --markdown in characters (default 6000)",
    )
    budget.add_argument(
        "--max-tokens",
        type=_positive,
        default=None,
        help="budget for --markdown in the model's tokens",
    )
    _common(p)

    p = sub.add_parser("index", help="build or refresh the index; print counts and problems")
    p.add_argument(
        "--json", action="store_true", help='JSON output: {"skills", "documents", "problems"}'
    )
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    _common(p)

    p = sub.add_parser("show", help="print one skill")
    p.add_argument("skill_id")
    p.add_argument("--json", action="store_true")
    _common(p, index=False)

    p = sub.add_parser("eval", help="ranking metrics over a labelled query file")
    p.add_argument(
        "--queries",
        required=True,
        metavar="FILE.jsonl",
        help='one {"id", "query", "relevant": [ids], "source"} per line',
    )
    p.add_argument("--json", action="store_true", help="metrics as JSON")
    p.add_argument("--run-out", metavar="FILE", help="write {query_id: [skill ids]} here")
    p.add_argument(
        "-k", type=_positive, default=10, help="ranked skills kept per query (default 10)"
    )
    _common(p)
    p = sub.add_parser("lint", help="check a collection for skill authors; exit 1 on findings")
    p.add_argument("--json", action="store_true", help="findings as JSON, for CI")
    p.add_argument(
        "--no-reach",
        action="store_true",
        help="skip the reachability check (it needs the index and model)",
    )
    _common(p)

    p = sub.add_parser("mcp", help="serve search_skills and get_skill over MCP (stdio)")
    _common(p)

    p = sub.add_parser(
        "tune",
        help="fine-tune the embedding model on the collection's own "
        "texts; writes a model folder for --model",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="new folder for the model")
    p.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help="model to start from (default: $SKILL_RETRIEVER_MODEL, else the "
        "packaged all-MiniLM-L6-v2)",
    )
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the pairs (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="skills per batch (default 64)")
    p.add_argument("--learning-rate", type=float, default=2e-5, help="default 2e-5")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many batches")
    p.add_argument("--json", action="store_true", help="the run's report as JSON")
    _common(p, index=False)
    return parser


def _open(args: argparse.Namespace, *, rebuild: str | None = None):
    from retriever.api import SkillRetriever

    return SkillRetriever.open(
        args.skills,
        index_dir=args.index,
        model=args.model,
        backend=args.backend,
        rebuild=rebuild or ("never" if args.no_rebuild else "auto"),
    )


def _load_skills(args: argparse.Namespace, *, require: bool = False):
    """The collection of ``--skills`` (or the default roots), read from the files, no index.

    ``require``: a collection with no skills is a user error (``SkillLoadError``).
    """
    from retriever.errors import SkillLoadError
    from retriever.load import load_collection
    from retriever.paths import resolve_roots

    roots = resolve_roots(args.skills)
    report = load_collection(roots)
    if require and not report.skills:
        raise SkillLoadError(
            f"no skills found under {', '.join(map(str, roots))}: expected "
            "<dir>/skill.yaml, <dir>/<id>.yaml or <dir>/SKILL.md"
        )
    return report


def _say_skipped(retriever) -> None:
    """One line on stderr when some skill files could not be loaded (so are not searched)."""
    skipped = sum(p.skipped for p in retriever.problems)
    if skipped:
        files = "file" if skipped == 1 else "files"
        logging.getLogger("retriever.cli").warning(
            "%d skill %s could not be loaded and %s left out; `retrieve index` lists why",
            skipped,
            files,
            "is" if skipped == 1 else "are",
        )


def _cmd_search(args: argparse.Namespace) -> int:
    if (args.max_chars or args.max_tokens) and not args.markdown:
        raise UsageError("--max-chars and --max-tokens go with --markdown")
    retriever = _open(args)
    _say_skipped(retriever)
    result = retriever.search(args.query, k=args.k)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif args.markdown:
        print(safe(retriever.render_markdown(result, args.max_chars, max_tokens=args.max_tokens)))
    else:
        from retriever.terminal import format_result

        print(format_result(result))
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    retriever = _open(args, rebuild="always" if args.force else None)
    problems = [{"path": p.path, "reason": p.reason} for p in retriever.problems]
    if args.json:
        print(
            json.dumps(
                {
                    "skills": len(retriever.skills),
                    "documents": retriever.document_count,
                    "problems": problems,
                    "index": str(retriever.index_dir),
                    "rebuilt": retriever.rebuilt_because is not None,
                },
                indent=2,
            )
        )
        return 0
    state = f"built ({retriever.rebuilt_because})" if retriever.rebuilt_because else "up to date"
    print(f"index {retriever.index_dir}: {state}")
    print(
        f"{len(retriever.skills)} skills, {retriever.document_count} documents, "
        f"{len(problems)} problems, model {retriever.manifest.get('model')}"
    )
    for p in problems:
        print(safe(f"  problem: {p['path']}: {p['reason']}"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from retriever.api import unknown_skill_message
    from retriever.errors import UnknownSkillError

    report = _load_skills(args, require=True)
    skill = report.by_id().get(args.skill_id)
    if skill is None:
        raise UnknownSkillError(unknown_skill_message(args.skill_id, report.by_id()))
    if args.json:
        print(json.dumps(skill.to_dict(), indent=2, ensure_ascii=False))
    else:
        from retriever.terminal import format_skill

        print(format_skill(skill))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from retriever.evaluate import METRICS, evaluate, read_queries

    queries = read_queries(args.queries)  # a bad file fails before the model loads
    retriever = _open(args)
    bar = _progress_bar(len(queries), "queries", args.json)
    report = evaluate(
        queries,
        lambda q: retriever.search(q, k=args.k).skill_ids,
        progress=(lambda i: bar.update(1)) if bar else None,
    )
    if bar:
        bar.close()
    if args.run_out:
        with open(args.run_out, "w", encoding="utf-8") as f:
            json.dump(report.run, f, indent=1)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    header = f"{'source':<14}{'n':>6}" + "".join(f"{m:>9}" for m in METRICS)
    print(header)
    rows = [("all", report.metrics)] + list(report.by_source.items())
    for name, m in rows:
        print(f"{name:<14}{int(m['n']):>6}" + "".join(f"{m[k]:>9.3f}" for k in METRICS))
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    from retriever.lint import ERROR, lint

    report = _load_skills(args)
    rank, bar = None, None
    if not args.no_reach and report.skills:
        retriever = _open(args)
        rank = lambda q: retriever.search(q, k=10).skill_ids  # noqa: E731
        bar = _progress_bar(len(report.skills), "reachability", args.json)
    findings = lint(report, rank, (lambda n: bar.update(1)) if bar else None)
    if bar:
        bar.close()
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
            f"{_count(len(report.skills), 'skill')}: {_count(errors, 'error')}, "
            f"{_count(warnings, 'warning')}"
        )
    return 1 if findings else 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _progress_bar(total: int, desc: str, quiet: bool):
    """A progress bar on stderr when it is a terminal (and output is not JSON)."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr)


def _cmd_mcp(args: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise RetrieverError(
            "the MCP server needs the mcp extra: pip install 'skill-retriever[mcp]'"
        ) from e
    from retriever.mcp_server import serve

    retriever = _open(args)  # model and index load once, before the first request
    retriever.search("warm up")
    serve(retriever)
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.tune import tune

    report = _load_skills(args)
    bar = _progress_bar(0, "tuning", args.json or args.quiet)

    def progress(step: int, steps: int, loss: float) -> None:
        if bar:
            bar.total = steps
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

    result = tune(
        report.skills,
        Path(args.out),
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        progress=progress,
    )
    if bar:
        bar.close()
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(result), indent=2))
        return 0
    print(
        f"tuned {result.base_model} on {result.pairs} texts of {result.skills} skills: "
        f"{result.steps} steps in {result.seconds:.0f} s"
    )
    print(f"model: {result.out}")
    print(
        f"use it: export SKILL_RETRIEVER_MODEL={result.out}  (or --model on each call); "
        "the next search builds its index"
    )
    return 0


COMMANDS = {
    "search": _cmd_search,
    "index": _cmd_index,
    "show": _cmd_show,
    "eval": _cmd_eval,
    "lint": _cmd_lint,
    "mcp": _cmd_mcp,
    "tune": _cmd_tune,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        return COMMANDS[args.command](args)
    except (RetrieverError, UsageError) as e:
        print(safe(f"retrieve: error: {e}"), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `retrieve search ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
