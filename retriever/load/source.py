"""Where one skill is written, and the checks that keep reading it safe.

A ``SkillSource`` names a skill's main file, the side files beside it that feed the index,
and the root it was found under. ``checked`` refuses what must not be read: a path that is
not UTF-8, a file that is not a regular file (a FIFO would block forever), a link out of
the root.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

# Side files of a spawner skill, by role (in the flat layout named "<id>-<role>.yaml").
COLLABORATION = "collaboration"
SHARP_EDGES = "sharp-edges"
VALIDATIONS = "validations"
SIDE_ROLES = (COLLABORATION, SHARP_EDGES, VALIDATIONS)


@dataclass(frozen=True)
class SkillSource:
    """Where one skill is written: its format, main file, side files and root."""

    format: str  # the name of its format (``retriever.load.formats``)
    path: Path
    root: Path
    fallback_id: str  # the id when the file names none: its folder (or flat file) name
    sides: tuple[tuple[str, Path], ...] = ()  # (role, path) of side files that exist
    problem: str = ""  # why the skill must not be read (a link out of the root), if so
    # (path, reason) of side files left out; the skill itself is read
    notes: tuple[tuple[str, str], ...] = ()

    def side(self, role: str) -> Path | None:
        return next((p for r, p in self.sides if r == role), None)

    @property
    def collaboration(self) -> Path | None:
        return self.side(COLLABORATION)

    def files(self) -> tuple[Path, ...]:
        """The files whose content goes into the index (and so into its fingerprint)."""
        if self.problem:
            return ()
        return (self.path,) + tuple(p for r, p in self.sides if r in INDEXED_SIDES)


# Side files whose content the index holds: editing any of them makes an index stale.
INDEXED_SIDES = SIDE_ROLES


def display_path(path: Path | str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (which a file system allows in
    names) shown as ``\\xff`` escapes rather than kept as lone surrogates, which no
    terminal, JSON file or UTF-8 stream can carry."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def kind_of_file(path: Path) -> str:
    """``""`` for a regular file (links followed); otherwise what it is, e.g. ``"a FIFO"``."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return _kind_of_mode(mode)


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISREG(mode):
        return ""
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def _outside(path: Path, root: Path) -> Path | None:
    """Where ``path`` really points, when that is outside ``root`` (a link out); else None."""
    real = path.resolve()
    return None if real.is_relative_to(root) else real


def _look(path: Path, root: Path) -> tuple[str, Path | None]:
    """What ``path`` is (``kind_of_file``'s answer) and, for a link, where it leads when
    that is outside ``root``.

    One ``lstat`` for a path that is not a link: discovery walks from the resolved root and
    never enters a linked folder, so every folder above ``path`` is a real one inside the
    root and only a path that is itself a link can lead out. Links alone are resolved (a
    realpath costs a call per path component).
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        return f"unreadable ({e.strerror or e})", None
    if not stat.S_ISLNK(mode):
        return _kind_of_mode(mode), None
    kind = kind_of_file(path)
    return kind, None if kind else _outside(path, root)


def checked(source: SkillSource) -> SkillSource:
    """``source`` with a ``problem`` when its main file must not be read, and without the
    side files that must not be (each noted)."""
    if display_path(source.path) != str(source.path):
        return replace(
            source,
            sides=(),
            problem=(
                "the path is not valid UTF-8 (a byte no text can hold); not read: rename the "
                "file or folder"
            ),
        )
    kind, target = _look(source.path, source.root)
    if kind:
        # reading a FIFO would wait forever for a writer; a device could be endless
        return replace(source, sides=(), problem=f"is {kind}, not a regular file; not read")
    if target is not None:
        return replace(
            source,
            sides=(),
            problem=(
                f"links to {target}, outside the skills root; not read (pass that folder as "
                "another --skills root to include it)"
            ),
        )
    sides, notes = [], list(source.notes)
    for role, side in source.sides:  # the skill itself is still fine without them
        if display_path(side) != str(side):
            notes.append((display_path(side), "the path is not valid UTF-8; not read"))
            continue
        kind, target = _look(side, source.root)
        if kind:
            notes.append((str(side), f"is {kind}, not a regular file; not read"))
        elif target is not None:
            notes.append((str(side), f"links to {target}, outside the skills root; not read"))
        else:
            sides.append((role, side))
    return replace(source, sides=tuple(sides), notes=tuple(notes))
