"""How the speed benchmarks time queries, in one place.

Standard library and numpy only: ``query_ab`` loads this file by path inside processes that
import another source tree's ``retriever``, where this repository's ``benchmarks`` package
(and the ``retriever`` it imports) must not be loaded.
"""

from __future__ import annotations

import time

import numpy as np


def stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples, dtype=float)
    return {
        "median": float(np.median(a)),
        "p99": float(np.percentile(a, 99)),
        "min": float(a.min()),
        "runs": len(a),
    }


def query_times(retriever, queries: list[str]) -> list[float]:
    """Seconds per ``search(q, k=10)``, after five unmeasured warm-up queries."""
    for q in queries[:5]:
        retriever.search(q, k=10)
    times = []
    for q in queries:
        t = time.perf_counter()
        retriever.search(q, k=10)
        times.append(time.perf_counter() - t)
    return times
