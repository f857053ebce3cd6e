"""What every command shares: the common options, opening the index, reading the collection,
progress bars, and writing files; and the user error that prints one line."""

from __future__ import annotations

import argparse
import logging
import sys

from retriever.errors import RetrieverError

EXIT_USER_ERROR = 2


class UsageError(Exception):
    """Options that make no sense together; reported like argparse's own errors."""


def positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not '{value}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not '{value}'") from None
    if not 0 < n <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600, not {value}")
    return n


def port_number(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, not '{value}'") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {n}")
    return n


def common_options(p: argparse.ArgumentParser, *, index: bool = True, rebuild: bool = True) -> None:
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


def serving_options(p: argparse.ArgumentParser) -> None:
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


def open_retriever(args: argparse.Namespace, *, rebuild: str | None = None):
    from retriever.api import SkillRetriever

    return SkillRetriever.open(
        args.skills,
        index_dir=args.index,
        model=args.model,
        backend=args.backend,
        rebuild=rebuild or ("never" if args.no_rebuild else "auto"),
        verify=args.verify,
        progress=True,  # a bar on a terminal, else a line every few seconds (a CI log)
    )


def load_skills(args: argparse.Namespace, *, require: bool = False):
    """The collection of ``--skills`` (or the default roots), read from the files, no index.

    ``require``: a collection with no skills is a user error (``SkillLoadError``).
    """
    from retriever.errors import no_skills
    from retriever.load import load_collection
    from retriever.paths import resolve_roots

    roots = resolve_roots(args.skills)
    report = load_collection(roots)
    if require and not report.skills:
        raise no_skills(roots)
    return report


def say_skipped(retriever) -> None:
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


def check_writable(path: str) -> None:
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


def write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``; a failure is one error line (``UsageError``), not a
    traceback."""
    from pathlib import Path

    check_writable(path)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


def progress_bar(total: int, desc: str, quiet: bool):
    """A progress bar on stderr when it is a terminal (and output is not JSON)."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr)


def require_extra(extra: str, *modules: str) -> None:
    """A one-line error naming the extra to install when one of ``modules`` is missing."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise RetrieverError(
                f"this command needs the {extra} extra: pip install 'skill-retriever[{extra}]'"
            ) from e
