"""The collection's center: the mean of its document vectors, at unit length.

The query's cosine with it says how much a query is about what the collection is about;
the confidence of a result reads it (``search.rank``: off-topic questions sit far from it
even when one document happens to match a word). A build stores it in the manifest, so
opening an index never sums the vectors; an index built before it is summed once, in
blocks, when opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# rows read at a time: a large index is never copied whole
BLOCK = 65536


def unit_mean(total: np.ndarray) -> np.ndarray:
    """``total`` (a sum of vectors) scaled to unit length, as float32; zero stays zero."""
    import numpy as np

    norm = float(np.linalg.norm(total))
    return (total / norm if norm > 0 else total).astype(np.float32)


def center_of(vectors: Callable[[np.ndarray], np.ndarray], n: int, dimension: int) -> np.ndarray:
    """The center of ``n`` vectors read by ``vectors(rows)`` in blocks; a zero vector for
    an empty collection."""
    import numpy as np

    total = np.zeros(dimension, dtype=np.float64)
    for start in range(0, n, BLOCK):
        block = vectors(np.arange(start, min(n, start + BLOCK)))
        total += block.sum(axis=0, dtype=np.float64)
    return unit_mean(total)


def center_of_array(vectors: np.ndarray) -> tuple[float, ...]:
    """The center of the rows of ``vectors``, as plain floats for a manifest."""
    return tuple(float(x) for x in center_of(lambda rows: vectors[rows], *vectors.shape))


def stored_center(center: tuple[float, ...] | None, dimension: int) -> np.ndarray | None:
    """A center a manifest recorded, as a vector; ``None`` when it has none of that size."""
    import numpy as np

    if center is None or len(center) != dimension:
        return None
    return np.asarray(center, dtype=np.float32)
