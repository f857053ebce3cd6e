"""Whole-word phrase matching for keyword triggers and keyword handoff rules.

A phrase counts when its words stand in the query as whole words, in order, case-insensitive:
"cache" matches "the cache is stale" but never "cached" or "pycache". Words are runs of
letters and digits; a trailing "+" or "#" stays part of the word so "c++" and "c#" are not "c".
Punctuation between words does not matter ("cache-control" matches "Cache Control").
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

_WORD = re.compile(r"[^\W_]+(?:[+#]+)?")


def words(text: str) -> tuple[str, ...]:
    """The lower-cased words of ``text``."""
    return tuple(_WORD.findall(text.lower()))


def word_spans(text: str) -> Iterator[re.Match[str]]:
    """Where each word of ``text`` stands (as ``words`` reads them, before lower-casing)."""
    return _WORD.finditer(text)


# Longer phrases are not matched as keywords (the loader reports them; they are still
# embedded): the longest trigger or rule phrase of the real collections has 7 words, and the
# cap keeps a query's matching linear in its length whatever a collection holds.
MAX_PHRASE_WORDS = 12


class PhraseMatcher:
    """Finds which of many phrases occur in a text, in time linear in the text's length.

    Each phrase carries a key (e.g. ``(skill_id, trigger_index)``); ``find`` returns the keys
    of the phrases found. Phrases sit in a trie of words: from each word of the text the
    walk goes at most ``MAX_PHRASE_WORDS`` words deep, so a query costs at most that many
    dictionary steps a word (phrases longer than that are left out).
    """

    def __init__(self, phrases: Iterable[tuple[str, Hashable]]) -> None:
        # a node: {word: child node}; the keys of the phrases ending at a node sit under
        # the key ``None``
        self._root: dict[Any, Any] = {}
        for phrase, key in phrases:
            w = words(phrase)
            if not w or len(w) > MAX_PHRASE_WORDS:
                continue
            node = self._root
            for word in w:
                node = node.setdefault(word, {})
            node.setdefault(None, []).append(key)

    def find(self, text: str) -> dict[Any, tuple[str, ...]]:
        """``{key: matched words}`` for every phrase that stands in ``text`` as whole words.

        A key with several phrases in the text gets its shortest one, the first of equals.
        """
        w = words(text)
        best: dict[Hashable, tuple[int, int]] = {}  # key -> (words, start) of its match
        for start in range(len(w)):
            node = self._root
            for end in range(start, min(len(w), start + MAX_PHRASE_WORDS)):
                child = node.get(w[end])
                if child is None:
                    break
                node = child
                n = end - start + 1
                for key in node.get(None, ()):
                    if key not in best or (n, start) < best[key]:
                        best[key] = (n, start)
        # in the order of the match's length, then place (the order callers list them in)
        order = sorted(best.items(), key=lambda item: item[1])
        return {key: w[start : start + n] for key, (n, start) in order}


def too_long(phrase: str) -> bool:
    """Whether ``phrase`` has more words than keyword matching reads."""
    return len(words(phrase)) > MAX_PHRASE_WORDS
