"""Which of the matched known problems (sharp edges, checks) a result leads with, and which
handoffs are worth showing.

A check that shares a word with the query can have the highest cosine of all and still not
be the answer (a CORS security warning for a CORS error): the ranking weighs every piece of
evidence about a skill, a single document's cosine only one. So the answers listed first
come from the first ranked skills, the best ranked skill's first, and within a skill the
gotcha whose own summary speaks of what the query says leads. On the bundled gotchas the
first answer is the very gotcha for 40 of 53 queries, 37 before (``benchmarks/gotchas.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from retriever.present.results import HANDOFF, Answer, Handoff, SkillHit
from retriever.search.rank import Ranked, ScoringConfig


class AnswerOrder:
    """Orders answers by relevance: the cosine plus ``answer_word_weight`` times the share
    of the query's words (stemmed, no stopwords: ``tokens``) that the answer's own summary
    holds. A summary's words are read once per process."""

    def __init__(self, config: ScoringConfig, tokens: Callable[[str], Iterable[str]]) -> None:
        self.config = config
        self.tokens = tokens
        self._own_words: dict[str, frozenset[str]] = {}

    def query_words(self, query: str) -> frozenset[str]:
        return frozenset(self.tokens(query)) if self.config.answer_word_weight else frozenset()

    def relevance(self, answer: Answer, words: frozenset[str]) -> float:
        if not words or not self.config.answer_word_weight:
            return answer.score
        own = self._own_words.get(answer.summary)
        if own is None:  # two threads may read the same summary: equal values
            own = self._own_words[answer.summary] = frozenset(self.tokens(answer.summary))
        return answer.score + self.config.answer_word_weight * len(words & own) / len(words)

    def within_skill(self, answers: Sequence[Answer], words: frozenset[str]) -> list[Answer]:
        """A skill's answers, the one whose own words fit best first (stable: equal
        relevance keeps the cosine order)."""
        return sorted(answers, key=lambda a: -self.relevance(a, words))

    def headline(
        self, results: Sequence[SkillHit], confidence: str, words: frozenset[str]
    ) -> list[Answer]:
        """The answers listed first, across skills: those of the first ``answer_skills``
        ranked skills, the best ranked skill's first (by skill rank when
        ``answers_by_rank``), each skill's by relevance; none unless the confidence is one
        of ``answer_confidence``."""
        c = self.config
        if confidence not in c.answer_confidence:
            return []
        ranked = [r for r in results if r.via != HANDOFF][: c.answer_skills]
        out = [
            (place if c.answers_by_rank else 0, -self.relevance(a, words), a)
            for place, r in enumerate(ranked)
            for a in r.answers
        ]
        out.sort(key=lambda x: (x[0], x[1]))
        return [a for _, _, a in out]


def worth_listing(handoffs: Sequence[Handoff], ranked: Sequence[Ranked]) -> list[Handoff]:
    """The handoffs a reader learns from: none to a skill the ranking already lists (the
    reader has it; this also drops both halves of a ping-pong pair, a -> b and b -> a,
    whose skills are both listed), and one per target, from the best ranked source."""
    listed = {r.skill_id for r in ranked}
    out: list[Handoff] = []
    targets: set[str] = set()
    for h in handoffs:
        if h.to_skill in listed or h.to_skill in targets:
            continue
        targets.add(h.to_skill)
        out.append(h)
    return out
