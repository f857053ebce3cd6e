"""Step 6a of the flow: a query made safe to embed and match, and the notes on what changed."""

from __future__ import annotations

import re

from retriever.errors import QueryError
from retriever.phrases import word_spans

# A query is cut to this many words (after cleaning): far beyond what the model reads (256
# tokens for the default model), and it bounds the keyword matching of a pasted document.
# Words, not characters: 10,000 emoji before "redis" must not cut "redis" away.
MAX_QUERY_WORDS = 2_000
# Characters kept before any other work, so that cleaning a pasted megabyte costs little.
MAX_QUERY_CHARS = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates: not Unicode text (a command line's undecodable byte becomes one); the
# tokenizer refuses them and no UTF-8 stream can carry them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# The most skills a served search returns (HTTP, MCP, the hook): a caller asking for more
# wants the whole collection, which a search is not for.
MAX_K = 50


def check_k(k: object, most: int | None = None) -> int:
    """``k`` when it is a whole number from 1 to ``most`` (no bound: ``None``), else
    ``QueryError`` saying so: the one check of every way a search is asked for."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or (most is not None and k > most):
        bound = f"from 1 to {most}" if most is not None else "of at least 1"
        raise QueryError(f"k must be a whole number {bound}, not {k!r}")
    return k


def clean_query(query: object) -> tuple[str, list[str], bool]:
    """The query made safe to embed, notes on what was changed, and whether it was cut.

    Control characters and lone surrogates become spaces; then a query of more than
    ``MAX_QUERY_WORDS`` words is cut after its last kept word. ``QueryError`` for a
    non-string or a query with no words.
    """
    if not isinstance(query, str):
        raise QueryError(f"query must be a string, not {type(query).__name__}")
    notes, cut = [], False
    if len(query) > MAX_QUERY_CHARS:
        notes.append(
            f"the query was cut to its first {MAX_QUERY_CHARS:,} characters (of {len(query):,})"
        )
        query, cut = query[:MAX_QUERY_CHARS], True
    if _SURROGATE.search(query):
        notes.append("characters that are not valid Unicode were removed from the query")
        query = _SURROGATE.sub(" ", query)
    query = " ".join(_CONTROL.sub(" ", query).split())
    spans = [m.end() for m in word_spans(query)]
    if not spans:
        raise QueryError("query is empty: give some words describing the task")
    if len(spans) > MAX_QUERY_WORDS:
        notes.append(
            f"the query was cut to its first {MAX_QUERY_WORDS:,} words (of {len(spans):,})"
        )
        query, cut = query[: spans[MAX_QUERY_WORDS - 1]], True
    return query, notes, cut
