"""The errors the library raises: one base class, a few precise subclasses.

Every message names the file, field or value at fault and, where there is one, the fix. For
code that acts on an error, each class has a ``code`` (a stable, machine-readable name), and
an error about an index that cannot be used says why in ``why`` and which folder in
``folder``: no caller parses a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class RetrieverError(Exception):
    """Base class of every error skill-retriever raises on purpose."""

    code = "error"


class SkillLoadError(RetrieverError):
    """A skill root cannot be read at all (missing, not a folder, holds no skills)."""

    code = "skills"


class ModelError(RetrieverError):
    """The embedding model cannot be found or loaded."""

    code = "model"


class IndexError_(RetrieverError):  # noqa: N801 - trailing underscore avoids the builtin name
    """A saved index is missing, damaged, or of an unknown format."""

    code = "index"


class IndexWriteError(IndexError_):
    """An index cannot be written where it lives (read-only or immutable folder, disk full)."""

    code = "index_write"


class StaleIndexError(IndexError_):
    """An index cannot be used as it is (missing, stale, damaged) and may not be rebuilt
    here. ``why``: the reason in words, without the advice; ``folder``: the index folder."""

    code = "index_stale"

    def __init__(self, message: str, *, why: str = "", folder: Path | None = None) -> None:
        super().__init__(message)
        self.why = why or message
        self.folder = folder


class IndexNotReadyError(RetrieverError):
    """A server was asked before its first index was ready: it is still being built
    (``code`` "building"; ``progress``: how far, ``index.progress.BuildProgress.snapshot``),
    or it could not be opened (``code`` "unavailable"; the message says why)."""

    code = "building"

    def __init__(self, message: str, *, code: str = "building", progress: dict | None = None):
        super().__init__(message)
        self.code = code
        self.progress = progress or {}


class QueryError(RetrieverError):
    """A query or query file is unusable (empty query, malformed JSON lines, ...)."""

    code = "query"


class UnknownSkillError(RetrieverError):
    """A skill id is not in the collection."""

    code = "unknown_skill"


# The skill file layouts a root may hold, for messages that say what was expected.
EXPECTED_LAYOUTS = "<dir>/skill.yaml, <dir>/<id>.yaml or <dir>/SKILL.md"


def no_skills(roots: Sequence[str | Path], problems: Sequence[object] = ()) -> SkillLoadError:
    """The one error for roots that hold no skill: where, the first problems met, and the
    layouts expected."""
    where = ", ".join(str(r) for r in roots)
    found = "; ".join(str(p) for p in problems[:3])
    return SkillLoadError(
        f"no skills found under {where}" + (f" ({found})" if found else "") + f": expected "
        f"{EXPECTED_LAYOUTS}"
    )
