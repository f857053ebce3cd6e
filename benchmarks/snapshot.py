"""Every query file's search output in every format, written to files to compare two trees.

A refactor or a speed change must keep search output byte-identical. Run this with each
tree's code and diff the folders::

    python benchmarks/snapshot.py --out /tmp/snap-new --index-home /tmp/snap-index-new
    PYTHONPATH=/tmp/old-tree python benchmarks/snapshot.py --out /tmp/snap-old \\
        --index-home /tmp/snap-index-old
    diff -r /tmp/snap-old /tmp/snap-new && echo identical

(``PYTHONPATH`` puts the old tree's ``retriever`` ahead of the installed one; run the file
by path so that ``benchmarks`` itself is not imported from either tree.)

For each collection and query file, each query's output: the terminal text (100 columns),
``search --json`` at k=5 and k=10, the Markdown rendering (4,000 characters, and 800 of the
model's tokens), and the compact MCP result. The sets: the bundled skills with the gotcha,
symptom and off-topic queries; the 462 spawner skills with the symptoms, situations,
off-topic and handoff queries; the spawner holdout corpus with the dev queries; the Agent
Skills holdout corpus with the SKILL.md dev queries. Sets whose shared data is absent are
skipped (said on stderr). Each tree builds its own indexes under ``--index-home``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("SKILL_RETRIEVER_SHARED", REPO.parent / "shared"))
QUERIES = HERE / "queries"

SETS = {
    "bundled": (REPO / "skills", ["gotchas", "symptoms", "offtopic"]),
    "spawner": (
        SHARED / "corpora" / "spawner-skills",
        ["symptoms", "situations", "offtopic", "handoffs"],
    ),
    "spawner-holdout": (
        SHARED / "corpora" / "spawner-skills-holdout",
        [SHARED / "eval" / "dev-queries.jsonl"],
    ),
    "agent-skills-holdout": (
        SHARED / "corpora" / "agent-skills-holdout",
        [SHARED / "eval" / "skillmd-dev-queries.jsonl"],
    ),
}


def _first(*names: str):
    """The first of ``module:attribute`` names that imports: the code moves between trees."""
    for name in names:
        module, attribute = name.split(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
    raise SystemExit(f"none of {names} imports")


def read_queries(spec) -> list[dict]:
    path = spec if isinstance(spec, Path) else QUERIES / f"{spec}.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def snapshot(out: Path, index_home: Path, sets: list[str]) -> dict[str, str]:
    os.environ["COLUMNS"] = "100"  # the terminal width the text output wraps to
    from retriever import SkillRetriever

    format_result = _first(
        "retriever.present.terminal:format_result", "retriever.terminal:format_result"
    )
    compact_result = _first(
        "retriever.present.compact:compact_result",
        "retriever.serve.mcp:compact_result",
        "retriever.mcp_server:compact_result",
    )
    digests = {}
    out.mkdir(parents=True, exist_ok=True)
    for name in sets:
        corpus, files = SETS[name]
        if not corpus.is_dir():
            print(f"skipped {name}: {corpus} not found", file=sys.stderr)
            continue
        started = time.perf_counter()
        retriever = SkillRetriever.open(corpus, index_dir=index_home / name)
        for spec in files:
            label = spec.stem if isinstance(spec, Path) else spec
            target = out / f"{name}--{label}.jsonl"
            with open(target, "w", encoding="utf-8") as f:
                for q in read_queries(spec):
                    r5 = retriever.search(q["query"], k=5)
                    r10 = retriever.search(q["query"], k=10)
                    record = {
                        "id": q.get("id"),
                        "terminal": format_result(r5),
                        "json": json.dumps(r5.to_dict(), indent=2, ensure_ascii=False),
                        "json10": json.dumps(r10.to_dict(), ensure_ascii=False),
                        "markdown": retriever.render_markdown(r5, max_chars=4000),
                        "markdown_tokens": retriever.render_markdown(r5, max_tokens=800),
                        "mcp": json.dumps(compact_result(r5), ensure_ascii=False),
                    }
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
            digests[target.name] = hashlib.sha256(target.read_bytes()).hexdigest()[:16]
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--index-home", type=Path, required=True, help="folder for the indexes")
    parser.add_argument("--sets", default=",".join(SETS), help=f"of {', '.join(SETS)}")
    args = parser.parse_args(argv)
    import retriever

    print(f"retriever from {Path(retriever.__file__).parent}", file=sys.stderr)
    for file, digest in snapshot(args.out, args.index_home, args.sets.split(",")).items():
        print(f"{digest}  {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
