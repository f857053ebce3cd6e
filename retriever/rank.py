"""Step 5 of the flow: from document hits, keyword matches and BM25 to a ranking of skills.

The rules, all named in ``ScoringConfig`` (values chosen on half of the dev queries and
checked on the other half and on two query sets written apart; see benchmarks/README.md):

- **Document weights.** A document's cosine similarity is multiplied by its kind's weight:
  trigger documents by 0.6 (a two-word trigger matches many queries loosely), others by 1.
- **Aggregation.** A skill's semantic score is a soft maximum of its weighted documents among
  the ``candidates`` nearest: ``T * log(sum(exp(s_i / T)))`` with ``T = 0.1``. The best
  document dominates; every further close document adds a little, so a skill that matches
  in several places beats one lucky document. Because that sum grows with the number of
  documents a skill has, the score is discounted by ``T * log(n)``, ``n`` the skill's
  document count: a log-mean-exp over all its documents in which those outside the
  candidates add nothing to the sum.
- **Lexical.** Each candidate skill gains ``b / (b + 10)``, ``b`` its BM25 score for the
  query over all its text: exact words (error messages, product names) that the embedding
  blurs. BM25 never adds a skill that is not already a candidate.
- **Keyword triggers.** A trigger counts when it stands in the query as whole words; each
  adds ``keyword_bonus`` (at most ``max_keyword_bonuses`` of them).
- **Weak semantic match.** When the best cosine is under ``weak_threshold`` the model has not
  understood the query; skills with keyword matches then lead (more matched words first) and
  say ``via: keyword``.
- **No match.** When the best listed skill's score is under ``no_match_threshold`` and no
  trigger phrase of two or more words matched, nothing in the collection fits: the result
  says so (``no_match``). The rule reads the score the result shows, so a clear winner is
  never called no match. One-word triggers ("rest", "test") are too common to vouch for a
  query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.results import KEYWORD, SEMANTIC

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ScoringConfig:
    """Every knob of the ranking, with the defaults the README's numbers were measured with."""

    candidates: int = 256  # nearest documents read from FAISS per query
    aggregation: str = "softmax"  # "softmax" (log-sum-exp), "best+" or "max"
    temperature: float = 0.1  # of the softmax aggregation
    size_discount: float = 1.0  # softmax: minus size_discount * T * log(documents of the skill)
    second_weight: float = 0.1  # "best+": best + second_weight * sum of the next extra_hits
    extra_hits: int = 2
    kind_weights: tuple[tuple[str, float], ...] = (("trigger", 0.6),)  # others: 1.0
    lexical_weight: float = 1.0
    lexical_saturation: float = 10.0
    keyword_bonus: float = 0.04
    max_keyword_bonuses: int = 2
    weak_threshold: float = 0.35
    no_match_threshold: float = 0.42  # the best skill's score (0.42 on dev-A: see README)
    handoff_from: int = 3  # handoff rules of this many top skills are tried
    rule_threshold: float = 0.5  # cosine needed by a natural-language handoff rule
    handoff_share: float = 0.9  # a handoff target's score: this share of its source's
    matches_per_skill: int = 3
    patterns_per_skill: int = 3
    top_patterns: int = 5

    def kind_weight(self, kind: str) -> float:
        return dict(self.kind_weights).get(kind, 1.0)


@dataclass(frozen=True)
class DocHit:
    """One document near the query; ``score`` is its cosine similarity."""

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
    lexical: float = 0.0  # the BM25 term added


Aggregated = dict[str, tuple[float, list[DocHit]]]


def aggregate(hits: Iterable[DocHit], config: ScoringConfig,
              doc_counts: Mapping[str, int] | None = None) -> Aggregated:
    """``{skill_id: (semantic score, its hits best first)}`` by the aggregation rule.

    ``doc_counts``: each skill's number of documents, for the softmax's size discount (none
    without it). The rule itself lives in ``aggregate_arrays``, which the query path calls
    with arrays; this is its form for ``DocHit`` objects.
    """
    import numpy as np

    hits = list(hits)
    ids = sorted({h.skill_id for h in hits})
    number = {sid: i for i, sid in enumerate(ids)}
    groups = aggregate_arrays(
        np.array([h.score for h in hits], dtype=np.float64),
        np.array([config.kind_weight(h.kind) for h in hits], dtype=np.float64),
        np.array([number[h.skill_id] for h in hits], dtype=np.int64),
        config,
        doc_counts=np.array([doc_counts[sid] for sid in ids]) if doc_counts else None,
    )
    return {ids[g]: (score, [hits[i] for i in positions])
            for g, (score, positions) in groups.items()}


def aggregate_arrays(
    scores: np.ndarray,
    weights: np.ndarray,
    skills: np.ndarray,
    config: ScoringConfig,
    keep: int | None = None,
    doc_counts: np.ndarray | None = None,
) -> dict[int, tuple[float, np.ndarray]]:
    """``group_candidates`` as ``{skill number: (score, candidate positions best first)}``,
    at most ``keep`` positions a skill."""
    groups = group_candidates(scores, weights, skills, config, doc_counts)
    return {int(sk): (float(groups.scores[g]), groups.positions(g, keep))
            for g, sk in enumerate(groups.skills.tolist())}


