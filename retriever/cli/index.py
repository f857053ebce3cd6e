"""`retrieve index`: build or refresh the index; its counts and load problems."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import common_options, open_retriever
from retriever.present.terminal import safe


def add_parser(sub) -> None:
    p = sub.add_parser("index", help="build or refresh the index; print counts and problems")
    p.add_argument(
        "--json", action="store_true", help='JSON output: {"skills", "documents", "problems"}'
    )
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    common_options(p)


def run(args: argparse.Namespace) -> int:
    retriever = open_retriever(args, rebuild="always" if args.force else None)
    # one query: makes the model's ONNX export when it is not made yet, so that after
    # `retrieve index` a hook (which never makes it: it takes a minute) finds all it needs
    retriever.warm()
    problems = [{"path": p.path, "reason": p.reason} for p in retriever.problems]
    rebuilt = retriever.rebuilt_because is not None
    # what this run embedded and took from the caches (an index up to date: nothing)
    embedded = retriever.manifest.counts.embedded if rebuilt else 0
    cached = retriever.manifest.counts.cached if rebuilt else 0
    if args.json:
        print(
            json.dumps(
                {
                    "skills": len(retriever.skills),
                    "documents": retriever.document_count,
                    "problems": problems,
                    "index": str(retriever.index_dir),
                    "rebuilt": rebuilt,
                    "embedded": embedded,
                    "cached": cached,
                },
                indent=2,
            )
        )
        return 0
    state = (
        f"built ({retriever.rebuilt_because}): {embedded:,} texts embedded, {cached:,} "
        "taken from the cache"
        if rebuilt
        else "up to date"
    )
    print(f"index {retriever.index_dir}: {state}")
    print(
        f"{len(retriever.skills)} skills, {retriever.document_count} documents, "
        f"{len(problems)} problems, model {retriever.manifest.model}"
    )
    for p in problems:
        print(safe(f"  problem: {p['path']}: {p['reason']}"))
    return 0
