"""Build an index in memory: documents, their vectors, the handoff rule vectors, a manifest."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retriever.index.documents import collection_documents, recipe
from retriever.index.embed import Embedder, require_finite
from retriever.index.lexical import build_lexical
from retriever.index.tables import SkillIndex
from retriever.index.vectors import VectorIndex
from retriever.rules import compile_rules
from retriever.skill import LoadReport, Skill

if TYPE_CHECKING:
    import numpy as np


def skill_texts(skills: Sequence[Skill]) -> list[str]:
    """One text per skill for BM25: all its indexed documents joined."""
    texts: dict[str, list[str]] = {s.id: [] for s in skills}
    for d in collection_documents(skills):
        texts[d.skill_id].append(d.text)
    return ["\n".join(texts[s.id]) for s in skills]


class VectorCache:
    """Vectors of texts embedded before, by text, from the index being replaced.

    The model is the same (a different model makes the old index useless), so an unchanged
    text has an unchanged vector: a rebuild after a one-line edit embeds only what changed.
    """

    def __init__(self, previous: SkillIndex | None, model_id: str) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        if previous is None or previous.manifest.get("model") != model_id:
            return
        import numpy as np

        stored = previous.vectors.all_vectors()
        for doc, v in zip(previous.documents, stored, strict=True):
            self._vectors[doc.text] = v
        for rule, v in zip(
            compile_rules(previous.skills), np.asarray(previous.rule_vectors), strict=True
        ):
            if not rule.is_keyword:  # keyword rules have a zero row, not a vector of their text
                self._vectors.setdefault(rule.rule.trigger, v)

    def encode(
        self, embedder: Embedder, texts: list[str], progress: bool
    ) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` and how many had to be embedded."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = embedder.encode(missing, progress=progress)
            require_finite(fresh, embedder.model_id)
            for t, v in zip(missing, fresh, strict=True):
                self._vectors[t] = v
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32), 0
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32), len(missing)


def build_index(
    report: LoadReport,
    embedder: Embedder,
    *,
    fingerprint: str,
    package_version: str,
    progress: bool = False,
    previous: SkillIndex | None = None,
) -> SkillIndex:
    import numpy as np

    started = time.perf_counter()
    cache = VectorCache(previous, embedder.model_id)
    documents = collection_documents(report.skills)
    rules = compile_rules(report.skills)
    # Keyword rules fire on words, not vectors: only natural-language rules are embedded
    # (about a fifth of the real corpus's rules); the others keep a zero row.
    semantic = [r.row for r in rules if not r.is_keyword]
    vectors, embedded = cache.encode(
        embedder, [d.text for d in documents] + [rules[i].rule.trigger for i in semantic], progress
    )
    doc_vectors = vectors[: len(documents)]
    dim = int(vectors.shape[1])
    rule_vectors = np.zeros((len(rules), dim), dtype=np.float32)
    rule_vectors[semantic] = vectors[len(documents) :]
    index = VectorIndex.build(doc_vectors)
    manifest = {
        "package_version": package_version,
        "model": embedder.model_id,
        "dimension": dim,
        "metric": "inner_product",
        "faiss_index": index.kind,
        "corpus_fingerprint": fingerprint,
        "documents": recipe(),
        "roots": list(report.roots),
        "counts": {
            "skills": len(report.skills),
            "documents": len(documents),
            "handoff_rules": len(rules),
            "problems": len(report.problems),
            "embedded": embedded,  # texts embedded by this build; the rest were reused
        },
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    return SkillIndex(
        manifest,
        index,
        tuple(documents),
        tuple(report.skills),
        rule_vectors,
        build_lexical(skill_texts(report.skills)),
        tuple(report.problems),
    )


def subset_index(
    index: SkillIndex, keep: Sequence[int], vectors: np.ndarray | None = None
) -> SkillIndex:
    """``index`` with only the documents of the rows ``keep`` (in order): their vectors (read
    from the index, or given: ``vectors``, every row's) in a new vector index, and BM25
    rebuilt over the kept text, so that a text left out is found neither way. Used to answer
    a query with an index that does not hold it (``selfeval``) and to measure a kind of
    document by leaving it out (benchmarks)."""
    import numpy as np

    rows = np.asarray(keep, dtype=np.int64)
    every = index.vectors.all_vectors() if vectors is None else vectors
    documents = tuple(index.documents[i] for i in rows.tolist())
    texts: dict[str, list[str]] = {s.id: [] for s in index.skills}
    for d in documents:
        texts[d.skill_id].append(d.text)
    return SkillIndex(
        index.manifest,
        VectorIndex.build(np.ascontiguousarray(every[rows])),
        documents,
        index.skills,
        index.rule_vectors,
        build_lexical(["\n".join(texts[s.id]) for s in index.skills]),
        index.problems,
    )
