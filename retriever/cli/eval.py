"""`retrieve eval`: metrics over a labelled query file, over the collection's own questions
(`--self`), or over skill-creator trigger evals (`--triggers`)."""

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
    which.add_argument(
        "--triggers",
        metavar="FILE|DIR",
        help="skill-creator trigger evals: a JSON list of {query, should_trigger} (a folder: "
        "every evals/trigger-evals.json in it), or JSONL with a skill field; per skill: "
        "recall in the top k, false triggers, what took each miss",
    )
    p.add_argument("--folds", type=positive, default=5, help="--self: folds by item (default 5)")
    p.add_argument(
        "--html", metavar="FILE", help="--self, --triggers: write a self-contained HTML page"
    )
    p.add_argument("--json", action="store_true", help="metrics as JSON")
    p.add_argument("--run-out", metavar="FILE", help="write {query_id: [skill ids]} here")
    p.add_argument(
        "-k",
        type=positive,
        default=None,
        help="ranked skills kept per query (default 10; --triggers: the top k a skill must "
        "reach to trigger, default 3, as many as the Claude Code hook adds)",
    )
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from retriever.authoring.evaluate import METRICS, evaluate, read_queries

    if args.self_eval:
        return _cmd_eval_self(args)
    if args.triggers:
        return _cmd_eval_triggers(args)
    if args.html:
        raise UsageError("--html goes with --self or --triggers")
    args.k = args.k or 10
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
    _check_html(args)
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

    def page() -> str:
        from retriever.authoring.report import render_html

        roots = ", ".join(Path(r).name for r in retriever.manifest.roots) or "skills"
        return render_html(report, roots, {s.id: s.path for s in retriever.skills})

    return _emit(args, report, page, lambda: _self_eval_text(report))


def _check_html(args: argparse.Namespace) -> None:
    """``--html FILE`` is writable (before the work, not after it); ``--html -`` (the page
    itself is the output: a pipe, a redirect) cannot share stdout with ``--json``."""
    if args.html == "-" and args.json:
        raise UsageError("--html - writes the page to stdout: it cannot go with --json")
    if args.html and args.html != "-":
        check_writable(args.html)


def _emit(args: argparse.Namespace, report, page, text) -> int:
    """Write the page (``--html``), then print the JSON or the text."""
    if args.html:
        html = page()
        if args.html == "-":
            sys.stdout.write(html)
            return 0
        write_file(args.html, html)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(text())
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


def _cmd_eval_triggers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.authoring.trigger_files import read_trigger_evals, skill_folders
    from retriever.authoring.triggers import DEFAULT_K, SEEN, Ranked, evaluate_triggers

    k = args.k or DEFAULT_K
    _check_html(args)
    retriever = open_retriever(args)
    skills = retriever.skills
    # a bad file fails before any query is asked, naming the file, the item and the value
    cases = read_trigger_evals(args.triggers, skill_folders(skills), [s.id for s in skills])

    def search(query: str) -> Ranked:
        result = retriever.search(query, k=max(k, SEEN))
        ranked = tuple(h.id for h in result.skills if h.via != "handoff")
        return Ranked(ranked, result.no_match)

    distinct = len({c.query for c in cases})
    bar = progress_bar(distinct, "queries", args.json)
    report = evaluate_triggers(cases, search, k, (lambda n: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    report.files = sorted({c.file for c in cases})

    def page() -> str:
        from retriever.authoring.report import render_triggers_html

        roots = ", ".join(Path(r).name for r in retriever.manifest.roots) or "skills"
        return render_triggers_html(report, {s.id: s.path for s in skills}, roots)

    return _emit(args, report, page, lambda: _triggers_text(report))


def _triggers_text(report) -> str:
    from retriever.authoring.triggers import takers

    total = report.total
    recall = "-" if total.recall is None else f"{total.recall:.2f}"
    lines = [
        f"{report.cases} trigger eval queries for {len(report.per_skill)} "
        f"skill{'s' * (len(report.per_skill) != 1)} "
        f"(a skill triggers when it ranks in the top {report.k} and the result is not "
        f"no match), {report.seconds:.0f} s",
        f"passed {report.passed} of {report.cases}; should trigger: {total.hits} of "
        f"{total.should} (recall {recall}); should not: {total.false_triggers} of "
        f"{total.should_not} triggered",
        "",
        f"  {'skill':<32}{'should':>8}{'recall':>8}{'should not':>12}{'false':>7}",
    ]
    for s in report.per_skill:
        r = "-" if s.recall is None else f"{s.recall:.2f}"
        lines.append(
            f"  {s.skill_id[:32]:<32}{f'{s.hits}/{s.should}':>8}{r:>8}"
            f"{s.should_not:>12}{s.false_triggers:>7}"
        )
    misses = [(s.skill_id, m) for s in report.per_skill for m in s.misses]
    if misses:
        lines += ["", "Should trigger and did not (the skill ranked first instead):"]
        for sid, m in misses:
            where = "no match" if m["no_match"] else f"taken by {m['taken_by']}"
            rank = f", {sid} ranked {m['rank']}" if m["rank"] else f", {sid} not in the top 10"
            lines.append(safe(f"  {sid}: '{m['query'][:90]}' -> {where}{rank}"))
    false = [(s.skill_id, f) for s in report.per_skill for f in s.false]
    if false:
        lines += ["", "Should not trigger and did:"]
        for sid, f in false:
            lines.append(safe(f"  {sid}: '{f['query'][:90]}' (ranked {f['rank']})"))
    taken = takers(report)
    if taken:
        lines += [
            "",
            "Skills taking the most missed queries: "
            + ", ".join(f"{sid} ({n})" for sid, n in list(taken.items())[:10]),
        ]
    return "\n".join(lines)
