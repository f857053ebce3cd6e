"""Build an index in memory: documents, their vectors, the handoff rule vectors, a manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retriever.documents import Document, collection_documents
from retriever.embed import Embedder
from retriever.skill import LoadReport

if TYPE_CHECKING:
    import faiss
    import numpy as np


@dataclass(frozen=True)
class BuiltIndex:
    manifest: dict[str, Any]
    index: faiss.Index
    documents: list[Document]
    rule_vectors: np.ndarray


def rule_texts(report: LoadReport) -> list[str]:
    """One text per handoff rule, in the order ``Searcher`` numbers them (skills, then rules)."""
    return [rule.trigger for skill in report.skills for rule in skill.handoffs]


def build_index(
    report: LoadReport,
    embedder: Embedder,
    *,
    fingerprint: str,
    package_version: str,
    progress: bool = False,
) -> BuiltIndex:
    import faiss
    import numpy as np

    started = time.perf_counter()
    documents = collection_documents(report.skills)
    vectors = embedder.encode([d.text for d in documents], progress=progress)
    dim = int(vectors.shape[1]) if len(vectors) else embedder.dimension
    # Exact inner product on unit vectors is cosine similarity; exhaustive search over a few
    # tens of thousands of documents costs about a millisecond.
    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    texts = rule_texts(report)
    rule_vectors = embedder.encode(texts) if texts else np.zeros((0, dim), dtype=np.float32)
    manifest = {
        "package_version": package_version,
        "model": embedder.model_id,
        "dimension": dim,
        "metric": "inner_product",
        "faiss_index": "IndexFlatIP",
        "corpus_fingerprint": fingerprint,
        "roots": list(report.roots),
        "counts": {
            "skills": len(report.skills),
            "documents": len(documents),
            "handoff_rules": len(texts),
            "problems": len(report.problems),
        },
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    return BuiltIndex(manifest, index, documents, rule_vectors)
