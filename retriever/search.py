"""Step 6 of the flow: answer a query from an opened index.

query (``query``) -> vector (``embed``) -> nearest documents (``vectors``) -> the ranking
rule (``rank``) -> handoff rules of the top skills (``handoffs``) -> typed results that say
why each skill is there (``results``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from retriever.documents import ANTI_PATTERN, PATTERN
from retriever.embed import Embedder
from retriever.errors import QueryError
from retriever.handoffs import HandoffRules
from retriever.query import clean_query
from retriever.rank import (
    Candidates,
    Ranked,
    RankingTables,
    ScoringConfig,
    Triggers,
    candidates,
    handoff_score,
    rank,
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
    shown,
)

if TYPE_CHECKING:
    import numpy as np

    from retriever.index import SkillIndex

PATTERN_KINDS = (PATTERN, ANTI_PATTERN)


class Searcher:
    """Everything a query needs, prepared once when an index is opened."""

    def __init__(self, index: SkillIndex, embedder: Embedder, config: ScoringConfig) -> None:
        import numpy as np

        self.config = config
        self.embedder = embedder
        self.vectors = index.vectors
        self.documents = index.documents
        self.skills = {s.id: s for s in index.skills}
        self.lexical = index.lexical
        self.tables = RankingTables(index.documents, [s.id for s in index.skills], config)

        # per skill: its pattern and anti-pattern rows, and each row's item name, so a
        # returned skill's patterns cost an index lookup
        self.pattern_rows: dict[str, np.ndarray] = {}
        self.pattern_names: dict[int, str] = {}
        rows_of: dict[str, list[int]] = defaultdict(list)
        for row, doc in enumerate(self.documents):
            if doc.kind in PATTERN_KINDS and doc.item is not None:
                rows_of[doc.skill_id].append(row)
                skill = self.skills[doc.skill_id]
                items = skill.patterns if doc.kind == PATTERN else skill.anti_patterns
                self.pattern_names[row] = items[doc.item].name
        for sid, rows in rows_of.items():
            self.pattern_rows[sid] = np.asarray(rows, dtype=np.int64)

        self.triggers = Triggers(index.skills)
        self.rules = HandoffRules(index.skills, index.rule_vectors)

    # -- the query path ---------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> SearchResult:
        query, notes, truncated = clean_query(query)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        qv, cut = self.embedder.encode_query(query)
        truncated = truncated or cut
        if cut:
            notes.append(
                "the query is longer than the model reads; only its start was "
                "embedded (keyword triggers were matched in all of it)"
            )
        near, all_scores = self.nearest(qv[0])
        keywords = self.triggers.find(query)
        ranking = rank(near, keywords, self.lexical.scores(query), self.tables, self.config, k)
        top = ranking.ranked
        handoffs = self._handoffs(query, qv[0], top)

        results = [self._skill_hit(r, qv[0], all_scores) for r in top]
        present = {r.skill_id for r in top}
        scores = {r.skill_id: r.score for r in top}
        for h in handoffs:
            if h.resolved and h.to_skill not in present:
                present.add(h.to_skill)
                results.append(self._handoff_hit(h, scores[h.from_skill], qv[0], all_scores))

        if ranking.no_match:
            notes.append(
                f"{NO_MATCH_NOTE}: the best skill scores {shown(ranking.top_score, 3)}, "
                f"under the {self.config.no_match_threshold} needed, and no trigger "
                "phrase matched; the skills listed are the nearest, not answers"
            )
        elif ranking.weak:
            notes.append(
                f"weak semantic match: the closest text ({self._closest(near)}) is "
                f"{shown(ranking.best)} similar, under "
                f"{self.config.weak_threshold}; keyword triggers lead"
            )
        # the best pattern of each top skill, best first (by score; equal scores in rank
        # order)
        firsts = [r.patterns[0] for r in results if r.patterns]
        patterns = sorted(firsts, key=lambda p: -p.score)[: self.config.top_patterns]
        return SearchResult(
            query=query,
            skills=tuple(results),
            patterns=tuple(patterns),
            handoffs=tuple(handoffs),
            weak=ranking.weak,
            no_match=ranking.no_match,
            notes=tuple(notes),
            truncated=truncated,
        )

    def nearest(self, query_vector: np.ndarray) -> tuple[Candidates, np.ndarray | None]:
        """The query's nearest documents grouped per skill, and every document's cosine when
        the search computed them (an exact index), else ``None``."""
        import numpy as np

        n = min(self.config.candidates, self.vectors.ntotal)
        if n == 0:
            rows = np.zeros(0, dtype=np.int64)
            return (candidates(np.zeros(0), rows, self.tables, self.config), None)
        scores, rows, all_scores = self.vectors.search(query_vector, n)
        return candidates(scores, rows, self.tables, self.config), all_scores

    def _closest(self, near: Candidates) -> str:
        """Which document was nearest the query, as ``skill field``."""
        if not len(near.scores):
            return "none"
        doc = self.documents[int(near.rows[int(near.scores.argmax())])]
        return f"{doc.skill_id} {doc.field}"

    def _handoffs(self, query: str, qv: np.ndarray, top: list[Ranked]) -> list[Handoff]:
        """Rules of the top skills that fire; one handoff per (from, to), best rule kept.

        Only rules of ranked skills are tried, never rules of skills that joined through a
        handoff, so a cycle (a -> b -> a) cannot loop.
        """
        sources = [r.skill_id for r in top[: self.config.handoff_from]]
        return [
            Handoff(
                f.rule.skill_id,
                f.rule.rule.target,
                f.reason,
                f.rule.rule.context,
                f.score,
                resolved=f.rule.rule.target in self.skills,
            )
            for f in self.rules.fire(query, qv, sources, self.config.rule_threshold)
        ]

    # -- building results -------------------------------------------------------------------

    def _skill_patterns(
        self, skill_id: str, qv: np.ndarray, all_scores: np.ndarray | None
    ) -> tuple[PatternHit, ...]:
        """The skill's patterns and anti-patterns scored exactly against the query.

        ``all_scores``: every document's cosine when the search computed them (exact
        index), else ``None`` and the skill's pattern vectors are read back.
        """
        import numpy as np

        rows = self.pattern_rows.get(skill_id)
        if rows is None:
            return ()
        if all_scores is not None:
            scores = all_scores[rows]
        else:
            scores = self.vectors.vectors(rows) @ qv
        order = np.argsort(-scores, kind="stable")[: self.config.patterns_per_skill]
        out = []
        for i in order.tolist():
            row = int(rows[i])
            d = self.documents[row]
            out.append(
                PatternHit(
                    skill_id,
                    d.kind,
                    self.pattern_names[row],
                    d.text,
                    float(scores[i]),
                    d.field,
                    d.item or 0,
                )
            )
        return tuple(out)

    def _skill_hit(self, r: Ranked, qv: np.ndarray, all_scores: np.ndarray | None) -> SkillHit:
        skill = self.skills[r.skill_id]
        matches = [
            Match(h.field, h.kind, h.text, h.score, SEMANTIC)
            for h in r.hits[: self.config.matches_per_skill]
        ]
        matches += [Match(k.field, "trigger", k.trigger, 1.0, KEYWORD) for k in r.keywords]
        return SkillHit(
            skill.id,
            skill.name,
            r.score,
            r.via,
            skill.description,
            skill.collection,
            tuple(matches),
            self._skill_patterns(skill.id, qv, all_scores),
        )

    def _handoff_hit(
        self, h: Handoff, source_score: float, qv: np.ndarray, all_scores: np.ndarray | None
    ) -> SkillHit:
        skill = self.skills[h.to_skill]
        match = Match(
            "handoff", HANDOFF, f"{h.from_skill} -> {h.to_skill}: {h.reason}", h.score, HANDOFF
        )
        return SkillHit(
            skill.id,
            skill.name,
            handoff_score(source_score, self.config),
            HANDOFF,
            skill.description,
            skill.collection,
            (match,),
            self._skill_patterns(skill.id, qv, all_scores),
        )
