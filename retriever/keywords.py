"""Whole-word phrase matching for keyword triggers and keyword handoff rules.

A phrase counts when its words stand in the query as whole words, in order, case-insensitive:
"cache" matches "the cache is stale" but never "cached" or "pycache". Words are runs of
letters and digits; a trailing "+" or "#" stays part of the word so "c++" and "c#" are not "c".
Punctuation between words does not matter ("cache-control" matches "Cache Control").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Iterable

_WORD = re.compile(r"[^\W_]+(?:[+#]+)?")


def words(text: str) -> tuple[str, ...]:
    """The lower-cased words of ``text``."""
    return tuple(_WORD.findall(text.lower()))


class PhraseMatcher:
    """Finds which of many phrases occur in a text, in time linear in the text's length.

    Each phrase carries a key (e.g. ``(skill_id, trigger_index)``); ``find`` returns the keys
    of the phrases found. Phrases are looked up by their word tuples, so no regex per phrase
    is run per query.
    """

    def __init__(self, phrases: Iterable[tuple[str, Hashable]]) -> None:
        self._keys: dict[tuple[str, ...], list[Hashable]] = defaultdict(list)
        for phrase, key in phrases:
            w = words(phrase)
            if w:
                self._keys[w].append(key)
        self._max_len = max((len(w) for w in self._keys), default=0)

    def find(self, text: str) -> dict[Hashable, tuple[str, ...]]:
        """``{key: matched words}`` for every phrase that stands in ``text`` as whole words."""
        w = words(text)
        found: dict[Hashable, tuple[str, ...]] = {}
        for n in range(1, min(self._max_len, len(w)) + 1):
            for i in range(len(w) - n + 1):
                gram = w[i:i + n]
                for key in self._keys.get(gram, ()):
                    found.setdefault(key, gram)
        return found


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` stands in ``text`` as whole words (see module docstring)."""
    return bool(PhraseMatcher([(phrase, 0)]).find(text))