@dataclass(frozen=True)
class Groups:
    """Candidate documents grouped by skill, with each group's semantic score."""

    skills: np.ndarray  # the skill number of each group
    scores: np.ndarray  # the aggregated semantic score of each group
    order: np.ndarray  # candidate positions, group by group, best weighted first in a group
    starts: np.ndarray  # where each group begins in ``order``
    sizes: np.ndarray  # how many candidates each group has

    def positions(self, group: int, keep: int | None = None) -> np.ndarray:
        """The group's candidate positions, best first, at most ``keep``."""
        n = int(self.sizes[group]) if keep is None else min(int(self.sizes[group]), keep)
        start = int(self.starts[group])
        return self.order[start:start + n]


def group_candidates(
    scores: np.ndarray,
    weights: np.ndarray,
    skills: np.ndarray,
    config: ScoringConfig,
    doc_counts: np.ndarray | None = None,
) -> Groups:
    """The aggregation rule, for candidates given as arrays, in a few numpy operations.

    ``scores``: the candidates' cosines; ``weights``: their kinds' weights; ``skills``: their
    skills' numbers; ``doc_counts``: documents per skill number (for the size discount).
    Positions, not ``DocHit`` objects: the query path makes hits only for the few skills it
    returns (making them for every candidate cost more than the rest of the ranking).
    """
    import numpy as np

    if config.aggregation not in ("softmax", "max", "best+"):
        raise ValueError(f"unknown aggregation '{config.aggregation}'")
    if len(scores) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(empty, np.zeros(0), empty, empty, empty)
    w = scores * weights
    order = np.lexsort((-w, skills))  # by skill, best weighted first within a skill
    sorted_w = w[order]
    sorted_skills = skills[order]
    starts = np.flatnonzero(np.r_[True, sorted_skills[1:] != sorted_skills[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    best = sorted_w[starts]
    group_skills = sorted_skills[starts]
    if config.aggregation == "softmax":
        t = config.temperature
        total = np.add.reduceat(np.exp((sorted_w - np.repeat(best, sizes)) / t), starts)
        agg = best + t * np.log(total)
        if doc_counts is not None:
            agg = agg - config.size_discount * t * np.log(doc_counts[group_skills])
    elif config.aggregation == "best+":
        place = np.arange(len(order)) - np.repeat(starts, sizes)  # rank within its skill
        extra = (place >= 1) & (place <= config.extra_hits)
        agg = best + config.second_weight * np.add.reduceat(np.where(extra, sorted_w, 0.0),
                                                            starts)
    else:
        agg = best
    return Groups(group_skills, agg, order, starts, sizes)


def order_candidates(
    semantic: np.ndarray,
    keyword_counts: np.ndarray,
    keyword_words: np.ndarray,
    bm25: np.ndarray,
    tiebreak: np.ndarray,
    weak: bool,
    config: ScoringConfig,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranking rule over candidate skills given as aligned arrays.

    ``semantic``: each candidate's semantic score (0 without document hits);
    ``keyword_counts`` / ``keyword_words``: its matched triggers and their words;
    ``bm25``: its BM25 score; ``tiebreak``: an order among equal scores (by skill id).
    Returns the positions of the first ``limit`` candidates best first, every candidate's
    score, and every candidate's lexical term.
    """
    import numpy as np

    bonus = config.keyword_bonus * np.minimum(keyword_counts, config.max_keyword_bonuses)
    positive = np.maximum(bm25, 0.0)
    lex = np.where(bm25 > 0, config.lexical_weight * positive
                   / (positive + config.lexical_saturation), 0.0)
    score = semantic + bonus + lex
    if weak:  # keyword matches lead, more matched trigger words first
        order = np.lexsort((tiebreak, -score, -keyword_words))
    else:
        order = np.lexsort((tiebreak, -score))
    return order[:limit], score, lex


def rank(
    semantic: Aggregated,
    keywords: Iterable[KeywordHit],
    config: ScoringConfig,
    lexical: Mapping[str, float] | None = None,
    best: float | None = None,
    limit: int | None = None,
) -> tuple[list[Ranked], bool]:
    """The candidate skills (the first ``limit``, default all), best first, and whether the
    semantic match was weak.

    ``lexical`` maps skill ids to BM25 scores (missing: 0); ``best`` is the best cosine of
    the query (default: the best of the hits given). The rule is ``order_candidates``'s;
    the query path calls that with arrays.
    """
    import numpy as np

    by_skill: dict[str, list[KeywordHit]] = defaultdict(list)
    for k in keywords:
        by_skill[k.skill_id].append(k)
    if best is None:
        best = max((h.score for _, hs in semantic.values() for h in hs), default=0.0)
    weak = best < config.weak_threshold
    lexical = lexical or {}

    ids = sorted(set(semantic) | set(by_skill))
    order, scores, lex = order_candidates(
        np.array([semantic[sid][0] if sid in semantic else 0.0 for sid in ids]),
        np.array([len(by_skill.get(sid, ())) for sid in ids]),
        np.array([sum(k.n_words for k in by_skill.get(sid, ())) for sid in ids]),
        np.array([lexical.get(sid, 0.0) for sid in ids], dtype=np.float64),
        np.arange(len(ids)),
        weak, config, limit)
    ranked = []
    for i in order.tolist():
        sid = ids[i]
        sem, hits = semantic.get(sid, (0.0, ()))
        kws = tuple(by_skill.get(sid, ()))
        ranked.append(Ranked(sid, float(scores[i]),
                             KEYWORD if kws and (weak or not hits) else SEMANTIC, sem,
                             tuple(hits), kws, float(lex[i])))
    return ranked, weak
