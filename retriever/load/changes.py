"""Has a collection changed since its index was built? Told from file metadata first.

A build keeps a record of the corpus in its manifest (``corpus``): every folder the walk
listed, every symbolic link among their entries, and every indexed file, each folder and
file with a stamp of its metadata (type, size, mtime_ns, ctime_ns, inode) taken before it
was listed or read, and each file's sha256. Opening an index then asks, in order:

1. ``unchanged``: is every stamp as recorded? A file added, removed or renamed changes its
   folder's mtime; an edit changes its file's size, mtime or ctime; a file replaced by
   another (an editor saving through a rename) has another inode. Then the skill files are
   the ones indexed, and nothing is walked, parsed or hashed.
2. Otherwise ``scan_corpus`` walks the roots again and hashes only the files whose stamp
   changed, reusing the recorded sha256 of the others: the same content-based fingerprint
   as hashing every file.

``verify`` skips both shortcuts and hashes every file. What metadata cannot see: an edit
that leaves a file's size, mtime, ctime and inode as they were (a network file system
serving cached attributes, a clock set back). A stamp too close to the scan's own clock is
not trusted, since a second edit in the same timestamp tick would leave it as it was: that
file is hashed at every open until the next build.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retriever.load.discover import Walk, scan, unreadable_problems
from retriever.load.source import SkillSource, display_path
from retriever.skill import LoadProblem

# How recent a stamp may be and still be trusted. Linux file systems stamp times with the
# kernel's coarse clock (a tick, 1-10 ms); FAT and HFS+ keep whole seconds (FAT: two).
FINE_MARGIN_NS = 50_000_000
COARSE_MARGIN_NS = 2_000_000_000
_SECOND_NS = 1_000_000_000


def stamp(st: os.stat_result) -> list[int]:
    """What the record keeps of a file's or folder's metadata."""
    return [stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _settled(st: os.stat_result, started_ns: int) -> bool:
    """Whether ``st`` is old enough, against a scan that began at ``started_ns``, that a
    later change cannot share its timestamps."""
    whole_seconds = st.st_mtime_ns % _SECOND_NS == 0 and st.st_ctime_ns % _SECOND_NS == 0
    margin = COARSE_MARGIN_NS if whole_seconds else FINE_MARGIN_NS
    return max(st.st_mtime_ns, st.st_ctime_ns) < started_ns - margin


def _link_state(path: str) -> list[Any]:
    """What discovery sees of a link: where it leads and what is there (0: nothing)."""
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
    except OSError:
        kind = 0
    return [os.path.realpath(path), kind]


@dataclass(frozen=True)
class FileSeen:
    """One indexed file as the fingerprint read it: its stamp (``None`` when too recent to
    be trusted, or unreadable) and its sha256 (``None``: unreadable)."""

    path: str
    stamp: list[int] | None
    sha256: str | None


def _relative(path: Path, root: Path) -> str:
    text, prefix = str(path), os.path.join(str(root), "")
    return text[len(prefix) :] if text.startswith(prefix) else str(path.relative_to(root))


def _read_file(path: Path, known: dict[str, tuple[list[int], str]], started_ns: int) -> FileSeen:
    """Stat, then hash unless ``known`` holds the sha256 recorded with this very stamp. The
    stat comes first: a change made after it shows as a changed stamp next time."""
    key = str(path)
    try:
        st = os.stat(key)
    except OSError:
        return FileSeen(key, None, None)
    now = stamp(st)
    trusted = now if _settled(st, started_ns) else None
    recorded = known.get(key)
    if recorded is not None and recorded[0] == now:
        return FileSeen(key, trusted, recorded[1])
    try:
        return FileSeen(key, trusted, hashlib.sha256(path.read_bytes()).hexdigest())
    except OSError:
        return FileSeen(key, None, None)


def digest(
    sources: Iterable[SkillSource],
    known: dict[str, tuple[list[int], str]] | None = None,
    started_ns: int | None = None,
) -> tuple[str, list[FileSeen]]:
    """The corpus fingerprint (``collection.corpus_fingerprint``) and each file as read.

    ``known``: ``{path: (stamp, sha256)}`` from a previous record; a file with the same
    stamp is not read again.
    """
    known = known or {}
    started_ns = time.time_ns() if started_ns is None else started_ns
    h = hashlib.sha256()
    seen = []
    for source in sources:
        h.update(str(source.root).encode(errors="surrogateescape") + b"\0")
        h.update(f"{source.path}|{source.problem}".encode(errors="surrogateescape") + b"\0")
        for path in source.files():
            h.update(_relative(path, source.root).encode(errors="surrogateescape") + b"\0")
            file = _read_file(path, known, started_ns)
            h.update(bytes.fromhex(file.sha256) if file.sha256 else b"<unreadable>")
            seen.append(file)
    return h.hexdigest(), seen


# -- the record a manifest keeps --------------------------------------------------------------


def _why_unvouched(walk: Walk, files: list[FileSeen], started_ns: int) -> str:
    """Why folder metadata cannot vouch for this walk next time; ``""`` when it can."""
    for path, st in walk.folders:
        if display_path(path) != path:
            return f"a name that is not UTF-8: {display_path(path)}"
        if not _settled(st, started_ns):
            return f"a folder changed just before the scan: {path}"
    for path in walk.links:
        if display_path(path) != path:
            return f"a name that is not UTF-8: {display_path(path)}"
    for file in files:
        if file.stamp is None:
            return f"a file changed just before the scan, or unreadable: {file.path}"
    return ""


# A record lists paths in one list and their stamps flat in another, STAMP_SIZE numbers each
# (a file whose stamp is not trusted has UNTRUSTED, which no stat gives): a manifest of tens
# of thousands of small lists took longer to parse, and to collect, than the check itself.
STAMP_SIZE = 5
UNTRUSTED = [-1] * STAMP_SIZE


def _columns(paths: list[str], stamps: Iterable[list[int]]) -> dict[str, list[Any]]:
    return {"paths": paths, "stamps": [n for s in stamps for n in s]}


def _stamps(column: dict[str, list[Any]]) -> Iterator[tuple[str, list[int]]]:
    """``(path, stamp)`` of a column made by ``_columns``."""
    flat = column["stamps"]
    if len(flat) != STAMP_SIZE * len(column["paths"]):
        raise ValueError("stamps out of step with their paths")
    for i, path in enumerate(column["paths"]):
        yield path, flat[STAMP_SIZE * i : STAMP_SIZE * (i + 1)]


def corpus_record(
    roots: Iterable[Path], walk: Walk, files: list[FileSeen], started_ns: int
) -> dict[str, Any]:
    """What the manifest keeps of the corpus an index was built from (``unchanged``)."""
    from retriever import __version__

    unvouched = _why_unvouched(walk, files, started_ns)
    folders = [] if unvouched else walk.folders
    hashed = [f for f in files if f.sha256 is not None]
    return {
        # discovery's rules are code: another version may find other files in the same tree
        "package_version": __version__,
        "roots": [str(r) for r in roots],
        "unvouched": unvouched,
        "folders": _columns([p for p, _ in folders], (stamp(st) for _, st in folders)),
        "links": [] if unvouched else [[p, _link_state(p)] for p in walk.links],
        "files": {
            **_columns([f.path for f in hashed], (f.stamp or UNTRUSTED for f in hashed)),
            "sha256": [f.sha256 for f in hashed],
        },
    }


def known_hashes(record: Any) -> dict[str, tuple[list[int], str]]:
    """``{path: (stamp, sha256)}`` of the files a record vouches for."""
    try:
        files = record["files"]
        return {
            path: (was, sha)
            for (path, was), sha in zip(_stamps(files), files["sha256"], strict=True)
            if was != UNTRUSTED
        }
    except (KeyError, TypeError, ValueError):  # no record, or not one of ours
        return {}


def indexed_paths(record: Any) -> set[str]:
    """Every file a record's build read (its stamp trusted or not)."""
    try:
        return set(record["files"]["paths"])
    except (KeyError, TypeError):  # no record, or not one of ours
        return set()


