"""The errors the library raises: one base class, a few precise subclasses.

Every message names the file, field or value at fault and, where there is one, the fix.
"""


class RetrieverError(Exception):
    """Base class of every error skill-retriever raises on purpose."""


class SkillLoadError(RetrieverError):
    """A skill root cannot be read at all (missing, not a folder, holds no skills)."""


class ModelError(RetrieverError):
    """The embedding model cannot be found or loaded."""


class IndexError_(RetrieverError):  # noqa: N801 - trailing underscore avoids the builtin name
    """A saved index is missing, damaged, or of an unknown format."""


class IndexWriteError(IndexError_):
    """An index cannot be written where it lives (read-only or immutable folder, disk full)."""


class StaleIndexError(IndexError_):
    """A saved index was built from another corpus or model than the one asked for."""


class QueryError(RetrieverError):
    """A query or query file is unusable (empty query, malformed JSON lines, ...)."""


class UnknownSkillError(RetrieverError):
    """A skill id is not in the collection."""
