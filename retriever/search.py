"""Step 6 of the flow: answer a query from an opened index.

query -> vector -> nearest documents (FAISS) -> per-skill aggregation + keyword triggers
(``rank``) -> handoff rules of the top skills (``handoffs``) -> typed results that say why
each skill is there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

from retriever.documents import ANTI_PATTERN, PATTERN, field_item
from retriever.embed import Embedder
from retriever.errors import QueryError
from retriever.handoffs import CompiledRule, rule_phrases
from retriever.keywords import PhraseMatcher, words
from retriever.rank import DocHit, KeywordHit, Ranked, ScoringConfig, aggregate_arrays, rank
from retriever.results import (
    HANDOFF,
    KEYWORD,
    SEMANTIC,
    Handoff,
    Match,
    PatternHit,
    SearchResult,
    SkillHit,
)

if TYPE_CHECKING:
    import numpy as np

    from retriever.store import StoredIndex

PATTERN_KINDS = (PATTERN, ANTI_PATTERN)
# Queries are cut here before any work: far beyond what the model reads (256 tokens for the
# default model), and it bounds the keyword matching of a pasted megabyte.
MAX_QUERY_CHARS = 10_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_query(query: object) -> tuple[str, list[str]]:
    """The query made safe to embed, and notes on what was changed.

    Control characters become spaces; a query of more than ``MAX_QUERY_CHARS`` is cut.
    ``QueryError`` for a non-string or a query with no words.
    """
    if not isinstance(query, str):
        raise QueryError(f"query must be a string, not {type(query).__name__}")
    notes = []
    if len(query) > MAX_QUERY_CHARS:
        notes.append(f"the query was cut to its first {MAX_QUERY_CHARS:,} characters "
                     f"(of {len(query):,})")
        query = query[:MAX_QUERY_CHARS]
    query = " ".join(_CONTROL.sub(" ", query).split())
    if not words(query):
        raise QueryError("query is empty: give some words describing the task")
    return query, notes


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

        # per document: its skill's number and its kind's weight, for numpy aggregation
        self.doc_skill = np.array([self.skill_index[d.skill_id] for d in self.documents],
                                  dtype=np.int64)
        self.doc_weight = np.array([config.kind_weight(d.kind) for d in self.documents],
                                   dtype=np.float64)
        self.doc_count = np.maximum(np.bincount(self.doc_skill, minlength=len(self.skill_ids)),
                                    1).astype(np.float64)
        self.vectors = _vector_view(stored.index)

        self.pattern_rows: dict[str, list[int]] = defaultdict(list)
        for row, doc in enumerate(self.documents):
            if doc.kind in PATTERN_KINDS:
                self.pattern_rows[doc.skill_id].append(row)

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
        query, notes = clean_query(query)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        truncated = bool(notes)
        if getattr(self.embedder, "truncates", lambda _: False)(query):
            truncated = True
            notes.append("the query is longer than the model reads; only its start was "
                         "embedded (keyword triggers were matched in all of it)")
        qv = self.embedder.encode([query])
        best, semantic, candidates = self._nearest(qv)
        keywords = self._keyword_hits(query)
        top, weak = rank(semantic, keywords, self.config,
                         self._lexical(query, semantic, keywords), best=best, limit=k)
        # A one-word trigger ("rest", "test", "battery") is too common to vouch for a query
        # on its own; a matched phrase of two or more words is.
        no_match = (best < self.config.no_match_threshold
                    and not any(k.n_words > 1 for k in keywords))
        handoffs = self._handoffs(query, qv[0], top)

        top = [replace(r, hits=self._doc_hits(r.hits, candidates)) for r in top]
        results = [self._skill_hit(r, qv[0]) for r in top]
        present = {r.skill_id for r in top}
        scores = {r.skill_id: r.score for r in top}
        for h in handoffs:
            if h.resolved and h.to_skill not in present:
                present.add(h.to_skill)
                results.append(self._handoff_hit(h, scores[h.from_skill], qv[0]))

        if no_match:
            notes.append(f"no skill in the collection fits this query: the closest text is "
                         f"{best:.2f} similar (< {self.config.no_match_threshold}) and no "
                         "trigger phrase matched; the skills listed are the nearest, not "
                         "answers")
        elif weak:
            notes.append(f"weak semantic match (best {best:.2f} < "
                         f"{self.config.weak_threshold}); keyword triggers lead")
        return SearchResult(
            query=query,
            skills=tuple(results),
            # the best pattern of each top skill, in rank order: the first answers the query
            # with the best skill's own guidance
            patterns=tuple(r.patterns[0] for r in results if r.patterns)[
                : self.config.top_patterns],
            handoffs=tuple(handoffs),
            weak=weak,
            no_match=no_match,
            notes=tuple(notes),
            truncated=truncated,
        )

    def _nearest(self, qv: np.ndarray):
        """The best cosine, and per skill ``(semantic score, (row, cosine) of its best
        documents)``, from the nearest documents."""
        import numpy as np

        n = min(self.config.candidates, self.index.ntotal)
        if n == 0:
            return 0.0, {}, None
        if self.vectors is not None and n < self.index.ntotal:
            # Exact index: one matrix-vector product and a partial sort, about half the
            # time of FAISS's heap-based top-k for a few hundred candidates.
            all_scores = self.vectors @ qv[0]
            rows = np.argpartition(-all_scores, n - 1)[:n]
            scores = all_scores[rows]
        else:
            found, rows = self.index.search(qv, n)
            keep = rows[0] >= 0
            scores, rows = found[0][keep], rows[0][keep]
        scores = scores.astype("float64")
        groups = aggregate_arrays(scores, self.doc_weight[rows], self.doc_skill[rows],
                                  self.config, keep=self.config.matches_per_skill,
                                  doc_counts=self.doc_count)
        # hits stay candidate positions until a skill is returned (see _doc_hits)
        semantic = {self.skill_ids[g]: (agg, pos.tolist()) for g, (agg, pos) in groups.items()}
        best = float(scores.max()) if len(scores) else 0.0
        return best, semantic, (rows, scores)

    def _doc_hits(self, positions: tuple[int, ...], candidates) -> tuple[DocHit, ...]:
        if not positions:  # a keyword-only skill
            return ()
        rows, scores = candidates
        out = []
        for i in positions:
            d = self.documents[int(rows[i])]
            out.append(DocHit(int(rows[i]), d.skill_id, d.kind, d.field, d.text,
                              float(scores[i])))
        return tuple(out)

    def _lexical(self, query: str, semantic, keywords) -> dict[str, float]:
        """BM25 scores of the candidate skills (BM25 re-weighs candidates, never adds)."""
        scores = self.lexical.scores(query)
        ids = set(semantic) | {k.skill_id for k in keywords}
        return {sid: float(scores[self.skill_index[sid]]) for sid in ids}

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

    def _skill_patterns(self, skill_id: str, qv: np.ndarray) -> tuple[PatternHit, ...]:
        """The skill's patterns and anti-patterns scored exactly against the query."""
        import numpy as np

        rows = self.pattern_rows.get(skill_id)
        if not rows:
            return ()
        if self.vectors is not None:
            vectors = self.vectors[rows]
        else:
            vectors = self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
        scores = vectors @ qv
        order = np.argsort(-scores)[: self.config.patterns_per_skill]
        return tuple(self._pattern_hit(DocHit(rows[i], skill_id, self.documents[rows[i]].kind,
                                              self.documents[rows[i]].field,
                                              self.documents[rows[i]].text, float(scores[i])))
                     for i in order)

    def _pattern_hit(self, h: DocHit) -> PatternHit:
        skill = self.skills[h.skill_id]
        items = skill.patterns if h.kind == PATTERN else skill.anti_patterns
        i = field_item(h.field)
        return PatternHit(h.skill_id, h.kind, items[i].name, h.text, h.score, h.field)

    def _skill_hit(self, r: Ranked, qv: np.ndarray) -> SkillHit:
        skill = self.skills[r.skill_id]
        matches = [Match(h.field, h.kind, h.text, h.score, SEMANTIC)
                   for h in r.hits[: self.config.matches_per_skill]]
        matches += [Match(k.field, "trigger", k.trigger, 1.0, KEYWORD) for k in r.keywords]
        return SkillHit(skill.id, skill.name, r.score, r.via, skill.description,
                        skill.collection, tuple(matches), self._skill_patterns(skill.id, qv))

    def _handoff_hit(self, h: Handoff, source_score: float, qv: np.ndarray) -> SkillHit:
        skill = self.skills[h.to_skill]
        match = Match("handoff", HANDOFF, f"{h.from_skill} -> {h.to_skill}: {h.reason}",
                      h.score, HANDOFF)
        # just under its source, whatever the source's sign (a weak match can score below 0)
        score = source_score - (1 - self.config.handoff_share) * abs(source_score)
        return SkillHit(skill.id, skill.name, score, HANDOFF,
                        skill.description, skill.collection, (match,),
                        self._skill_patterns(skill.id, qv))


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
