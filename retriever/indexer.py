"""Build an index in memory: documents, their vectors, the handoff rule vectors, a manifest."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retriever.documents import Document, collection_documents, skill_documents
from retriever.embed import Embedder
from retriever.handoffs import rule_phrases
from retriever.lexical import LexicalIndex, build_lexical
from retriever.skill import LoadReport

if TYPE_CHECKING:
    import faiss
    import numpy as np

    from retriever.store import StoredIndex


@dataclass(frozen=True)
class BuiltIndex:
    manifest: dict[str, Any]
    index: faiss.Index
    documents: list[Document]
    rule_vectors: np.ndarray
    lexical: LexicalIndex


def skill_texts(report: LoadReport) -> list[str]:
    """One text per skill for BM25: all its indexed documents joined."""
    return ["\n".join(d.text for d in skill_documents(s)) for s in report.skills]


def rule_texts(report: LoadReport) -> list[str]:
    """One text per handoff rule, in the order ``Searcher`` numbers them (skills, then rules)."""
    return [rule.trigger for skill in report.skills for rule in skill.handoffs]


class VectorCache:
    """Vectors of texts embedded before, by text, from the index being replaced.

    The model is the same (a different model makes the old index useless), so an unchanged
    text has an unchanged vector: a rebuild after a one-line edit embeds only what changed.
    """

    def __init__(self, previous: StoredIndex | None, model_id: str) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        if previous is None or previous.manifest.get("model") != model_id:
            return
        import numpy as np

        n = previous.index.ntotal
        if n:
            stored = previous.index.reconstruct_n(0, n)
            for doc, v in zip(previous.documents, stored, strict=True):
                self._vectors[doc.text] = v
        old_rules = [r.trigger for s in previous.skills for r in s.handoffs]
        for text, v in zip(old_rules, np.asarray(previous.rule_vectors), strict=True):
            if v.any():  # keyword rules have a zero row, not a vector of their text
                self._vectors.setdefault(text, v)

    def encode(
        self, embedder: Embedder, texts: list[str], progress: bool
    ) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` and how many had to be embedded."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for t, v in zip(missing, embedder.encode(missing, progress=progress), strict=True):
                self._vectors[t] = v
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32), 0
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32), len(missing)


# Up to this many documents the index is exact (IndexFlatIP): a query scans every vector,
# about 1 ms per 10,000 documents here, so exact search stays under the query-time budget up
# to ~200,000 documents (~9,000 skills). Above it an inverted-file index (IVF) scans only the
# lists nearest the query; benchmarks/speed.py --scale measures how well its top 10 agrees.
EXACT_MAX_DOCUMENTS = 200_000
# Lists probed per query: at 50,000 synthetic skills (1.1 M documents, 4,262 lists) 768
# probes gave 99.3% identical top-10 rankings at 36-43 ms p50 (384: 98.7%; 48: 93.7% at
# 12 ms; the exact scan: 112-144 ms). Fewer probes miss tail documents that the soft-max
# sums over.
IVF_PROBES = 768


def make_faiss_index(vectors: np.ndarray) -> faiss.Index:
    """An inner-product index of ``vectors`` (unit length, so scores are cosines)."""
    import faiss
    import numpy as np

    n, dim = vectors.shape
    if n <= EXACT_MAX_DOCUMENTS:
        index = faiss.IndexFlatIP(dim)
        if n:
            index.add(vectors)
        return index
    nlist = int(4 * np.sqrt(n))  # the usual rule of thumb: lists of a few hundred vectors
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)  # a fixed sample: the same corpus gives the same index
    sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    # Searching runs FAISS on one thread (see search._vector_view); training is the one
    # place where every core pays.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        index.train(sample)
        index.add(vectors)
    finally:
        faiss.omp_set_num_threads(threads)
    index.nprobe = IVF_PROBES
    index.make_direct_map()  # per-skill pattern scoring reconstructs vectors by row
    return index


def build_index(
    report: LoadReport,
    embedder: Embedder,
    *,
    fingerprint: str,
    package_version: str,
    progress: bool = False,
    previous: StoredIndex | None = None,
) -> BuiltIndex:
    import numpy as np

    started = time.perf_counter()
    cache = VectorCache(previous, embedder.model_id)
    documents = collection_documents(report.skills)
    texts = rule_texts(report)
    # Keyword rules fire on words, not vectors: only natural-language rules are embedded
    # (about a fifth of the real corpus's rules); the others keep a zero row.
    semantic = [i for i, t in enumerate(texts) if not rule_phrases(t)]
    vectors, embedded = cache.encode(
        embedder, [d.text for d in documents] + [texts[i] for i in semantic], progress)
    doc_vectors = vectors[: len(documents)]
    dim = int(vectors.shape[1])
    rule_vectors = np.zeros((len(texts), dim), dtype=np.float32)
    rule_vectors[semantic] = vectors[len(documents):]
    index = make_faiss_index(doc_vectors)
    manifest = {
        "package_version": package_version,
        "model": embedder.model_id,
        "dimension": dim,
        "metric": "inner_product",
        "faiss_index": type(index).__name__,
        "corpus_fingerprint": fingerprint,
        "roots": list(report.roots),
        "counts": {
            "skills": len(report.skills),
            "documents": len(documents),
            "handoff_rules": len(texts),
            "problems": len(report.problems),
            "embedded": embedded,  # texts embedded by this build; the rest were reused
        },
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    return BuiltIndex(manifest, index, documents, rule_vectors,
                      build_lexical(skill_texts(report)))
