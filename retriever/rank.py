"""Step 5 of the flow: from document hits and keyword matches to a ranking of skills.

The rules, all named in ``ScoringConfig``:

- **Aggregation.** A skill's semantic score is its best document's cosine similarity plus
  ``second_weight`` times the sum of its next ``extra_hits`` best documents (among the
  ``candidates`` nearest documents). The best hit decides; further hits break ties in favour
  of skills that match in several places.
- **Keyword triggers.** A trigger counts when it stands in the query as whole words. In normal
  mode each matched trigger adds ``keyword_bonus`` (at most ``max_keyword_bonuses`` of them).
- **Weak semantic match.** When the best semantic score is under ``weak_threshold``, the model
  has not understood the query; skills with keyword matches then lead the ranking (more
  matched trigger words first), and say ``via: keyword``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from retriever.results import KEYWORD, SEMANTIC


@dataclass(frozen=True)
class ScoringConfig:
    """Every knob of the ranking, with the defaults the README's numbers were measured with."""

    candidates: int = 256  # nearest documents read from FAISS per query
    second_weight: float = 0.1
    extra_hits: int = 2
    weak_threshold: float = 0.35
    keyword_bonus: float = 0.04
    max_keyword_bonuses: int = 2
    handoff_from: int = 3  # handoff rules of this many top skills are tried
    rule_threshold: float = 0.5  # cosine needed by a natural-language handoff rule
    handoff_share: float = 0.9  # a handoff target's score: this share of its source's
    matches_per_skill: int = 3
    patterns_per_skill: int = 3
    top_patterns: int = 5


@dataclass(frozen=True)
class DocHit:
    """One document near the query."""

    row: int
    skill_id: str
    kind: str
    field: str
    text: str
    score: float


@dataclass(frozen=True)
class KeywordHit:
    """One trigger of a skill found in the query."""

    skill_id: str
    field: str  # "triggers[i]"
    trigger: str
    n_words: int


@dataclass(frozen=True)
class Ranked:
    """A skill's place in the ranking and the evidence for it."""

    skill_id: str
    score: float
    via: str
    semantic: float
    hits: tuple[DocHit, ...]
    keywords: tuple[KeywordHit, ...]


Aggregated = dict[str, tuple[float, list[DocHit]]]


def aggregate(hits: Iterable[DocHit], config: ScoringConfig) -> Aggregated:
    """``{skill_id: (semantic score, its hits best first)}`` by the aggregation rule."""
    per_skill: dict[str, list[DocHit]] = defaultdict(list)
    for h in hits:
        per_skill[h.skill_id].append(h)
    out = {}
    for sid, hs in per_skill.items():
        hs.sort(key=lambda h: -h.score)
        extra = sum(h.score for h in hs[1:1 + config.extra_hits])
        out[sid] = (hs[0].score + config.second_weight * extra, hs)
    return out


def rank(
    semantic: Aggregated,
    keywords: Iterable[KeywordHit],
    config: ScoringConfig,
) -> tuple[list[Ranked], bool]:
    """All candidate skills, best first, and whether the semantic match was weak."""
    by_skill: dict[str, list[KeywordHit]] = defaultdict(list)
    for k in keywords:
        by_skill[k.skill_id].append(k)
    best = max((h[0].score for _, h in semantic.values() if h), default=0.0)
    weak = best < config.weak_threshold

    ranked = []
    for sid in set(semantic) | set(by_skill):
        sem, hits = semantic.get(sid, (0.0, []))
        kws = by_skill.get(sid, [])
        bonus = config.keyword_bonus * min(len(kws), config.max_keyword_bonuses)
        via = KEYWORD if kws and (weak or not hits) else SEMANTIC
        ranked.append(Ranked(sid, sem + bonus, via, sem, tuple(hits), tuple(kws)))

    def order(r: Ranked) -> tuple:
        if weak:  # keyword matches lead; more matched trigger words first
            return (-(sum(k.n_words for k in r.keywords)), -r.score, r.skill_id)
        return (-r.score, r.skill_id)

    ranked.sort(key=order)
    return ranked, weak
