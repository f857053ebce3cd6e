"""`retrieve eval`: metrics over a labelled query file, or over the collection's own
questions (`--self`)."""

from __future__ import annotations

import argparse
import json
import sys

from retriever.cli.options import (
    UsageError,
    check_writable,
    common_options,
    open_retriever,
    positive,
    progress_bar,
    write_file,
)
from retriever.present.terminal import safe


def add_parser(sub) -> None:
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
    p.add_argument("--folds", type=positive, default=5, help="--self: folds by item (default 5)")
    p.add_argument("--html", metavar="FILE", help="--self: write a self-contained HTML page")
    p.add_argument("--json", action="store_true", help="metrics as JSON")
    p.add_argument("--run-out", metavar="FILE", help="write {query_id: [skill ids]} here")
    p.add_argument(
        "-k", type=positive, default=10, help="ranked skills kept per query (default 10)"
    )
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from retriever.authoring.evaluate import METRICS, evaluate, read_queries

    if args.self_eval:
        return _cmd_eval_self(args)
    if args.html:
        raise UsageError("--html goes with --self")
    queries = read_queries(args.queries)  # a bad file fails before the model loads
    if args.run_out:
        check_writable(args.run_out)
    retriever = open_retriever(args)
    bar = progress_bar(len(queries), "queries", args.json)
    report = evaluate(
        queries,
        lambda q: retriever.rank(q, args.k),
        progress=(lambda i: bar.update(1)) if bar else None,
    )
    if bar:
        bar.close()
    if args.run_out:
        write_file(args.run_out, json.dumps(report.run, indent=1))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    header = f"{'source':<14}{'n':>6}" + "".join(f"{m:>9}" for m in METRICS)
    print(header)
    rows = [("all", report.metrics)] + list(report.by_source.items())
    for name, m in rows:
        print(f"{name:<14}{int(m['n']):>6}" + "".join(f"{m[k]:>9.3f}" for k in METRICS))
    return 0


def _cmd_eval_self(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.authoring.selfeval import self_evaluate

    if args.folds < 2:
        raise UsageError(
            f"--folds must be at least 2 (one to ask, one to leave out), not {args.folds}"
        )
    to_stdout = args.html == "-"  # the page itself is the output (a pipe, a redirect)
    if to_stdout and args.json:
        raise UsageError("--html - writes the page to stdout: it cannot go with --json")
    if args.html and not to_stdout:
        check_writable(args.html)  # before the work, not after it
    retriever = open_retriever(args)
    bar = progress_bar(args.folds, "folds", args.json)
    report = self_evaluate(
        retriever.index,
        retriever.embedder,
        folds=args.folds,
        progress=(lambda done, total: bar.update(1)) if bar else None,
    )
    if bar:
        bar.close()
    if args.html:
        from retriever.authoring.report import render_html

        roots = ", ".join(Path(r).name for r in retriever.manifest.roots) or "skills"
        page = render_html(report, roots)
        if to_stdout:
            sys.stdout.write(page)
            return 0
        write_file(args.html, page)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(_self_eval_text(report))
    return 0


def _self_eval_text(report) -> str:
    from retriever.authoring.selfeval import METRICS

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
