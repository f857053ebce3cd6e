"""Step 6 of the flow: answer a query from an opened index.

query (``query``) -> vector (``embed``) -> nearest documents (``vectors``) -> the ranking
rule (``rank``) -> handoff rules of the top skills (``handoffs``) -> typed results that say
why each skill is there (``results``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from retriever.index.center import center_of, stored_center
from retriever.index.documents import ANTI_PATTERN, PATTERN, PROBLEM_KINDS, SHARP_EDGE
from retriever.index.embed import Embedder, require_finite
from retriever.present.results import (
    HANDOFF,
    KEYWORD,
    LOW,
    LOW_CONFIDENCE_NOTE,
    NO_MATCH_NOTE,
    SEMANTIC,
    Answer,
    Handoff,
    Match,
    PatternHit,
    SearchResult,
    SkillHit,
    shown,
)
from retriever.search.answers import AnswerOrder, worth_listing
from retriever.search.handoffs import HandoffRules
from retriever.search.query import check_k, clean_query
from retriever.search.rank import (
    Candidates,
    DocHit,
    Ranked,
    Ranking,
    RankingTables,
    ScoringConfig,
    Triggers,
    candidates,
    handoff_score,
    rank,
)

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.tables import SkillIndex
    from retriever.skill import Skill

PATTERN_KINDS = (PATTERN, ANTI_PATTERN)
# What an answer quotes of a fix or solution: its first lines, this long at most.
FIX_CHARS = 280


def first_lines(text: str, limit: int = FIX_CHARS) -> str:
    """The start of ``text`` for a result: its first two lines, cut at a sentence or word
    near ``limit`` characters."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][:2]
    head = " ".join(lines)
    if len(head) <= limit:
        return head
    cut = head[:limit]
    stop = max(cut.rfind(". "), cut.rfind("; "))
    return cut[: stop + 1] if stop > limit // 2 else cut.rsplit(" ", 1)[0] + "…"


def answer_floor(scores: np.ndarray, rank: int) -> float:
    """The cosine of the ``rank``-th nearest document (``scores``: the nearest documents'
    cosines, at least the ``rank`` best among them): an answer must reach it."""
    import numpy as np

    if len(scores) <= rank:
        return float(scores.min()) if len(scores) else 0.0
    return float(np.partition(scores, -rank)[-rank])


