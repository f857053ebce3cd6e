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
- **No match.** When the best cosine is under ``no_match_threshold`` and no trigger phrase
  of two or more words matched, nothing in the collection fits: the result says so
  (``no_match``). One-word triggers ("rest", "test") are too common to vouch for a query.
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
    no_match_threshold: float = 0.42
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
    """``aggregate`` for candidates given as arrays, in a few numpy operations.

    ``scores``: the candidates' cosines; ``weights``: their kinds' weights; ``skills``: their
    skills' numbers; ``doc_counts``: documents per skill number (for the size discount).
    Returns ``{skill number: (score, candidate positions best first)}``,
    at most ``keep`` positions a skill. Positions, not ``DocHit`` objects: the query path
    makes hits only for the few skills it returns (making them for every candidate cost
    more than the rest of the ranking).
    """
    import numpy as np

    if config.aggregation not in ("softmax", "max", "best+"):
        raise ValueError(f"unknown aggregation '{config.aggregation}'")
    if len(scores) == 0:
        return {}
    w = scores * weights
    order = np.lexsort((-w, skills))  # by skill, best weighted first within a skill
    sorted_w = w[order]
    starts = np.flatnonzero(np.r_[True, skills[order][1:] != skills[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    place = np.arange(len(order)) - np.repeat(starts, sizes)  # rank within its skill
    best = sorted_w[starts]
    if config.aggregation == "softmax":
        t = config.temperature
        total = np.add.reduceat(np.exp((sorted_w - np.repeat(best, sizes)) / t), starts)
        agg = best + t * np.log(total)
        if doc_counts is not None:
            agg = agg - config.size_discount * t * np.log(doc_counts[skills[order[starts]]])
    elif config.aggregation == "best+":
        extra = (place >= 1) & (place <= config.extra_hits)
        agg = best + config.second_weight * np.add.reduceat(np.where(extra, sorted_w, 0.0),
                                                            starts)
    else:
        agg = best
    limit = len(order) if keep is None else keep
    group_skills = skills[order[starts]].tolist()
    return {sk: (float(agg[g]), order[a:a + min(n, limit)])
            for g, (sk, a, n) in enumerate(zip(group_skills, starts.tolist(), sizes.tolist(),
                                                strict=True))}


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
    the query (default: the best of the hits given).
    """
    by_skill: dict[str, list[KeywordHit]] = defaultdict(list)
    for k in keywords:
        by_skill[k.skill_id].append(k)
    if best is None:
        best = max((h.score for _, hs in semantic.values() for h in hs), default=0.0)
    weak = best < config.weak_threshold
    lexical = lexical or {}

    # Scores first, objects only for the skills kept: a query has ~100 candidates and
    # returns a handful.
    rows = []
    for sid in set(semantic) | set(by_skill):
        sem, hits = semantic.get(sid, (0.0, ()))
        kws = by_skill.get(sid, ())
        bonus = config.keyword_bonus * min(len(kws), config.max_keyword_bonuses)
        b = lexical.get(sid, 0.0)
        lex = config.lexical_weight * b / (b + config.lexical_saturation) if b > 0 else 0.0
        score = sem + bonus + lex
        # weak: keyword matches lead, more matched trigger words first
        key = ((-sum(k.n_words for k in kws), -score, sid) if weak else (-score, sid))
        rows.append((key, sid, score, sem, hits, kws, lex))
    rows.sort(key=lambda row: row[0])
    ranked = [Ranked(sid, score, KEYWORD if kws and (weak or not hits) else SEMANTIC, sem,
                     tuple(hits), tuple(kws), lex)
              for _, sid, score, sem, hits, kws, lex in rows[:limit]]
    return ranked, weak
