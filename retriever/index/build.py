"""Build an index in memory: documents, their vectors, the handoff rule vectors, a manifest."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from retriever.index.center import center_of_array
from retriever.index.documents import Document, collection_documents, recipe
from retriever.index.embed import Embedder, require_finite
from retriever.index.lexical import build_lexical
from retriever.index.manifest import Counts, Manifest
from retriever.index.tables import DocumentTable, SkillIndex
from retriever.index.vectors import VectorIndex
from retriever.rules import CompiledRule, compile_rules
from retriever.skill import LoadReport, Skill

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.cache import EmbeddingCache
    from retriever.index.progress import BuildProgress


def same_vectors(manifest: Manifest, embedder: Embedder) -> bool:
    """Whether an index of ``manifest`` holds the vectors ``embedder`` gives: the same model
    run the same way (``Embedder.variant``)."""
    return manifest.model == embedder.model_id and manifest.variant == embedder.variant


def skill_texts(skills: Sequence[Skill], documents: Sequence[Document] | None = None) -> list[str]:
    """One text per skill for BM25: all its indexed documents joined (``documents``: the
    collection's, when already made)."""
    texts: dict[str, list[str]] = {s.id: [] for s in skills}
    for d in collection_documents(skills) if documents is None else documents:
        texts[d.skill_id].append(d.text)
    return ["\n".join(texts[s.id]) for s in skills]


class VectorCache:
    """Vectors of texts embedded before, by text: first the index being replaced (same
    model: an unchanged text has an unchanged vector), then the shared embedding cache of
    the index home (``index.cache``, when the embedder has a ``cache_key``), then the model
    for the rest, which go into the shared cache for the next build of any collection.

    ``plan`` says how many texts are left to embed (the build announces it); ``encode``
    embeds them and returns every text's vector.
    """

    def __init__(
        self,
        previous: SkillIndex | None,
        embedder: Embedder,
        shared: EmbeddingCache | None = None,
    ) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        self._asked: set[str] = set()  # texts the shared cache was asked for already
        self._embedder = embedder
        self._shared = shared if embedder.cache_key else None
        self.cached = 0  # texts whose vectors came from the previous index or the cache
        self.embedded = 0
        self.embed_seconds = 0.0
        self.estimated_seconds: float | None = None
        if previous is None or not same_vectors(previous.manifest, embedder):
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

    def plan(self, texts: Sequence[str]) -> list[str]:
        """The distinct ``texts`` that no earlier vector answers: what ``encode`` embeds.
        The shared cache is asked once per text (a build plans, to announce, then encodes)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        ask = [t for t in missing if t not in self._asked]
        if ask and self._shared is not None and self._embedder.cache_key:
            found = self._shared.get(self._embedder.cache_key, ask, self._embedder.dimension)
            self._vectors.update(found)
            self._asked.update(ask)
            missing = [t for t in missing if t not in found]
        return missing

    def encode(self, texts: list[str], progress: BuildProgress | bool = False) -> np.ndarray:
        """Vectors for ``texts``, one row each, embedding only what ``plan`` left
        (``progress`` counts them)."""
        import numpy as np

        from retriever.index.progress import BuildProgress

        missing = self.plan(texts)
        tracker = BuildProgress.of(progress)
        if missing:
            started = time.perf_counter()
            fresh = self._embedder.encode_tracked(missing, tracker)
            self.embed_seconds = round(time.perf_counter() - started, 2)
            if tracker.estimate is not None:
                self.estimated_seconds = round(tracker.estimate, 2)
            require_finite(fresh, self._embedder.model_id)
            for t, v in zip(missing, fresh, strict=True):
                self._vectors[t] = v
            if self._shared is not None and self._embedder.cache_key:
                self._shared.put(self._embedder.cache_key, missing, fresh)
        self.embedded = len(missing)
        self.cached = len(set(texts)) - len(missing)
        if not texts:
            return np.zeros((0, self._embedder.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)


def embedded_texts(documents: Sequence[Document], rules: Sequence[CompiledRule]) -> list[str]:
    """The texts a build embeds, in the order of their vectors: every document, then the
    natural-language handoff rules (keyword rules fire on words and keep a zero row)."""
    return [d.text for d in documents] + [r.rule.trigger for r in rules if not r.is_keyword]


def build_index(
    report: LoadReport,
    embedder: Embedder,
    *,
    fingerprint: str,
    package_version: str,
    progress: BuildProgress | bool = False,
    previous: SkillIndex | None = None,
    vectors: VectorCache | None = None,
    documents: Sequence[Document] | None = None,
    corpus: dict[str, Any] | None = None,
) -> SkillIndex:
    """The index of ``report``'s skills, in memory. ``vectors``: where known vectors come
    from (default: ``previous`` only); ``documents``: the collection's documents when the
    caller made them already (they are made once per build); ``corpus``: the record of the
    skill files (``load.changes``) for the manifest."""
    import numpy as np

    started = time.perf_counter()
    cache = vectors or VectorCache(previous, embedder)
    documents = collection_documents(report.skills) if documents is None else documents
    rules = compile_rules(report.skills)
    semantic = [r.row for r in rules if not r.is_keyword]
    every = cache.encode(embedded_texts(documents, rules), progress)
    doc_vectors = every[: len(documents)]
    dim = int(every.shape[1])
    rule_vectors = np.zeros((len(rules), dim), dtype=np.float32)
    rule_vectors[semantic] = every[len(documents) :]
    index = VectorIndex.build(doc_vectors)
    manifest = Manifest(
        package_version=package_version,
        model=embedder.model_id,
        variant=embedder.variant,
        dimension=dim,
        metric="inner_product",
        faiss_index=index.kind,
        corpus_fingerprint=fingerprint,
        documents=recipe(),
        roots=tuple(report.roots),
        counts=Counts(
            skills=len(report.skills),
            documents=len(documents),
            handoff_rules=len(rules),
            problems=len(report.problems),
            embedded=cache.embedded,
            cached=cache.cached,
        ),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.perf_counter() - started, 2),
        embed_seconds=cache.embed_seconds,
        estimated_seconds=cache.estimated_seconds,
        corpus=corpus,
        center=center_of_array(doc_vectors),  # what opening reads, never summing the vectors
    )
    skill_ids = [s.id for s in report.skills]
    return SkillIndex(
        manifest,
        index,
        DocumentTable.of(list(documents), skill_ids),  # made once: ranking and the store read it
        tuple(report.skills),
        rule_vectors,
        build_lexical(skill_texts(report.skills, documents)),
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
    kept = np.ascontiguousarray(every[rows])
    return SkillIndex(
        replace(index.manifest, center=center_of_array(kept)),  # the center of what is kept
        VectorIndex.build(kept),
        documents,
        index.skills,
        index.rule_vectors,
        build_lexical(["\n".join(texts[s.id]) for s in index.skills]),
        index.problems,
    )
