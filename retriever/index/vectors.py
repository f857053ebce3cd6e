"""Step 4 of the flow: the document vectors, and nearest-neighbour search over them.

The only module that imports FAISS. Vectors are unit length, so inner products are cosines.
Up to ``EXACT_MAX_DOCUMENTS`` the index is exact (``IndexFlatIP``) and a query scans every
vector with FAISS's SIMD kernel; above it, an inverted-file index (``IndexIVFFlat``) scans
only the lists nearest the query.

To use another vector library, reimplement ``VectorIndex`` here (``build``, ``save``/``load``,
``search``, ``vectors``, ``all_vectors``, ``ntotal``/``dimension``/``kind``); nothing else in
the package knows FAISS. The file name ``FILE`` is what the index folder stores.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FILE = "vectors.faiss"
# Up to this many documents the index is exact: a query scans every vector, about 1 ms per
# 10,000 documents here, so exact search stays under the query-time budget up to ~200,000
# documents (~9,000 skills). Above it an IVF index scans only the lists nearest the query;
# benchmarks/speed.py --scale measures how well its top 10 agrees.
EXACT_MAX_DOCUMENTS = 200_000
# Lists probed per query: at 50,000 synthetic skills (1.1 M documents, 4,262 lists) 768
# probes gave 99.3% identical top-10 rankings at 36-43 ms p50 (384: 98.7%; 48: 93.7% at
# 12 ms; the exact scan: 112-144 ms). Fewer probes miss tail documents that the soft-max
# sums over.
IVF_PROBES = 768
# A scan is split across threads only when it is long enough to pay for the hand-off
# (~50 us); 10k vectors of 384 dimensions take ~0.6 ms on one thread here.
PARALLEL_SCAN_MIN_ROWS = 4096


@functools.cache  # asked on every query; the answer never changes
def _default_scan_workers() -> int:
    return max(0, min(os.cpu_count() or 1, 4) - 1)


def import_library() -> None:
    """Import FAISS now, on the calling thread (see ``api``: imports must never race)."""
    import faiss  # noqa: F401


class VectorIndex:
    """Unit vectors searchable by inner product, with the thread settings it searches with.

    ``search_threads``: OpenMP threads for FAISS's own searches (IVF, or an exact index read
    whole). OpenMP's thread count is a per-thread setting, so it is set on the calling
    thread just before each call and touches no other thread. ``scan_workers``: pool threads
    that share an exact scan with the caller (default: one fewer than the cores, at most 3).
    """

    def __init__(
        self, index: Any, *, search_threads: int = 1, scan_workers: int | None = None
    ) -> None:
        self._index = index
        self.search_threads = search_threads
        self.scan_workers = _default_scan_workers() if scan_workers is None else scan_workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._flat = self._flat_view()

    # -- making, saving, loading -----------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray) -> VectorIndex:
        """An index of ``vectors`` (n x d, unit length): exact up to ``EXACT_MAX_DOCUMENTS``,
        IVF above."""
        import faiss
        import numpy as np

        n, dim = vectors.shape
        index: Any
        if n <= EXACT_MAX_DOCUMENTS:
            index = faiss.IndexFlatIP(dim)
            if n:
                index.add(vectors)
            return cls(index)
        nlist = int(4 * np.sqrt(n))  # the usual rule of thumb: lists of a few hundred vectors
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)  # a fixed sample: the same corpus gives the same index
        sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        # Training is the one place where every core pays; the setting is this thread's.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.train(sample)
            index.add(vectors)
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(_ready(index))

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        import faiss

        return cls(_ready(faiss.read_index(str(path))))

    # -- what it is ------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        """The index type, as the manifest records it (``IndexFlatIP``, ``IndexIVFFlat``)."""
        return type(self._index).__name__

    @property
    def exact(self) -> bool:
        return self._flat is not None

    @property
    def probes(self) -> int | None:
        """Lists an IVF index scans per query (``None`` for an exact index)."""
        return int(self._index.nprobe) if hasattr(self._index, "nprobe") else None

    @probes.setter
    def probes(self, n: int) -> None:
        if not hasattr(self._index, "nprobe"):
            raise ValueError("only an IVF index has lists to probe")
        self._index.nprobe = n

    # -- reading ---------------------------------------------------------------------------

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The ``n`` rows nearest ``query`` (a vector): ``(scores, rows, every row's score)``.

        On an exact index asked for fewer rows than it holds, every vector is scanned and
        partially sorted (about half the time of FAISS's heap-based top-k for a few hundred
        rows), and every row's score comes back too; otherwise FAISS searches and the last
        item is ``None``. Rows are in no particular order in the first case, best first in
        the second.
        """
        import numpy as np

        if self._flat is not None and n < self.ntotal:
            every = self.inner_products(query)
            rows = np.argpartition(-every, n - 1)[:n]
            return every[rows], rows, every
        import faiss

        faiss.omp_set_num_threads(self.search_threads)  # this thread's OpenMP setting
        found, rows = self._index.search(query.reshape(1, -1), n)
        keep = rows[0] >= 0
        return found[0][keep], rows[0][keep], None

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows``."""
        if self._flat is not None:
            return self._flat[rows]
        return self._index.reconstruct_batch(rows)

    def all_vectors(self) -> np.ndarray:
        """Every stored vector, in row order (a copy)."""
        import numpy as np

        if not self.ntotal:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_n(0, self.ntotal)

    def inner_products(self, query: np.ndarray) -> np.ndarray:
        """``vectors @ query`` over an exact index, with FAISS's SIMD kernel, a long scan
        split across threads.

        Not numpy: it hands a matrix-vector product this size to OpenBLAS, whose workers spin
        for a while after returning and take the cores the next query's onnxruntime forward
        needs (measured: a slower query p99). FAISS's kernel releases the GIL, so slices run
        in parallel on the calling thread and a few pool threads that sleep between queries.
        """
        if self._flat is None:
            raise ValueError("inner_products needs an exact index")
        return inner_products(self._flat, query, self.scan_workers, self._scan_pool)

    def _scan_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max(1, self.scan_workers), thread_name_prefix="retriever-scan"
                )
            return self._pool

    def _flat_view(self) -> np.ndarray | None:
        """The vectors of an exact index as a numpy array, without a copy (scoring a skill's
        own patterns then costs one small matrix product); ``None`` for other types."""
        import faiss
        import numpy as np

        index = self._index
        if not isinstance(index, faiss.IndexFlat) or index.ntotal == 0:
            return None
        return (
            faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d)
            .reshape(index.ntotal, index.d)
            .view(np.float32)
        )


def _ready(index: Any) -> Any:
    """An IVF index set up for searching: the probes, and the row map that reading vectors
    by row needs."""
    if hasattr(index, "nprobe"):
        index.nprobe = IVF_PROBES
        index.make_direct_map()
    return index


def inner_products(
    vectors: np.ndarray, query: np.ndarray, workers: int = 0, pool=None
) -> np.ndarray:
    """``vectors @ query`` with FAISS's SIMD kernel; with ``workers`` and a ``pool`` (a
    callable giving an executor), a scan of ``PARALLEL_SCAN_MIN_ROWS`` or more is split."""
    import faiss
    import numpy as np

    kernel = getattr(faiss, "fvec_inner_products_ny", None)
    if kernel is None or vectors.dtype != np.float32 or not vectors.flags.c_contiguous:
        return vectors @ query  # an old or unusual FAISS build: numpy's answer is the same
    query = np.ascontiguousarray(query, dtype=np.float32)
    out = np.empty(len(vectors), dtype=np.float32)

    def scan(lo: int, hi: int) -> None:
        kernel(
            faiss.swig_ptr(out[lo:hi]),
            faiss.swig_ptr(query),
            faiss.swig_ptr(vectors[lo:hi]),
            vectors.shape[1],
            hi - lo,
        )

    if pool is None or workers == 0 or len(vectors) < PARALLEL_SCAN_MIN_ROWS:
        scan(0, len(vectors))
        return out
    n, parts = len(vectors), workers + 1
    bounds = [n * i // parts for i in range(parts + 1)]
    executor = pool()
    futures = [
        executor.submit(scan, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)
    ]
    scan(bounds[0], bounds[1])
    for f in futures:
        f.result()
    return out
