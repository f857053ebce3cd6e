"""Find the skills under one or more roots, in every supported format.

Each folder is offered to the formats of ``load.formats`` in turn; the first that finds a
skill there decides. A folder that is a skill is not descended into: skill folders carry
references, scripts and examples whose YAML or Markdown files are not skills. Symbolic links
are never followed out of a root: nothing in a collection can make the retriever read
elsewhere (``source.checked``).

``scan`` also says what the walk saw of the folders themselves (``Walk``), so that a later
open can tell from folder metadata alone that no skill file was added, removed or renamed
(``load.changes``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retriever.errors import SkillLoadError
from retriever.load.formats import FORMATS
from retriever.load.source import SkillSource, checked, display_path
from retriever.skill import LoadProblem


@dataclass
class Walk:
    """What a scan saw of the folders themselves, for ``load.changes``: every folder it
    listed, with the ``lstat`` taken before listing it (a change made while it was being
    listed then shows as a change later), and every symbolic link among their entries
    (a link's target can change, appear or vanish while its folder stays as it was)."""

    folders: list[tuple[str, os.stat_result]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # folders that could not be listed (path, why): whatever skills they hold are left out,
    # and the load report says so
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _sources_in(folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
    """The skills written directly in ``folder``, and whether the folder is itself a skill."""
    for fmt in FORMATS:
        sources, is_skill = fmt.find(folder, names, root)
        if sources or is_skill:
            return sources, is_skill
    return [], False


def _checked_root(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise SkillLoadError(f"skills root not found: {root} (pass an existing folder)")
    if not root.is_dir():
        raise SkillLoadError(f"skills root is not a folder: {root}")
    root = root.resolve()
    if display_path(root) != str(root):
        raise SkillLoadError(
            f"skills root {display_path(root)}: the path is not valid "
            "UTF-8; rename it or pass another root"
        )
    return root


def _walk(top: str, walk: Walk) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)`` (top-down, links not followed, unreadable folders skipped), also
    recording each folder walked into ``walk``.

    As in ``os.walk``, a link to a folder is listed among the folder names but not entered,
    so a link loop cannot hang the walk and a link cannot lead out of the root.
    """
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(top) as entries:
            for entry in entries:
                if entry.is_symlink():
                    walk.links.append(entry.path)
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).append(entry.name)
    except OSError as e:
        walk.unreadable.append((display_path(Path(top)), e.strerror or str(e)))
        return
    yield top, dirs, files
    for name in dirs:  # what the caller kept
        path = os.path.join(top, name)
        try:
            st = os.lstat(path)  # before it is listed
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        walk.folders.append((path, st))
        yield from _walk(path, walk)


def scan(roots: list[Path] | tuple[Path, ...]) -> tuple[list[SkillSource], Walk]:
    """``discover``'s skills, and the ``Walk`` that found them."""
    found: list[SkillSource] = []
    walk = Walk()
    for root in map(_checked_root, roots):
        top = str(root)
        walk.folders.append((top, os.lstat(top)))
        for dirpath, dirnames, filenames in _walk(top, walk):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            folder = Path(dirpath)
            sources, is_skill = _sources_in(folder, filenames, root)
            found.extend(checked(s) for s in sources)
            if is_skill:
                dirnames[:] = []
    return found, walk


def discover(roots: list[Path] | tuple[Path, ...]) -> list[SkillSource]:
    """List every skill under ``roots``, in a stable order (roots in order, then by path).

    Raises ``SkillLoadError`` for a root that does not exist or is not a folder; a root that
    holds no skills yields nothing here and is reported by the loader.
    """
    return scan(roots)[0]


def unreadable_problems(walk: Walk) -> tuple[LoadProblem, ...]:
    """One load problem per folder the walk could not list."""
    return tuple(
        LoadProblem(
            path,
            f"folder cannot be read ({why}): the skills in it, if any, are left out",
            code="unreadable",
        )
        for path, why in walk.unreadable
    )
