"""Step 6 of the flow: answer a query from an opened index.

query -> vector -> nearest documents (FAISS) -> per-skill aggregation + keyword triggers
(``rank``) -> handoff rules of the top skills (``handoffs``) -> typed results that say why
each skill is there.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.documents import ANTI_PATTERN, PATTERN, field_item
from retriever.embed import Embedder
from retriever.errors import QueryError
from retriever.handoffs import CompiledRule, rule_phrases
from retriever.keywords import PhraseMatcher, word_spans
from retriever.rank import (
    DocHit,
    Groups,
    KeywordHit,
    Ranked,
    ScoringConfig,
    group_candidates,
    order_candidates,
)
from retriever.results import (
    HANDOFF,
    KEYWORD,
    NO_MATCH_NOTE,
    SEMANTIC,
    Handoff,
    Match,
    PatternHit,
    SearchResult,
    SkillHit,
    kept,
    shown,
)

if TYPE_CHECKING:
    import numpy as np

    from retriever.store import StoredIndex

PATTERN_KINDS = (PATTERN, ANTI_PATTERN)
# A query is cut to this many words (after cleaning): far beyond what the model reads (256
# tokens for the default model), and it bounds the keyword matching of a pasted document.
# Words, not characters: 10,000 emoji before "redis" must not cut "redis" away.
MAX_QUERY_WORDS = 2_000
# Characters kept before any other work, so that cleaning a pasted megabyte costs little.
MAX_QUERY_CHARS = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates: not Unicode text (a command line's undecodable byte becomes one); the
# tokenizer refuses them and no UTF-8 stream can carry them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_query(query: object) -> tuple[str, list[str], bool]:
    """The query made safe to embed, notes on what was changed, and whether it was cut.

    Control characters and lone surrogates become spaces; then a query of more than
    ``MAX_QUERY_WORDS`` words is cut after its last kept word. ``QueryError`` for a
    non-string or a query with no words.
    """
    if not isinstance(query, str):
        raise QueryError(f"query must be a string, not {type(query).__name__}")
    notes, cut = [], False
    if len(query) > MAX_QUERY_CHARS:
        notes.append(f"the query was cut to its first {MAX_QUERY_CHARS:,} characters "
                     f"(of {len(query):,})")
        query, cut = query[:MAX_QUERY_CHARS], True
    if _SURROGATE.search(query):
        notes.append("characters that are not valid Unicode were removed from the query")
        query = _SURROGATE.sub(" ", query)
    query = " ".join(_CONTROL.sub(" ", query).split())
    spans = [m.end() for m in word_spans(query)]
    if not spans:
        raise QueryError("query is empty: give some words describing the task")
    if len(spans) > MAX_QUERY_WORDS:
        notes.append(f"the query was cut to its first {MAX_QUERY_WORDS:,} words "
                     f"(of {len(spans):,})")
        query, cut = query[:spans[MAX_QUERY_WORDS - 1]], True
    return query, notes, cut


@dataclass(frozen=True)
class _Nearest:
    """What the nearest-document step found for one query."""

    best: float  # the best cosine of any document
    groups: Groups  # the candidates by skill, with each skill's semantic score
    rows: np.ndarray  # the candidates' document rows
    scores: np.ndarray  # the candidates' cosines
    all_scores: np.ndarray | None  # every document's cosine (exact index only)


class Searcher:
    """Everything a query needs, prepared once when an index is opened."""

    def __init__(self, stored: StoredIndex, embedder: Embedder, config: ScoringConfig) -> None:
        self.config = config
        self.embedder = embedder
        self.index = stored.index
        self.documents = stored.documents
        self.skills = {s.id: s for s in stored.skills}
        self.rule_vectors = stored.rule_vectors
        self.lexical = stored.lexical
        # row of each skill in the BM25 index (the skills' order)
        self.skill_index = {s.id: i for i, s in enumerate(stored.skills)}
        self.skill_ids = [s.id for s in stored.skills]
        import numpy as np

        # each skill's place among the ids in sorted order: equal scores rank by id
        self.id_rank = np.argsort(np.argsort(np.array(self.skill_ids, dtype=object),
                                             kind="stable"), kind="stable")

        # per document: its skill's number and its kind's weight, for numpy aggregation
        self.doc_skill = np.array([self.skill_index[d.skill_id] for d in self.documents],
                                  dtype=np.int64)
        self.doc_weight = np.array([config.kind_weight(d.kind) for d in self.documents],
                                   dtype=np.float64)
        self.doc_count = np.maximum(np.bincount(self.doc_skill, minlength=len(self.skill_ids)),
                                    1).astype(np.float64)
        self.vectors = _vector_view(stored.index)

        # per skill: its pattern and anti-pattern rows, and each row's item name, so a
        # returned skill's patterns cost an index lookup, not a parse
        self.pattern_rows: dict[str, np.ndarray] = {}
        self.pattern_names: dict[int, str] = {}
        rows_of: dict[str, list[int]] = defaultdict(list)
        for row, doc in enumerate(self.documents):
            if doc.kind in PATTERN_KINDS:
                rows_of[doc.skill_id].append(row)
                skill = self.skills[doc.skill_id]
                items = skill.patterns if doc.kind == PATTERN else skill.anti_patterns
                self.pattern_names[row] = items[field_item(doc.field)].name
        for sid, rows in rows_of.items():
            self.pattern_rows[sid] = np.asarray(rows, dtype=np.int64)

        self.triggers = PhraseMatcher(
            (t, (s.id, i)) for s in stored.skills for i, t in enumerate(s.triggers)
        )
        self.rules: dict[str, list[CompiledRule]] = defaultdict(list)
        row = 0
        for s in stored.skills:  # the order ``indexer.rule_texts`` embedded them in
            for rule in s.handoffs:
                self.rules[s.id].append(CompiledRule(s.id, rule, row, rule_phrases(rule.trigger)))
                row += 1
        self.rule_phrases = PhraseMatcher(
            (p, (c.skill_id, c.row)) for cs in self.rules.values() for c in cs for p in c.phrases
        )

    # -- the query path ---------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> SearchResult:
        query, notes, truncated = clean_query(query)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        qv, cut = self._embed(query)
        truncated = truncated or cut
        if cut:
            notes.append("the query is longer than the model reads; only its start was "
                         "embedded (keyword triggers were matched in all of it)")
        near = self._nearest(qv)
        best = kept(near.best)  # decisions compare the value results show
        keywords = self._keyword_hits(query)
        top, weak = self._rank(query, near, keywords, k)
        # Decided on what the result shows: the best listed skill's score (its documents,
        # BM25 and triggers together), so that a clear winner is never called no match
        # and a no match never lists a skill above the threshold. A one-word trigger
        # ("rest", "test", "battery") is too common to vouch for a query on its own; a
        # matched phrase of two or more words is.
        top_score = kept(max((r.score for r in top), default=0.0))
        no_match = (top_score < self.config.no_match_threshold
                    and not any(k.n_words > 1 for k in keywords))
        handoffs = self._handoffs(query, qv[0], top)

        results = [self._skill_hit(r, qv[0], near.all_scores) for r in top]
        present = {r.skill_id for r in top}
        scores = {r.skill_id: r.score for r in top}
        for h in handoffs:
            if h.resolved and h.to_skill not in present:
                present.add(h.to_skill)
                results.append(self._handoff_hit(h, scores[h.from_skill], qv[0],
                                                 near.all_scores))

        if no_match:
            notes.append(f"{NO_MATCH_NOTE}: the best skill scores {shown(top_score, 3)}, "
                         f"under the {self.config.no_match_threshold} needed, and no trigger "
                         "phrase matched; the skills listed are the nearest, not answers")
        elif weak:
            notes.append(f"weak semantic match: the closest text ({self._closest(near)}) is "
                         f"{shown(best)} similar, under "
                         f"{self.config.weak_threshold}; keyword triggers lead")
        # the best pattern of each top skill, best first (by score; equal scores in rank
        # order)
        firsts = [r.patterns[0] for r in results if r.patterns]
        patterns = sorted(firsts, key=lambda p: -p.score)[: self.config.top_patterns]
        return SearchResult(
            query=query,
            skills=tuple(results),
            patterns=tuple(patterns),
            handoffs=tuple(handoffs),
            weak=weak,
            no_match=no_match,
            notes=tuple(notes),
            truncated=truncated,
        )

    def _closest(self, near: _Nearest) -> str:
        """Which document was nearest the query, as ``skill field``."""
        if not len(near.scores):
            return "none"
        doc = self.documents[int(near.rows[int(near.scores.argmax())])]
        return f"{doc.skill_id} {doc.field}"

    def _embed(self, query: str) -> tuple[np.ndarray, bool]:
        """The query's vector (1 x d), and whether the model read only its start."""
        one_pass = getattr(self.embedder, "encode_query", None)
        if one_pass is not None:  # tokenises once for both answers
            return one_pass(query)
        cut = bool(getattr(self.embedder, "truncates", lambda _: False)(query))
        return self.embedder.encode([query]), cut

    def _nearest(self, qv: np.ndarray) -> _Nearest:
        """The nearest documents of the query, aggregated per skill."""
        import numpy as np

        n = min(self.config.candidates, self.index.ntotal)
        if n == 0:
            rows = np.zeros(0, dtype=np.int64)
            return _Nearest(0.0, group_candidates(rows, rows, rows, self.config), rows,
                            np.zeros(0), None)
        all_scores = None
        if self.vectors is not None and n < self.index.ntotal:
            # Exact index: one scan of every vector and a partial sort, about half the
            # time of FAISS's heap-based top-k for a few hundred candidates.
            all_scores = inner_products(self.vectors, qv[0])
            rows = np.argpartition(-all_scores, n - 1)[:n]
            scores = all_scores[rows]
        else:
            found, rows = self.index.search(qv, n)
            keep = rows[0] >= 0
            scores, rows = found[0][keep], rows[0][keep]
        scores = scores.astype("float64")
        groups = group_candidates(scores, self.doc_weight[rows], self.doc_skill[rows],
                                  self.config, doc_counts=self.doc_count)
        best = float(scores.max()) if len(scores) else 0.0
        return _Nearest(best, groups, rows, scores, all_scores)

    def _rank(self, query: str, near: _Nearest, keywords: list[KeywordHit],
              k: int) -> tuple[list[Ranked], bool]:
        """The first ``k`` candidate skills by ``rank.order_candidates``, and whether the
        semantic match was weak. Candidates: skills with a near document or a matched
        trigger; BM25 re-weighs them and never adds one."""
        import numpy as np

        groups = near.groups
        by_skill: dict[int, list[KeywordHit]] = defaultdict(list)
        for hit in keywords:
            by_skill[self.skill_index[hit.skill_id]].append(hit)
        if by_skill:
            candidates = np.union1d(groups.skills, np.fromiter(by_skill, dtype=np.int64))
            group_of = np.full(len(self.skill_ids), -1, dtype=np.int64)
            group_of[groups.skills] = np.arange(len(groups.skills))
            group = group_of[candidates]
        else:  # the groups are already one per skill, in skill order
            candidates, group = groups.skills, np.arange(len(groups.skills))
        semantic = np.append(groups.scores, 0.0)[group]  # -1 (no group): the appended 0.0
        counts = np.zeros(len(candidates), dtype=np.int64)
        n_words = np.zeros(len(candidates), dtype=np.int64)
        for number, hits in by_skill.items():
            at = int(np.searchsorted(candidates, number))
            counts[at] = len(hits)
            n_words[at] = sum(h.n_words for h in hits)
        bm25 = self.lexical.scores(query)[candidates].astype(np.float64)
        weak = kept(near.best) < self.config.weak_threshold
        order, scores, lex = order_candidates(semantic, counts, n_words, bm25,
                                              self.id_rank[candidates], weak, self.config, k)
        ranked = []
        for i in order.tolist():
            number, g = int(candidates[i]), int(group[i])
            hits = (self._doc_hits(groups.positions(g, self.config.matches_per_skill), near)
                    if g >= 0 else ())
            kws = tuple(by_skill.get(number, ()))
            ranked.append(Ranked(self.skill_ids[number], float(scores[i]),
                                 KEYWORD if kws and (weak or not hits) else SEMANTIC,
                                 float(semantic[i]), hits, kws, float(lex[i])))
        return ranked, weak

    def _doc_hits(self, positions: np.ndarray, near: _Nearest) -> tuple[DocHit, ...]:
        out = []
        for row, score in zip(near.rows[positions].tolist(), near.scores[positions].tolist(),
                              strict=True):
            d = self.documents[row]
            out.append(DocHit(row, d.skill_id, d.kind, d.field, d.text, score))
        return tuple(out)

    def _keyword_hits(self, query: str) -> list[KeywordHit]:
        out = []
        for (sid, i), gram in self.triggers.find(query).items():
            out.append(KeywordHit(sid, f"triggers[{i}]", self.skills[sid].triggers[i], len(gram)))
        return out

    def _handoffs(self, query: str, qv: np.ndarray, top: list[Ranked]) -> list[Handoff]:
        """Rules of the top skills that fire; one handoff per (from, to), best rule kept.

        Only rules of ranked skills are tried, never rules of skills that joined through a
        handoff, so a cycle (a -> b -> a) cannot loop.
        """
        sources = [r.skill_id for r in top[: self.config.handoff_from]]
        keyword_rows = {row: gram for (sid, row), gram in self.rule_phrases.find(query).items()
                        if sid in sources}
        best: dict[tuple[str, str], Handoff] = {}
        for sid in sources:
            for c in self.rules.get(sid, ()):
                if c.rule.target == sid:
                    continue
                if c.is_keyword:
                    gram = keyword_rows.get(c.row)
                    if gram is None:
                        continue
                    score = 1.0
                    reason = f"'{' '.join(gram)}' in the query matches rule '{c.rule.trigger}'"
                else:
                    score = float(self.rule_vectors[c.row] @ qv)
                    if score < self.config.rule_threshold:
                        continue
                    reason = f"the query resembles the rule '{c.rule.trigger}' ({score:.2f})"
                h = Handoff(sid, c.rule.target, reason, c.rule.context, score,
                            resolved=c.rule.target in self.skills)
                key = (sid, c.rule.target)
                if key not in best or score > best[key].score:
                    best[key] = h
        return sorted(best.values(), key=lambda h: (sources.index(h.from_skill), -h.score))

    # -- building results -------------------------------------------------------------------

    def _skill_patterns(self, skill_id: str, qv: np.ndarray,
                        all_scores: np.ndarray | None) -> tuple[PatternHit, ...]:
        """The skill's patterns and anti-patterns scored exactly against the query.

        ``all_scores``: every document's cosine when the search computed them (exact
        index), else ``None`` and the skill's pattern vectors are read back from FAISS.
        """
        import numpy as np

        rows = self.pattern_rows.get(skill_id)
        if rows is None:
            return ()
        if all_scores is not None:
            scores = all_scores[rows]
        else:
            scores = self.index.reconstruct_batch(rows) @ qv
        order = np.argsort(-scores, kind="stable")[: self.config.patterns_per_skill]
        out = []
        for i in order.tolist():
            row = int(rows[i])
            d = self.documents[row]
            out.append(PatternHit(skill_id, d.kind, self.pattern_names[row], d.text,
                                  float(scores[i]), d.field))
        return tuple(out)

    def _skill_hit(self, r: Ranked, qv: np.ndarray, all_scores: np.ndarray | None) -> SkillHit:
        skill = self.skills[r.skill_id]
        matches = [Match(h.field, h.kind, h.text, h.score, SEMANTIC)
                   for h in r.hits[: self.config.matches_per_skill]]
        matches += [Match(k.field, "trigger", k.trigger, 1.0, KEYWORD) for k in r.keywords]
        return SkillHit(skill.id, skill.name, r.score, r.via, skill.description,
                        skill.collection, tuple(matches),
                        self._skill_patterns(skill.id, qv, all_scores))

    def _handoff_hit(self, h: Handoff, source_score: float, qv: np.ndarray,
                     all_scores: np.ndarray | None) -> SkillHit:
        skill = self.skills[h.to_skill]
        match = Match("handoff", HANDOFF, f"{h.from_skill} -> {h.to_skill}: {h.reason}",
                      h.score, HANDOFF)
        # just under its source, whatever the source's sign (a weak match can score below 0)
        score = source_score - (1 - self.config.handoff_share) * abs(source_score)
        return SkillHit(skill.id, skill.name, score, HANDOFF,
                        skill.description, skill.collection, (match,),
                        self._skill_patterns(skill.id, qv, all_scores))


