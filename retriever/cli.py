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


def _seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not '{value}'") from None
    if not 0 < n <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600, not {value}")
    return n


def _common(p: argparse.ArgumentParser, *, index: bool = True, rebuild: bool = True) -> None:
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
            "--verify",
            action="store_true",
            help="hash every skill file to tell whether the index is stale (default: "
            "file metadata first, hashing only files whose size, mtime or inode changed)",
        )
    if index and rebuild:
        p.add_argument(
            "--no-rebuild",
            action="store_true",
            help="fail instead of rebuilding a missing or stale index",
        )


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, not '{value}'") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {n}")
    return n


def _serving_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--token",
        help="require Authorization: Bearer TOKEN on every request (default: "
        "$SKILL_RETRIEVER_TOKEN); needed to bind anything but loopback",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="rebuild and swap the index in the background when skill files change",
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

    p = sub.add_parser(
        "eval",
        help="ranking metrics over a labelled query file, or (--self) over the collection's "
        "own questions",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--queries",
        metavar="FILE.jsonl",
        help='one {"id", "query", "relevant": [ids], "source"} per line',
    )
    which.add_argument(
        "--self",
        dest="self_eval",
        action="store_true",
        help="ask every skill's validation messages, sharp edges and receives_from contexts, "
        "each of an index without it: per-skill metrics and confusion pairs",
    )
    p.add_argument("--folds", type=_positive, default=5, help="--self: folds by item (default 5)")
    p.add_argument("--html", metavar="FILE", help="--self: write a self-contained HTML page")
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
    p.add_argument(
        "--overlap",
        action="store_true",
        help="near-twin skills (very close cards, shared triggers), sorted by how much they "
        "collide in eval --self",
    )
    _common(p)

    p = sub.add_parser(
        "mcp",
        help="serve search_skills, get_skill and skill:// resources over MCP (stdio, or --http)",
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve MCP over streamable HTTP at http://HOST:PORT/mcp instead of stdio "
        "(with the JSON routes of `retrieve serve`)",
    )
    _serving_options(p)
    _common(p)

    p = sub.add_parser(
        "serve",
        help="serve the index over HTTP: POST /search, GET /skills/ID, GET /health, MCP at /mcp",
    )
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=None, help="port (default 8765; 0 picks a free one)"
    )
    _serving_options(p)
    _common(p)

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
    p.add_argument("-k", type=_positive, default=None, help="how many skills (default 3)")
    p.add_argument(
        "--max-chars",
        type=_positive,
        default=None,
        help="budget of the added context in characters (default 4000)",
    )
    p.add_argument(
        "--min-words",
        type=_positive,
        default=None,
        help="prompts of fewer words get nothing (default 3)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="give up (adding nothing) after this many seconds (default 5)",
    )
    _common(p, rebuild=False)

    p = sub.add_parser(
        "doctor", help="check what a search would use: roots, index, model, backend, server"
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    _common(p, rebuild=False)

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
    p.add_argument(
        "--texts",
        choices=("problems", "all", "skill"),
        default="problems",
        help="training texts: the problems the collection describes (validation messages, "
        "sharp edges, receives contexts; default), the triggers/whens/whys of skill, or all",
    )
    p.add_argument(
        "--hard-negatives",
        type=int,
        default=2,
        metavar="N",
        help="wrong skills the current index ranks for each text, whose cards join its "
        "softmax (default 2; 0: in-batch negatives only, no index needed)",
    )
    p.add_argument("--json", action="store_true", help="the run's report as JSON")
    _common(p, index=False)
    p.add_argument("--index", metavar="DIR", help="index folder for the hard negatives")
    return parser


def _open(args: argparse.Namespace, *, rebuild: str | None = None):
    from retriever.api import SkillRetriever

    return SkillRetriever.open(
        args.skills,
        index_dir=args.index,
        model=args.model,
        backend=args.backend,
        rebuild=rebuild or ("never" if args.no_rebuild else "auto"),
        verify=args.verify,
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
    """One line on stderr when some skill files could not be loaded (so are not searched):
    skipped skills, and side files whose gotchas, checks or handoffs are left out."""
    log = logging.getLogger("retriever.cli")
    # a duplicate id is skipped on purpose (the first root wins), not a file that failed
    duplicates = sum(p.code == "duplicate_id" for p in retriever.problems)
    if duplicates:
        log.warning(
            "%d %s the same id as a skill of an earlier root and %s left out (the first "
            "root wins; `retrieve index` lists them)",
            duplicates,
            "skill has" if duplicates == 1 else "skills have",
            "is" if duplicates == 1 else "are",
        )
    skipped = sum(p.skipped and p.code != "duplicate_id" for p in retriever.problems)
    if skipped:
        files = "file" if skipped == 1 else "files"
        log.warning(
            "%d skill %s could not be loaded and %s left out; `retrieve index` lists why",
            skipped,
            files,
            "is" if skipped == 1 else "are",
        )
    dropped = [p for p in retriever.problems if p.dropped]
    if dropped:
        more = (
            f" (and {len(dropped) - 1} more; `retrieve index` lists them)"
            if len(dropped) > 1
            else ""
        )
        log.warning(
            "%s could not be read, so its skill is searched without it: %s%s",
            dropped[0].path,
            dropped[0].reason,
            more,
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
        from retriever.terminal import format_result

        print(format_result(result))
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    retriever = _open(args, rebuild="always" if args.force else None)
    # one query: makes the model's ONNX export when it is not made yet, so that after
    # `retrieve index` a hook (which never makes it: it takes a minute) finds all it needs
    retriever.warm()
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

    if args.self_eval:
        return _cmd_eval_self(args)
    if args.html:
        raise UsageError("--html goes with --self")
    queries = read_queries(args.queries)  # a bad file fails before the model loads
    if args.run_out:
        _check_writable(args.run_out)
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
        _write_file(args.run_out, json.dumps(report.run, indent=1))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    header = f"{'source':<14}{'n':>6}" + "".join(f"{m:>9}" for m in METRICS)
    print(header)
    rows = [("all", report.metrics)] + list(report.by_source.items())
    for name, m in rows:
        print(f"{name:<14}{int(m['n']):>6}" + "".join(f"{m[k]:>9.3f}" for k in METRICS))
    return 0


def _check_writable(path: str) -> None:
    """``UsageError`` unless ``path`` names a file that can be written (its folder exists,
    and it is not a folder itself)."""
    import os
    from pathlib import Path

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{path} is a folder: give a file name")
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")


def _write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``; a failure is one error line (``UsageError``), not a
    traceback."""
    from pathlib import Path

    _check_writable(path)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


def _cmd_eval_self(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.selfeval import self_evaluate

    if args.folds < 2:
        raise UsageError(
            f"--folds must be at least 2 (one to ask, one to leave out), not {args.folds}"
        )
    to_stdout = args.html == "-"  # the page itself is the output (a pipe, a redirect)
    if to_stdout and args.json:
        raise UsageError("--html - writes the page to stdout: it cannot go with --json")
    if args.html and not to_stdout:
        _check_writable(args.html)  # before the work, not after it
    retriever = _open(args)
    bar = _progress_bar(args.folds, "folds", args.json)
    report = self_evaluate(
        retriever.index,
        retriever.embedder,
        folds=args.folds,
        progress=(lambda done, total: bar.update(1)) if bar else None,
    )
    if bar:
        bar.close()
    if args.html:
        from retriever.report_html import render_html

        roots = ", ".join(Path(r).name for r in retriever.manifest.get("roots", [])) or "skills"
        page = render_html(report, roots)
        if to_stdout:
            sys.stdout.write(page)
            return 0
        _write_file(args.html, page)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(_self_eval_text(report))
    return 0


def _self_eval_text(report) -> str:
    from retriever.selfeval import METRICS

    head = f"{'':<16}{'n':>6}" + "".join(f"{m:>9}" for m in METRICS)
    if not report.questions:
        return (
            f"no questions to ask: none of the {report.skills} skills has validation checks, "
            "sharp edges or receives_from contexts (spawner side files), which are what "
            "`eval --self` asks; `retrieve eval --queries FILE` takes queries you write"
        )
    lines = [
        f"{report.questions} own questions of {report.skills} skills, each asked of an index "
        f"without it ({report.folds} folds), {report.seconds:.0f} s",
        head,
        f"{'all':<16}{report.questions:>6}"
        + "".join(f"{report.overall[m]:>9.3f}" for m in METRICS),
    ]
    for source, m in report.by_source.items():
        lines.append(f"{source:<16}{int(m['n']):>6}" + "".join(f"{m[k]:>9.3f}" for k in METRICS))
    lines += [
        "",
        "Skills nothing reaches (none of their questions ranks them first): "
        + (", ".join(report.unreached) or "none"),
    ]
    lines.append(
        "Skills taking the most questions of others: "
        + (", ".join(f"{t['skill']} ({t['takes']})" for t in report.takers) or "none")
    )
    lines += ["", "Confusion pairs (skill -> the skill ranked first on its questions):"]
    for p in report.pairs[:15]:
        lines.append(
            safe(
                f"  {p['skill']} -> {p['taken_by']}: {p['count']} of {p['of']}, "
                f"e.g. '{p['example'][:90]}'"
            )
        )
    lines += ["", "Worst skills:", f"  {'skill':<32}{'n':>4}" + "".join(f"{m:>9}" for m in METRICS)]
    for s in report.per_skill[:15]:
        lines.append(
            f"  {s.skill_id[:32]:<32}{s.questions:>4}"
            + "".join(f"{s.metrics[m]:>9.3f}" for m in METRICS)
        )
    return "\n".join(lines)


def _cmd_lint(args: argparse.Namespace) -> int:
    from retriever.lint import ERROR, lint

    report = _load_skills(args)
    rank, bar, retriever = None, None, None
    if (not args.no_reach or args.overlap) and report.skills:
        retriever = _open(args)
    if not args.no_reach and retriever is not None:
        rank = lambda q: retriever.search(q, k=10).skill_ids  # noqa: E731
        bar = _progress_bar(len(report.skills), "reachability", args.json)
    findings = lint(report, rank, (lambda n: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    if args.overlap and retriever is not None:
        from retriever.overlap import overlap_findings
        from retriever.selfeval import self_evaluate

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


def _require_extra(extra: str, *modules: str) -> None:
    """A one-line error naming the extra to install when one of ``modules`` is missing."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise RetrieverError(
                f"this command needs the {extra} extra: pip install 'skill-retriever[{extra}]'"
            ) from e


def _live(args: argparse.Namespace):
    """The index opened (model loaded, warmed up), held for swapping, watched if asked."""
    from retriever.paths import named_roots
    from retriever.watch import LiveRetriever, SkillWatcher

    retriever = _open(args).warm()  # model and index load once, before the first request
    # the roots as named: a symlinked root that a deploy switches is followed
    live = LiveRetriever(retriever, named_roots(args.skills))
    watcher = SkillWatcher(live).start() if args.watch else None
    return live, watcher


def _cmd_mcp(args: argparse.Namespace) -> int:
    if args.http:
        host, port = _host_port(args.http)
        return _serve_http(args, host, port)
    if args.token:
        raise UsageError("--token goes with --http (stdio needs no token)")
    _check_watch(args)
    _require_extra("mcp", "mcp")
    if args.watch:
        _require_extra("serve", "watchfiles")
    from retriever.mcp_server import serve

    if not args.watch:
        serve(_open(args).warm())  # as ever: one index, opened once
        return 0
    live, watcher = _live(args)
    try:
        serve(live)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


def _check_watch(args: argparse.Namespace) -> None:
    if args.watch and args.no_rebuild:
        raise UsageError("--watch rebuilds the index when files change: drop --no-rebuild")


def _host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    try:
        number = _port(port)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"--http {value}: {e}") from None
    return host.strip("[]") or "127.0.0.1", number


def _cmd_serve(args: argparse.Namespace) -> int:
    from retriever.server import DEFAULT_HOST, DEFAULT_PORT

    host = args.host or DEFAULT_HOST
    return _serve_http(args, host, DEFAULT_PORT if args.port is None else args.port)


def _serve_http(args: argparse.Namespace, host: str, port: int) -> int:
    """`retrieve serve` and `retrieve mcp --http`: the same server."""
    import os

    _require_extra("serve", "mcp", "uvicorn", "starlette", *(["watchfiles"] if args.watch else []))
    from retriever.server import ENV_TOKEN, bind, is_loopback, run

    _check_watch(args)
    token = args.token or os.environ.get(ENV_TOKEN) or None
    if not is_loopback(host) and not token:
        raise UsageError(
            f"binding {host} (not loopback) needs a token: --token TOKEN or ${ENV_TOKEN}"
        )
    sock = bind(host, port)  # before the model loads: a busy port fails at once
    try:
        live, watcher = _live(args)
    except BaseException:
        sock.close()
        raise

    def ready(url: str) -> None:
        # a wildcard bind answers on every interface: say so, not only the local address
        wildcard = ", every interface" if host in ("0.0.0.0", "::", "") else ""
        where = "" if is_loopback(host) else f" (listening on {host}{wildcard})"
        print(
            f"serving {len(live.current.skills)} skills at {url}{where}: POST /search, "
            f"GET /skills/ID, GET /health, MCP at {url}/mcp",
            flush=True,
        )

    try:
        run(live, sock, token=token, on_ready=ready)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


def _cmd_hook(args: argparse.Namespace) -> int:
    from retriever.hook import run_claude_code

    return run_claude_code(args)  # always 0: a hook must never block the prompt


def _cmd_doctor(args: argparse.Namespace) -> int:
    from retriever.doctor import diagnose, format_report

    report = diagnose(args.skills, args.index, args.model, args.backend)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["usable"] else 1


def _cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.tune import check_numbers, tune

    check_numbers(  # before anything loads: a bad number fails at once, with its name
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        negatives_per_text=args.hard_negatives,
    )
    report = _load_skills(args)
    bar = _progress_bar(0, "tuning", args.json or args.quiet)

    def progress(step: int, steps: int, loss: float) -> None:
        if bar:
            bar.total = steps
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

    hard = None
    if args.hard_negatives > 0:  # the current index's ranking: the default model's
        from retriever.api import SkillRetriever

        current = SkillRetriever.open(args.skills, index_dir=args.index)
        hard = lambda text: current.search(text, k=10).skill_ids  # noqa: E731
    result = tune(
        report.skills,
        Path(args.out),
        model=args.model,
        texts=args.texts,
        hard_negatives=hard,
        negatives_per_text=args.hard_negatives,
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
    "serve": _cmd_serve,
    "hook": _cmd_hook,
    "doctor": _cmd_doctor,
    "tune": _cmd_tune,
}


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
