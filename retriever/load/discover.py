"""Find the skills under one or more roots, in every supported layout.

Layouts:
- spawner folder: ``<dir>/skill.yaml`` with ``collaboration.yaml`` (and ``sharp-edges.yaml``,
  ``validations.yaml``, which are not indexed) beside it;
- spawner flat: ``<dir>/<id>.yaml`` with ``<id>-collaboration.yaml`` etc. beside it;
- Agent Skills: ``<dir>/SKILL.md``.

A folder that is a skill is not descended into: skill folders carry references, scripts and
examples whose YAML or Markdown files are not skills. Symbolic links are never followed out
of a root: nothing in a collection can make the retriever read elsewhere.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from retriever.errors import SkillLoadError

SPAWNER_FILE = "skill.yaml"
SKILL_MD = "SKILL.md"
# Files that sit beside a skill's main file; in the flat layout they carry an "<id>-" prefix.
SIDE_FILES = ("collaboration", "sharp-edges", "validations")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SkillSource:
    """Where one skill is written: its main file, an optional collaboration file, its root."""

    format: str  # "spawner", "spawner-flat" or "skill-md"
    path: Path
    root: Path
    collaboration: Path | None = None
    problem: str = ""  # why the skill must not be read (a link out of the root), if so
    # (path, reason) of side files left out; the skill itself is read
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def folder_name(self) -> str:
        return self.path.stem if self.format == "spawner-flat" else self.path.parent.name

    def files(self) -> tuple[Path, ...]:
        """The files whose content goes into the index (and so into its fingerprint)."""
        if self.problem:
            return ()
        return (self.path,) + ((self.collaboration,) if self.collaboration else ())


def _outside(path: Path, root: Path) -> Path | None:
    """Where ``path`` really points, when that is outside ``root`` (a link out); else None."""
    real = path.resolve()
    return None if real.is_relative_to(root) else real


def display_path(path: Path | str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (which a file system allows in
    names) shown as ``\\xff`` escapes rather than kept as lone surrogates, which no
    terminal, JSON file or UTF-8 stream can carry."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _kind_of_file(path: Path) -> str:
    """``""`` for a regular file (links followed); otherwise what it is, e.g. ``"a FIFO"``."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return ""
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return what
    return "not a regular file"


def _checked(source: SkillSource) -> SkillSource:
    if display_path(source.path) != str(source.path):
        return replace(source, collaboration=None, problem=(
            "the path is not valid UTF-8 (a byte no text can hold); not read: rename the "
            "file or folder"))
    kind = _kind_of_file(source.path)
    if kind:
        # reading a FIFO would wait forever for a writer; a device could be endless
        return replace(source, collaboration=None, problem=(
            f"is {kind}, not a regular file; not read"))
    target = _outside(source.path, source.root)
    if target is not None:
        return replace(source, collaboration=None, problem=(
            f"links to {target}, outside the skills root; not read (pass that folder as "
            "another --skills root to include it)"))
    side = source.collaboration
    if side is not None:  # the skill itself is still fine without it
        if display_path(side) != str(side):
            return replace(source, collaboration=None, notes=(
                (display_path(side), "the path is not valid UTF-8; not read"),))
        kind = _kind_of_file(side)
        if kind:
            return replace(source, collaboration=None, notes=(
                (str(side), f"is {kind}, not a regular file; not read"),))
        if _outside(side, source.root):
            return replace(source, collaboration=None)
    return source


def _is_side_file(stem: str) -> bool:
    return stem in SIDE_FILES or any(stem.endswith("-" + s) for s in SIDE_FILES)


def _sources_in(folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
    """The skills written directly in ``folder``, and whether the folder is itself a skill."""
    if SPAWNER_FILE in names:
        collab = folder / "collaboration.yaml"
        collab_or_none = collab if collab.exists() else None
        return [SkillSource("spawner", folder / SPAWNER_FILE, root, collab_or_none)], True
    if SKILL_MD in names:
        return [SkillSource("skill-md", folder / SKILL_MD, root)], True
    sources = []
    for name in sorted(names):
        stem, suffix = os.path.splitext(name)
        if suffix not in YAML_SUFFIXES or _is_side_file(stem) or name.startswith("."):
            continue
        collab = next(
            (folder / f"{stem}-collaboration{s}" for s in YAML_SUFFIXES
             if (folder / f"{stem}-collaboration{s}").exists()),
            None,
        )
        sources.append(SkillSource("spawner-flat", folder / name, root, collab))
    return sources, False


def discover(roots: list[Path] | tuple[Path, ...]) -> list[SkillSource]:
    """List every skill under ``roots``, in a stable order (roots in order, then by path).

    Raises ``SkillLoadError`` for a root that does not exist or is not a folder; a root that
    holds no skills yields nothing here and is reported by the loader.
    """
    found: list[SkillSource] = []
    for root in roots:
        root = Path(root).expanduser()
        if not root.exists():
            raise SkillLoadError(f"skills root not found: {root} (pass an existing folder)")
        if not root.is_dir():
            raise SkillLoadError(f"skills root is not a folder: {root}")
        root = root.resolve()
        if display_path(root) != str(root):
            raise SkillLoadError(f"skills root {display_path(root)}: the path is not valid "
                                 "UTF-8; rename it or pass another root")
        # followlinks=False: linked folders are not entered, so a link loop cannot hang the
        # walk and a link cannot lead out of the root.
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            folder = Path(dirpath)
            sources, is_skill = _sources_in(folder, filenames, root)
            found.extend(_checked(s) for s in sources)
            if is_skill:
                dirnames[:] = []
    return found