# A scan is split across threads only when it is long enough to pay for the hand-off
# (~50 us); 10k vectors of 384 dimensions take ~0.6 ms on one thread here.
PARALLEL_SCAN_MIN_ROWS = 4096
_scan_pool = None
_scan_pool_lock = threading.Lock()


@functools.cache  # asked on every query; the answer never changes
def _scan_workers() -> int:
    return max(0, min(os.cpu_count() or 1, 4) - 1)


def _pool():
    global _scan_pool
    with _scan_pool_lock:
        if _scan_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _scan_pool = ThreadPoolExecutor(_scan_workers(), thread_name_prefix="retriever-scan")
        return _scan_pool


def inner_products(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``vectors @ query`` with FAISS's SIMD kernel, a long scan split across threads.

    Not numpy: it hands a matrix-vector product this size to OpenBLAS, whose workers spin
    for a while after returning and take the cores the next query's onnxruntime forward
    needs (measured: a slower query p99). FAISS's kernel releases the GIL, so slices run
    in parallel on the calling thread and a few pool threads that sleep between queries.
    """
    import faiss
    import numpy as np

    kernel = getattr(faiss, "fvec_inner_products_ny", None)
    if kernel is None or vectors.dtype != np.float32 or not vectors.flags.c_contiguous:
        return vectors @ query  # an old or unusual FAISS build: numpy's answer is the same
    query = np.ascontiguousarray(query, dtype=np.float32)
    out = np.empty(len(vectors), dtype=np.float32)

    def scan(lo: int, hi: int) -> None:
        kernel(faiss.swig_ptr(out[lo:hi]), faiss.swig_ptr(query),
               faiss.swig_ptr(vectors[lo:hi]), vectors.shape[1], hi - lo)

    workers = _scan_workers() if len(vectors) >= PARALLEL_SCAN_MIN_ROWS else 0
    if workers == 0:
        scan(0, len(vectors))
        return out
    n, parts = len(vectors), workers + 1
    bounds = [n * i // parts for i in range(parts + 1)]
    pool = _pool()
    futures = [pool.submit(scan, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
    scan(bounds[0], bounds[1])
    for f in futures:
        f.result()
    return out


def _vector_view(index) -> np.ndarray | None:
    """The stored vectors of an exact (flat) FAISS index as a numpy array, without a copy.

    Scoring a skill's own patterns then costs one small matrix product; other index types
    return ``None`` and reconstruct vectors by row instead.
    """
    import faiss

    # One thread per single-query search: on a few cores, waking a thread pool costs more
    # than the scan of a few tens of thousands of vectors it would share.
    faiss.omp_set_num_threads(1)
    if not isinstance(index, faiss.IndexFlat) or index.ntotal == 0:
        return None
    import numpy as np

    return faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(
        index.ntotal, index.d).view(np.float32)