def _spans(counts: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive runs of ``counts`` items."""
    spans, start = [], 0
    for n in counts:
        spans.append((start, start + n))
        start += n
    return spans


class Searcher:
    """Everything a query needs, prepared once when an index is opened."""

    def __init__(self, index: SkillIndex, embedder: Embedder, config: ScoringConfig) -> None:
        import numpy as np

        from retriever.index.tables import SkillTable

        self.config = config
        self.embedder = embedder
        self.vectors = index.vectors
        self.documents = index.documents
        skills = SkillTable.of(index.skills)
        # by id; a loaded index reads a whole skill only when a result needs it
        self.skills = skills.by_id
        self.lexical = index.lexical
        self.tables = RankingTables(index.documents, skills.ids, config)
        # the collection's center, for the confidence's evidence (``index.center``): read
        # from the manifest; summed from the vectors only for an index built before it
        stored = stored_center(index.manifest.center, self.vectors.dimension)
        self.center = (
            stored
            if stored is not None
            else center_of(self.vectors.vectors, self.vectors.ntotal, self.vectors.dimension)
        )
        self.answer_order = AnswerOrder(config, self.lexical.tokens)
        # per skill: its pattern and anti-pattern rows, and all its rows (for the similarity
        # of a handoff rule's target), so that a returned skill costs index lookups
        self.pattern_rows = self._rows_by_skill(self._pattern_rows())
        self.skill_rows = self._rows_by_skill(np.arange(len(self.documents)))
        # the trigger matcher needs only each skill's id and triggers
        self.triggers = Triggers(skills.keys)
        # Handoff rules are tried only for the skills that lead a ranking, so each skill's
        # are compiled when it first does (compiling all of a collection's, thousands, cost
        # more than the rest of opening it). A skill's rule vectors are its rows of the
        # index's rule matrix: skills in order, then each skill's rules (``compile_rules``).
        self.rule_vectors = index.rule_vectors
        self._rule_rows = dict(zip(skills.ids, _spans(skills.rule_counts), strict=True))
        self._rules: dict[str, HandoffRules] = {}

    def _rules_of(self, skill_id: str) -> HandoffRules:
        """One skill's handoff rules, compiled the first time they are asked for."""
        rules = self._rules.get(skill_id)
        if rules is None:  # two threads may compile the same rules: equal values
            start, end = self._rule_rows[skill_id]
            skill = self.skills[skill_id]
            rules = HandoffRules([skill], self.rule_vectors[start:end])
            self._rules[skill_id] = rules
        return rules

    def _pattern_rows(self) -> np.ndarray:
        """The rows of pattern and anti-pattern documents that name their item."""
        import numpy as np

        columns = self.tables.columns
        codes = [i for i, kind in enumerate(columns.kinds) if kind in PATTERN_KINDS]
        return np.flatnonzero(np.isin(columns.kind, codes) & (columns.item >= 0))

    def _rows_by_skill(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``rows`` (ascending) grouped by their document's skill, ascending in each."""
        import numpy as np

        if not len(rows):
            return {}
        skill = self.tables.doc_skill[rows]
        order = np.argsort(skill, kind="stable")
        rows, skill = rows[order], skill[order]
        starts = np.flatnonzero(np.r_[True, skill[1:] != skill[:-1]])
        ids = self.tables.skill_ids
        return {
            ids[int(skill[start])]: group
            for start, group in zip(starts.tolist(), np.split(rows, starts[1:]), strict=True)
        }

    # -- the query path ---------------------------------------------------------------------

    def rank(self, query: str, k: int = 10) -> list[str]:
        """The ids of the ``k`` best skills, best first: ``search``'s ranking, without the
        handoffs, answers and explanations it goes on to make (what evaluation needs)."""
        query = clean_query(query)[0]
        check_k(k)
        qv, _ = self.embedder.encode_query(query)
        require_finite(qv, self.embedder.model_id)
        near, _ = self.nearest(qv[0])
        keywords = self.triggers.find(query)
        ranking = rank(near, keywords, self.lexical.scores(query), self.tables, self.config, k)
        return [r.skill_id for r in ranking.ranked]

    def search(self, query: str, k: int = 5) -> SearchResult:
        query, notes, truncated = clean_query(query)
        check_k(k)
        qv, cut = self.embedder.encode_query(query)
        require_finite(qv, self.embedder.model_id)
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
        handoffs = worth_listing(self._handoffs(query, qv[0], top, all_scores), top)

        # a result that is no match answers nothing: its skills are the nearest, and a gotcha
        # of theirs is no answer to a question about something else
        floor = answer_floor(near.scores, self.config.answer_rank)
        answering = None if ranking.no_match else floor
        words = self.answer_order.query_words(query)
        results = [self._skill_hit(r, qv[0], all_scores, answering, words) for r in top]
        present = {r.skill_id for r in top}
        scores = {r.skill_id: r.score for r in top}
        for h in handoffs:
            if h.resolved and h.to_skill not in present:
                present.add(h.to_skill)
                results.append(self._handoff_hit(h, scores[h.from_skill], qv[0], all_scores))

        if ranking.no_match:
            notes.append(
                f"{NO_MATCH_NOTE}: {self._evidence(ranking)} is under the "
                f"{self.config.no_match_threshold} needed, and no trigger phrase matched; "
                "the skills listed are the nearest, not answers"
            )
        elif ranking.confidence == LOW:
            notes.append(
                f"{LOW_CONFIDENCE_NOTE}: {self._evidence(ranking)} is under the "
                f"{self.config.high_confidence_threshold} of a confident answer"
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
        answers = self.answer_order.headline(results, ranking.confidence, words)
        return SearchResult(
            query=query,
            skills=tuple(results),
            patterns=tuple(patterns),
            handoffs=tuple(handoffs),
            weak=ranking.weak,
            no_match=ranking.no_match,
            confidence=ranking.confidence,
            notes=tuple(notes),
            truncated=truncated,
            answers=tuple(answers[: self.config.top_answers]),
        )

    def _evidence(self, ranking: Ranking) -> str:
        """The confidence's evidence in words, with the numbers that make it."""
        c = self.config
        return (
            f"the evidence {shown(ranking.evidence, 3)} (best skill {shown(ranking.top_score, 3)}"
            f" + {c.evidence_best_weight} x closest text {shown(ranking.best, 3)}"
            f" + {c.evidence_center_weight} x the collection's center {shown(ranking.center, 3)})"
        )

    def handoffs_for(self, query: str, sources: list[str]) -> list[Handoff]:
        """The handoffs the rules of ``sources`` (skill ids) call for on ``query``, as if
        those skills were the top of the ranking."""
        query = clean_query(query)[0]
        qv, _ = self.embedder.encode_query(query)
        _, all_scores = self.nearest(qv[0])
        ranked = [Ranked(sid, 0.0, SEMANTIC, 0.0, (), ()) for sid in sources if sid in self.skills]
        return self._handoffs(query, qv[0], ranked[: self.config.handoff_from], all_scores)

    def nearest(self, query_vector: np.ndarray) -> tuple[Candidates, np.ndarray | None]:
        """The query's nearest documents grouped per skill, and every document's cosine when
        the search computed them (an exact index), else ``None``."""
        import numpy as np

        n = min(self.config.candidates, self.vectors.ntotal)
        if n == 0:
            rows = np.zeros(0, dtype=np.int64)
            return (candidates(np.zeros(0), rows, self.tables, self.config), None)
        scores, rows, all_scores = self.vectors.search(query_vector, n)
        center = float(self.center @ query_vector)
        return candidates(scores, rows, self.tables, self.config, center), all_scores

    def _closest(self, near: Candidates) -> str:
        """Which document was nearest the query, as ``skill field``."""
        if not len(near.scores):
            return "none"
        doc = self.documents[int(near.rows[int(near.scores.argmax())])]
        return f"{doc.skill_id} {doc.field}"

    def _handoffs(
        self, query: str, qv: np.ndarray, top: list[Ranked], all_scores: np.ndarray | None
    ) -> list[Handoff]:
        """Rules of the top skills that fire; one handoff per (from, to), best rule kept.

        Only rules of ranked skills are tried, never rules of skills that joined through a
        handoff, so a cycle (a -> b -> a) cannot loop.
        """
        sources = [r.skill_id for r in top[: self.config.handoff_from]]

        def target_similarity(skill_id: str) -> float:
            """The target's best document cosine with the query."""
            rows = self.skill_rows.get(skill_id)
            if rows is None or not len(rows):
                return 0.0
            scores = all_scores[rows] if all_scores is not None else self.vectors.vectors(rows) @ qv
            return float(scores.max())

        # each source's rules on their own: ``fire`` keeps one per (source, target) and
        # orders them by source, so this is the list all the sources' rules would give
        fired = [
            f
            for sid in sources
            for f in self._rules_of(sid).fire(
                query,
                qv,
                [sid],
                self.config.rule_threshold,
                target_similarity,
                self.config.lone_word_rule_threshold,
                self.config.asked_rule_threshold,
            )
        ]
        return [
            Handoff(
                f.rule.skill_id,
                f.rule.rule.target,
                f.reason,
                f.rule.rule.context,
                f.score,
                resolved=f.rule.rule.target in self.skills,
            )
            for f in fired
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
        skill = self.skills[skill_id]
        out = []
        for i in order.tolist():
            d = self.documents[int(rows[i])]
            items = skill.patterns if d.kind == PATTERN else skill.anti_patterns
            out.append(
                PatternHit(
                    skill_id,
                    d.kind,
                    items[d.item or 0].name,
                    d.text,
                    float(scores[i]),
                    d.field,
                    d.item or 0,
                )
            )
        return tuple(out)

    def _skill_hit(
        self,
        r: Ranked,
        qv: np.ndarray,
        all_scores: np.ndarray | None,
        answering: float | None = 0.0,
        words: frozenset[str] = frozenset(),
    ) -> SkillHit:
        """``answering``: the cosine a sharp edge or check needs to be an answer (``None``:
        no answers); ``words``: the query's, which order the answers."""
        skill = self.skills[r.skill_id]
        # each trigger once: one standing in the query is listed as that keyword match, not
        # also as a semantic one
        in_query = {k.field for k in r.keywords}
        matches = [
            Match(h.field, h.kind, h.text, h.score, SEMANTIC)
            for h in r.hits[: self.config.matches_per_skill]
            if h.field not in in_query
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
            ()
            if answering is None
            else self._answers(skill, r.hits[: self.config.matches_per_skill], answering, words),
        )

    def _answers(
        self, skill: Skill, hits: Sequence[DocHit], floor: float, words: frozenset[str]
    ) -> tuple[Answer, ...]:
        """The skill's sharp edges and checks among the documents that matched, best first,
        at least ``floor`` similar: a user who describes a gotcha sees that gotcha and its
        fix."""
        out = []
        for h in sorted(hits, key=lambda h: -h.score):
            if h.kind not in PROBLEM_KINDS or h.item is None or h.score < floor:
                continue
            if h.kind == SHARP_EDGE:
                edge = skill.sharp_edges[h.item]
                summary, fix = edge.summary, edge.solution
            else:
                check = skill.checks[h.item]
                summary, fix = check.message or check.name, check.fix
            out.append(
                Answer(skill.id, h.kind, h.field, summary, first_lines(fix), h.score, h.item)
            )
        return tuple(self.answer_order.within_skill(out, words))

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