def unchanged(record: Any, roots: Iterable[Path]) -> bool:
    """Whether every folder, link and file of ``record`` is as recorded: then the skill
    files under ``roots`` are exactly those the record was made from."""
    from retriever import __version__

    try:
        if (
            record["package_version"] != __version__
            or record["unvouched"]
            or record["roots"] != [str(r) for r in roots]
        ):
            return False
        for path, was in _stamps(record["folders"]):
            if stamp(os.lstat(path)) != was:
                return False
        for path, was in record["links"]:
            if _link_state(path) != was:
                return False
        for path, was in _stamps(record["files"]):  # UNTRUSTED matches no stat
            if stamp(os.stat(path)) != was:
                return False
    except OSError:  # something recorded is gone
        return False
    except (KeyError, TypeError, ValueError):  # no record, or not one of ours
        return False
    return True


@dataclass(frozen=True)
class Scan:
    """A walk of the roots: the skills found, their fingerprint and the record to keep."""

    sources: list[SkillSource]
    fingerprint: str
    record: dict[str, Any]
    unreadable: tuple[LoadProblem, ...] = ()  # folders the walk could not list


def scan_corpus(roots: list[Path], previous: Any = None, *, verify: bool = False) -> Scan:
    """Discover the skills under ``roots`` and fingerprint them, hashing only the files
    whose stamp differs from ``previous`` (a record), or every file with ``verify``."""
    started_ns = time.time_ns()
    sources, walk = scan(roots)
    known = {} if verify else known_hashes(previous)
    fingerprint, files = digest(sources, known, started_ns)
    record = corpus_record(roots, walk, files, started_ns)
    return Scan(sources, fingerprint, record, unreadable_problems(walk))


def fingerprint_now(
    built_from: str,
    record: Any,
    roots: list[Path],
    *,
    verify: bool = False,
    scan: Callable[[Any], Scan] | None = None,
) -> str:
    """The corpus fingerprint of ``roots`` as the files are now, for comparing with
    ``built_from``, the one an index was built from: that one when the index's ``record``
    of its files vouches that nothing changed (no walk, no hashing), else a scan hashing
    only the files whose stamp moved (every file with ``verify``). ``scan``: how to scan,
    given the record (a caller that may build next passes one that keeps the scan for the
    build)."""
    if not verify and unchanged(record, roots):
        return built_from
    if scan is None:
        return scan_corpus(roots, record, verify=verify).fingerprint
    return scan(record).fingerprint
