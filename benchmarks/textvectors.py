"""Vectors by text, kept on disk: a benchmark that measures many document variants embeds
each distinct text once, whatever variant or run asks for it.

The store is one ``.npz`` per model under ``benchmarks/results/cache`` (texts and vectors);
it can be seeded from an index folder the library built (its documents' texts and vectors),
so the documents a build already embedded are never embedded again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import CACHE

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.embed import Embedder


class TextVectors:
    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        import numpy as np

        self.embedder = embedder
        safe = embedder.model_id.replace("/", "_")
        self.path = path or CACHE / f"textvectors-{safe}.npz"
        self._row: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._texts: list[str] = []
        self.embedded = 0
        if self.path.is_file():
            data = np.load(self.path, allow_pickle=False)
            texts = [str(t) for t in data["texts"]]
            self._add(texts, data["vectors"])
        self._saved = len(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, text: str) -> bool:
        return text in self._row

    def _add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        import numpy as np

        keep = []
        for i, t in enumerate(texts):
            if t not in self._row:
                self._row[t] = len(self._texts)
                self._texts.append(t)
                keep.append(i)
        if keep:
            self._blocks.append(np.asarray(vectors, dtype=np.float32)[keep])

    def _matrix(self) -> np.ndarray:
        import numpy as np

        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0] if self._blocks else np.zeros((0, 384), np.float32)

    def seed_from_index(self, index_dir: Path) -> int:
        """Add the texts and vectors of an index folder the library built; how many were new."""
        from retriever.index.store import load_index

        index = load_index(index_dir)
        before = len(self._texts)
        texts = [d.text for d in index.documents]
        self._add(texts, index.vectors.all_vectors())
        return len(self._texts) - before

    def encode(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """A vector for every text: known ones from the store, the others embedded (and
        stored)."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._row))
        if missing:
            print(f"  embedding {len(missing)} new texts", file=sys.stderr)
            # shortest first: batches of similar length pad less
            missing.sort(key=len)
            vectors = self.embedder.encode(missing, progress=progress)
            self._add(missing, vectors)
            self.embedded += len(missing)
            self.save()
        m = self._matrix()
        if not texts:
            return np.zeros((0, m.shape[1] if m.size else 384), np.float32)
        return m[[self._row[t] for t in texts]]

    def save(self) -> None:
        import numpy as np

        if len(self._texts) == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, texts=np.array(self._texts), vectors=self._matrix())
        tmp.replace(self.path)
        self._saved = len(self._texts)
