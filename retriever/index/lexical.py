"""BM25 over one text per skill (all its indexed documents joined), for hybrid ranking.

The index is built with bm25s (Lucene BM25, k1 1.5, b 0.75; English stopwords; Snowball
stemming with PyStemmer) and saved as plain arrays: bm25s precomputes every (token, skill)
score, so a query only sums the rows of its tokens. The query side re-implements bm25s's
tokenizer (same pattern, stopwords and stemmer, stored in the index) so a query never imports
bm25s or scipy; a test checks the scores equal bm25s's own. Saved as one arrays file
(``index.arrays``), read once with the rest of the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s.tokenize's default
STEMMER_LANGUAGE = "english"
FILE = "bm25.bin"  # in the index folder: ``to_bytes``


def import_stemmer() -> None:
    """Import PyStemmer now, on the calling thread (see ``api``: imports must never race)."""
    import Stemmer  # noqa: F401


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer(STEMMER_LANGUAGE)


@dataclass
class LexicalIndex:
    vocab: dict[str, int]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    num_docs: int
    stopwords: frozenset[str]

    def __post_init__(self) -> None:
        self._split = re.compile(TOKEN_PATTERN).findall
        self._stem = _stemmer().stemWord

    def tokens(self, text: str) -> list[str]:
        """The query's terms as bm25s makes them: lower-cased words, no stopwords, stemmed."""
        return [self._stem(w) for w in self._split(text.lower()) if w not in self.stopwords]

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every skill (in index order) for ``text``."""
        import numpy as np

        spans = [
            (self.indptr[t], self.indptr[t + 1])
            for t in (self.vocab.get(token) for token in self.tokens(text))
            if t is not None
        ]
        if not spans:
            return np.zeros(self.num_docs, dtype=np.float32)
        # one weighted count over the rows of every query term (a repeated term counts
        # again, as in bm25s)
        indices = np.concatenate([self.indices[lo:hi] for lo, hi in spans])
        data = np.concatenate([self.data[lo:hi] for lo, hi in spans])
        return np.bincount(indices, weights=data, minlength=self.num_docs).astype(np.float32)

    def to_bytes(self) -> bytes:
        """The index as one arrays file (``index.arrays``): the score matrix's arrays, and
        what the query side needs to tokenise as bm25s did (the parameters as meta)."""
        from retriever.index.arrays import arrays_file

        meta = {
            "num_docs": self.num_docs,
            "vocab": self.vocab,
            "stopwords": sorted(self.stopwords),
            "token_pattern": TOKEN_PATTERN,
            "stemmer": STEMMER_LANGUAGE,
            "method": "lucene",
            "k1": 1.5,
            "b": 0.75,
        }
        arrays = {"data": self.data, "indices": self.indices, "indptr": self.indptr}
        return arrays_file(arrays, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> LexicalIndex:
        """The index ``to_bytes`` wrote (its arrays are views of ``data``, not copies)."""
        from retriever.index.arrays import read_arrays_file

        meta, arrays = read_arrays_file(data)
        return cls(
            {str(k): int(v) for k, v in meta["vocab"].items()},
            arrays["data"],
            arrays["indices"],
            arrays["indptr"],
            int(meta["num_docs"]),
            frozenset(meta["stopwords"]),
        )


def build_lexical(texts: list[str]) -> LexicalIndex:
    """Index one text per skill with bm25s."""
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN

    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
    model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    model.index(tokens, show_progress=False)
    s = model.scores
    return LexicalIndex(
        dict(model.vocab_dict),
        s["data"],
        s["indices"],
        s["indptr"],
        int(s["num_docs"]),
        frozenset(STOPWORDS_EN),
    )
