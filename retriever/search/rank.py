"""Step 5 of the flow: the ranking rule, whole. From the nearest documents, the matched
triggers and BM25 to ranked skills, the weak and no-match decisions, why each skill is there
(``via``), and the score of a skill that joins through a handoff.

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
- **Confidence.** How sure the result is that the collection fits the query, from three
  numbers the query already computes: the best listed skill's score (what the result
  shows), the best document's cosine (a real problem often matches one check or gotcha
  closely while its skill's aggregated score stays low) and the query's cosine with the
  collection's center (the mean of its document vectors: how much the query is about what
  the collection is about). Their sum ``top + best_weight * best + center_weight *
  center`` is the **evidence**: under ``no_match_threshold`` the confidence is ``none``
  and nothing in the collection fits (``no_match``), from ``high_confidence_threshold``
  up it is ``high``, between the two ``low`` (possibly relevant). A matched trigger phrase
  of two or more words vouches for the query: never ``none``. One-word triggers ("rest",
  "test") are too common to vouch for a query. Weights and thresholds were fitted on
  calibration halves of in-domain and off-topic queries of four collections together
  (benchmarks/confidence.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.index.documents import Document
from retriever.phrases import PhraseMatcher
from retriever.present.results import KEYWORD, SEMANTIC, kept
from retriever.skill import Skill

if TYPE_CHECKING:
    import numpy as np

AGGREGATIONS = ("softmax", "max", "best+")


@dataclass(frozen=True)
class ScoringConfig:
    """Every knob of the ranking, with the defaults the README's numbers were measured with.

    Checked when made: an unknown aggregation or a value out of its range is a
    ``ValueError`` naming it, not a failure at the first query.
    """

    candidates: int = 256  # nearest documents read per query
    aggregation: str = "softmax"  # "softmax" (log-sum-exp), "best+" or "max"
    temperature: float = 0.1  # of the softmax aggregation
    size_discount: float = 1.0  # softmax: minus size_discount * T * log(documents of the skill)
    second_weight: float = 0.1  # "best+": best + second_weight * sum of the next extra_hits
    extra_hits: int = 2
    # others (sharp_edge among them) 1.0; validation 0.6 chosen on dev-A against the holdout
    # corpus (benchmarks/kinds.py); sharp edges measured on the bundled gotchas (README);
    # use_when ("When to Use" lines and "Use when" clauses of SKILL.md skills) 0.8, chosen
    # on SKILL.md dev-A against the holdout corpus (benchmarks/skillmd.py)
    kind_weights: tuple[tuple[str, float], ...] = (
        ("trigger", 0.6),
        ("use_when", 0.8),
        ("validation", 0.6),
    )
    lexical_weight: float = 1.0
    lexical_saturation: float = 10.0
    keyword_bonus: float = 0.04
    max_keyword_bonuses: int = 2
    weak_threshold: float = 0.35
    # Confidence (see the module docstring): the evidence is top score + best_weight x the
    # best document's cosine + center_weight x the query's cosine with the collection's
    # center; a logistic fit on calibration halves (spawner, Agent Skills, both, bundled;
    # in-domain against off-topic), rounded. Under no_match_threshold: none (no match; the
    # 90th percentile of the off-topic calibration queries' evidence on the collection
    # where it is highest); from high_confidence_threshold up: high (the 99th percentile).
    evidence_best_weight: float = 0.75
    evidence_center_weight: float = 1.0
    no_match_threshold: float = 0.82
    high_confidence_threshold: float = 1.0
    handoff_from: int = 3  # handoff rules of this many top skills are tried
    rule_threshold: float = 0.5  # cosine needed by a natural-language handoff rule
    # a keyword rule matched only by a one-word phrase ('write', 'database') fires only when
    # the query is this similar to the rule's target (its best document's cosine)
    lone_word_rule_threshold: float = 0.5
    # ... or when the query asks for that work (a request cue before the word in its clause:
    # "also need help with the database", "then deploy it"; handoffs.word_asked) and is
    # this similar to the target; None: request cues are not read (similarity alone)
    asked_rule_threshold: float | None = 0.3
    handoff_share: float = 0.9  # a handoff target's score: this share of its source's
    matches_per_skill: int = 3
    patterns_per_skill: int = 3
    top_patterns: int = 5
    top_answers: int = 3  # matched sharp edges and checks listed first, across skills
    # A matched sharp edge or check is an answer only when it is among the query's this
    # many nearest documents of the whole collection: on the bundled gotchas the right
    # gotcha ranked 1-8 there; two misleading answers a user met (a lower skill's gotcha at
    # cosine 0.16 and 0.23) ranked 114th and 40th.
    answer_rank: int = 10
    # Which answers lead (Searcher._headline): those of the first answer_skills ranked
    # skills, by skill rank first when answers_by_rank, then by cosine plus
    # answer_word_weight x the share of the query's words the answer's own summary holds;
    # only for a result whose confidence is one of answer_confidence. On the bundled gotchas
    # the first answer is the very gotcha for 40 of 53 queries (37 before; either change
    # alone also gives 40, benchmarks/gotchas.py).
    answer_skills: int = 3
    answers_by_rank: bool = True
    answer_word_weight: float = 0.2
    answer_confidence: tuple[str, ...] = ("high", "low")

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"unknown aggregation '{self.aggregation}': choose one of {', '.join(AGGREGATIONS)}"
            )
        positive = (
            "candidates",
            "temperature",
            "lexical_saturation",
            "matches_per_skill",
            "patterns_per_skill",
            "top_patterns",
            "top_answers",
            "answer_rank",
            "answer_skills",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, not {getattr(self, name)!r}")
        at_least_zero = (
            "size_discount",
            "second_weight",
            "extra_hits",
            "lexical_weight",
            "keyword_bonus",
            "max_keyword_bonuses",
            "handoff_from",
            "evidence_best_weight",
            "evidence_center_weight",
            "answer_word_weight",
        )
        for name in at_least_zero:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)!r}")
        unknown = [c for c in self.answer_confidence if c not in ("high", "low")]
        if unknown:
            raise ValueError(f"answer_confidence holds 'high' and 'low' only, not {unknown[0]!r}")
        if self.high_confidence_threshold < self.no_match_threshold:
            raise ValueError(
                f"high_confidence_threshold ({self.high_confidence_threshold}) must not be "
                f"under no_match_threshold ({self.no_match_threshold})"
            )
        if not 0 <= self.handoff_share <= 1:
            raise ValueError(f"handoff_share must be between 0 and 1, not {self.handoff_share}")
        for entry in self.kind_weights:
            if (
                not isinstance(entry, tuple)
                or len(entry) != 2
                or not isinstance(entry[0], str)
                or entry[1] < 0
            ):
                raise ValueError(f"kind_weights holds (kind, weight >= 0) pairs, not {entry!r}")

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
    item: int | None = None


@dataclass(frozen=True)
class KeywordHit:
    """One trigger of a skill found in the query."""

    skill_id: str
    item: int  # the trigger's position in the skill's triggers
    trigger: str
    n_words: int

    @property
    def field(self) -> str:
        return f"triggers[{self.item}]"


class Triggers:
    """The keyword triggers of a collection: which of them stand in a query."""

    def __init__(self, skills: Iterable[Skill]) -> None:
        skills = list(skills)
        self._triggers = {s.id: s.triggers for s in skills}
        self._matcher = PhraseMatcher(
            (t, (s.id, i)) for s in skills for i, t in enumerate(s.triggers)
        )

    def find(self, query: str) -> list[KeywordHit]:
        return [
            KeywordHit(sid, i, self._triggers[sid][i], len(gram))
            for (sid, i), gram in self._matcher.find(query).items()
        ]


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
        return self.order[start : start + n]


@dataclass(frozen=True)
class Candidates:
    """What the nearest-document step found for one query, grouped by skill."""

    best: float  # the best cosine of any document
    groups: Groups  # the candidates by skill, with each skill's semantic score
    rows: np.ndarray  # the candidates' document rows
    scores: np.ndarray  # the candidates' cosines
    center: float = 0.0  # the query's cosine with the collection's center (``index.center``)


@dataclass(frozen=True)
class Ranking:
    """The ranked skills and the decisions about the query as a whole."""

    ranked: list[Ranked]
    weak: bool  # the best cosine was under the weak threshold: keyword triggers lead
    no_match: bool  # nothing in the collection fits: exactly when confidence is "none"
    best: float  # the best cosine of any document, as kept
    top_score: float  # the best listed skill's score, as kept
    evidence: float = 0.0  # top + weights x (best, center), as kept: decides the confidence
    confidence: str = "high"  # "high", "low" (possibly relevant) or "none"
    center: float = 0.0  # the query's cosine with the collection's center, as kept


class RankingTables:
    """Per-document and per-skill arrays of one index, made once when it is opened."""

    def __init__(
        self, documents: Sequence[Document], skill_ids: Sequence[str], config: ScoringConfig
    ) -> None:
        import numpy as np

        from retriever.index.tables import DocumentTable

        self.documents = documents
        self.skill_ids = list(skill_ids)
        self.skill_number = {sid: i for i, sid in enumerate(self.skill_ids)}  # = BM25 row
        # each skill's place among the ids in sorted order: equal scores rank by id
        self.id_rank = np.argsort(
            np.argsort(np.array(self.skill_ids, dtype=object), kind="stable"), kind="stable"
        )
        # per document: its skill's number and its kind's weight, for numpy aggregation; read
        # from the columns of a loaded index (a loop over its documents would make each one)
        table = documents if isinstance(documents, DocumentTable) else None
        if table is None:
            table = DocumentTable.of(documents, self.skill_ids)
        self.columns = table
        if table.skill_ids == tuple(self.skill_ids):
            self.doc_skill = table.skill.astype(np.int64)
        else:  # numbered against another order of the skills
            renumber = np.array([self.skill_number[sid] for sid in table.skill_ids], np.int64)
            self.doc_skill = renumber[table.skill]
        weights = np.array([config.kind_weight(k) for k in table.kinds], dtype=np.float64)
        self.doc_weight = weights[table.kind]
        self.doc_count = np.maximum(
            np.bincount(self.doc_skill, minlength=len(self.skill_ids)), 1
        ).astype(np.float64)


def candidates(
    scores: np.ndarray,
    rows: np.ndarray,
    tables: RankingTables,
    config: ScoringConfig,
    center: float = 0.0,
) -> Candidates:
    """The nearest documents (cosines and rows) grouped and aggregated per skill;
    ``center``: the query's cosine with the collection's center (``index.center``)."""
    scores = scores.astype("float64")
    groups = group_candidates(
        scores, tables.doc_weight[rows], tables.doc_skill[rows], config, doc_counts=tables.doc_count
    )
    best = float(scores.max()) if len(scores) else 0.0
    return Candidates(best, groups, rows, scores, float(center))


def confidence_of(evidence: float, vouched: bool, config: ScoringConfig) -> str:
    """``"high"``, ``"low"`` or ``"none"`` for a kept evidence; ``vouched`` (a trigger
    phrase of two or more words matched) is never ``"none"``."""
    if evidence >= config.high_confidence_threshold:
        return "high"
    if evidence >= config.no_match_threshold or vouched:
        return "low"
    return "none"


def rank(
    near: Candidates,
    keywords: list[KeywordHit],
    bm25: np.ndarray,
    tables: RankingTables,
    config: ScoringConfig,
    k: int,
) -> Ranking:
    """The first ``k`` candidate skills by ``order_candidates``, and the decisions.

    Candidates: skills with a near document or a matched trigger; BM25 (``bm25``: every
    skill's score, in skill order) re-weighs them and never adds one.
    """
    import numpy as np

    groups = near.groups
    by_skill: dict[int, list[KeywordHit]] = defaultdict(list)
    for keyword in keywords:
        by_skill[tables.skill_number[keyword.skill_id]].append(keyword)
    if by_skill:
        numbers = np.union1d(groups.skills, np.fromiter(by_skill, dtype=np.int64))
        group_of = np.full(len(tables.skill_ids), -1, dtype=np.int64)
        group_of[groups.skills] = np.arange(len(groups.skills))
        group = group_of[numbers]
    else:  # the groups are already one per skill, in skill order
        numbers, group = groups.skills, np.arange(len(groups.skills))
    semantic = np.append(groups.scores, 0.0)[group]  # -1 (no group): the appended 0.0
    counts = np.zeros(len(numbers), dtype=np.int64)
    n_words = np.zeros(len(numbers), dtype=np.int64)
    for number, matched in by_skill.items():
        at = int(np.searchsorted(numbers, number))
        counts[at] = len(matched)
        n_words[at] = sum(h.n_words for h in matched)
    best = kept(near.best)
    weak = best < config.weak_threshold
    order, scores, lex = order_candidates(
        semantic,
        counts,
        n_words,
        bm25[numbers].astype(np.float64),
        tables.id_rank[numbers],
        weak,
        config,
        k,
    )
    ranked = []
    for i in order.tolist():
        number, g = int(numbers[i]), int(group[i])
        hits = (
            _doc_hits(groups.positions(g, config.matches_per_skill), near, tables) if g >= 0 else ()
        )
        kws = tuple(by_skill.get(number, ()))
        ranked.append(
            Ranked(
                tables.skill_ids[number],
                float(scores[i]),
                KEYWORD if kws and (weak or not hits) else SEMANTIC,
                float(semantic[i]),
                hits,
                kws,
                float(lex[i]),
            )
        )
    # Decided on evidence the result can show: the best listed skill's score (its
    # documents, BM25 and triggers together), the best document's cosine and the query's
    # cosine with the collection's center, each as kept. A one-word trigger ("rest",
    # "test", "battery") is too common to vouch for a query on its own; a matched phrase of
    # two or more words is.
    top_score = kept(max((r.score for r in ranked), default=0.0))
    center = kept(near.center)
    evidence = kept(
        top_score + config.evidence_best_weight * best + config.evidence_center_weight * center
    )
    confidence = confidence_of(evidence, any(h.n_words > 1 for h in keywords), config)
    return Ranking(
        ranked, weak, confidence == "none", best, top_score, evidence, confidence, center
    )


def _doc_hits(positions: np.ndarray, near: Candidates, tables: RankingTables) -> tuple[DocHit, ...]:
    out = []
    for row, score in zip(
        near.rows[positions].tolist(), near.scores[positions].tolist(), strict=True
    ):
        d = tables.documents[row]
        out.append(DocHit(row, d.skill_id, d.kind, d.field, d.text, score, d.item))
    return tuple(out)


def handoff_score(source_score: float, config: ScoringConfig) -> float:
    """The score of a skill that joins through a handoff: just under its source's, whatever
    the source's sign (a weak match can score below 0)."""
    return source_score - (1 - config.handoff_share) * abs(source_score)


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
        agg = best + config.second_weight * np.add.reduceat(np.where(extra, sorted_w, 0.0), starts)
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
    lex = np.where(
        bm25 > 0, config.lexical_weight * positive / (positive + config.lexical_saturation), 0.0
    )
    score = semantic + bonus + lex
    if weak:  # keyword matches lead, more matched trigger words first
        order = np.lexsort((tiebreak, -score, -keyword_words))
    else:
        order = np.lexsort((tiebreak, -score))
    return order[:limit], score, lex
