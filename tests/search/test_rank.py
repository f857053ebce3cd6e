"""The ranking rule, on hand-checkable numbers, through the functions queries run."""

import math

import numpy as np
import pytest

from retriever.index.documents import Document
from retriever.present.results import KEYWORD, SEMANTIC
from retriever.search.rank import (
    KeywordHit,
    RankingTables,
    ScoringConfig,
    candidates,
    group_candidates,
    handoff_score,
    rank,
)


def table(*docs, config=None):
    """Tables over documents given as (skill id, kind); skills in order of appearance."""
    documents = [
        Document(sid, kind, f"{kind}[{i}]", f"text {i}", i) for i, (sid, kind) in enumerate(docs)
    ]
    ids = list(dict.fromkeys(sid for sid, _ in docs))
    return RankingTables(documents, ids, config or ScoringConfig())


def ranked(tables, scores, keywords=(), bm25=None, config=None, k=10):
    """``rank`` over every document with the given cosines (one per document)."""
    config = config or ScoringConfig()
    rows = np.arange(len(scores))
    near = candidates(np.array(scores, dtype=np.float32), rows, tables, config)
    bm = np.zeros(len(tables.skill_ids)) if bm25 is None else np.array(bm25, dtype=float)
    return rank(near, list(keywords), bm, tables, config, k)


def test_softmax_aggregation_trigger_weight_and_size_discount():
    cfg = ScoringConfig()  # softmax, T = 0.1, triggers x 0.6, size discount 1.0
    t = table(("a", "card"), ("a", "pattern"), ("b", "card"), ("c", "trigger"))
    r = {x.skill_id: x for x in ranked(t, [0.5, 0.4, 0.6, 0.7]).ranked}
    two = 0.1 * math.log(math.exp(5) + math.exp(4)) - 0.1 * math.log(2)
    assert r["a"].semantic == pytest.approx(two)
    assert r["b"].semantic == pytest.approx(0.6)
    assert r["c"].semantic == pytest.approx(0.42)  # 0.7 x 0.6
    # the discount: a skill with 40 documents pays T * log(40) against a single-document one
    g = group_candidates(
        np.array([0.5, 0.5]), np.ones(2), np.array([0, 1]), cfg, doc_counts=np.array([40.0, 1.0])
    )
    assert g.scores[1] - g.scores[0] == pytest.approx(0.1 * math.log(40))
    assert cfg.kind_weight("trigger") == 0.6 and cfg.kind_weight("card") == 1.0


def test_best_plus_and_max_aggregations():
    scores = np.array([0.5, 0.4, 0.3, 0.2, 0.6])
    skills = np.array([0, 0, 0, 0, 1])
    best_plus = group_candidates(
        scores, np.ones(5), skills, ScoringConfig(aggregation="best+", extra_hits=2)
    )
    assert best_plus.scores[0] == pytest.approx(0.5 + 0.1 * (0.4 + 0.3))
    assert list(scores[best_plus.positions(0)]) == [0.5, 0.4, 0.3, 0.2]  # best first
    assert list(best_plus.positions(0, keep=2)) == [0, 1]
    top = group_candidates(scores, np.ones(5), skills, ScoringConfig(aggregation="max"))
    assert list(top.scores) == pytest.approx([0.5, 0.6])
    empty = group_candidates(np.zeros(0), np.zeros(0), np.zeros(0, dtype=int), ScoringConfig())
    assert len(empty.skills) == 0


def test_lexical_term_saturates_and_never_adds_skills():
    t = table(("a", "card"), ("b", "card"), ("z", "card"))
    cfg = ScoringConfig()
    near = candidates(np.array([0.6, 0.58], dtype=np.float32), np.array([0, 1]), t, cfg)
    result = rank(near, [], np.array([0.0, 10.0, 99.0]), t, cfg, 10)
    assert [x.skill_id for x in result.ranked] == ["b", "a"]  # z: BM25 only, not added
    assert result.ranked[0].lexical == pytest.approx(10 / 20)
    assert result.ranked[0].score == pytest.approx(0.58 + 0.5)


def test_many_hits_break_a_near_tie_but_never_beat_a_clearly_better_best_hit():
    t = table(("many", "card"), ("many", "pattern"), ("many", "pattern"), ("one", "card"))
    cfg = ScoringConfig(size_discount=0.0)
    assert [x.skill_id for x in ranked(t, [0.60, 0.55, 0.5, 0.62], config=cfg).ranked] == [
        "many",
        "one",
    ]
    assert [x.skill_id for x in ranked(t, [0.40, 0.39, 0.38, 0.62], config=cfg).ranked] == [
        "one",
        "many",
    ]


def test_keyword_bonus_is_capped_and_keeps_via_semantic_when_strong():
    t = table(("a", "card"), ("b", "card"))
    kws = [KeywordHit("b", i, "t", 1) for i in range(5)]
    result = ranked(t, [0.6, 0.55], kws)
    assert not result.weak
    assert [x.skill_id for x in result.ranked] == ["b", "a"]
    assert result.ranked[0].score == pytest.approx(0.55 + 0.08)  # two bonuses at most
    assert result.ranked[0].via == SEMANTIC and kws[0].field == "triggers[0]"


def test_weak_semantic_match_lets_keywords_lead():
    t = table(("a", "card"), ("b", "card"), ("c", "card"))
    kws = [KeywordHit("b", 0, "ci", 1), KeywordHit("c", 0, "flaky tests", 2)]
    result = ranked(t, [0.30, 0.20, 0.25], kws)
    assert result.weak
    assert [x.skill_id for x in result.ranked] == ["c", "b", "a"]  # more matched words first
    assert [x.via for x in result.ranked] == [KEYWORD, KEYWORD, SEMANTIC]


def test_a_keyword_only_skill_is_ranked_and_says_keyword():
    t = table(("a", "card"), ("z", "card"))
    result = rank(
        candidates(np.array([0.7], dtype=np.float32), np.array([0]), t, ScoringConfig()),
        [KeywordHit("z", 0, "x", 1)],
        np.zeros(2),
        t,
        ScoringConfig(),
        10,
    )
    assert [(x.skill_id, x.via) for x in result.ranked] == [("a", SEMANTIC), ("z", KEYWORD)]


def test_no_match_reads_the_evidence_and_a_long_trigger_vouches():
    t = table(("a", "card"), ("b", "card"))
    low = ranked(t, [0.30, 0.20])
    # evidence = top 0.30 + 0.75 x best cosine 0.30 + 1.0 x center 0 = 0.525, under 0.82
    assert low.no_match and low.confidence == "none"
    assert low.top_score == pytest.approx(0.30, abs=1e-4)
    assert low.evidence == pytest.approx(0.525, abs=1e-4)
    assert not ranked(t, [0.30, 0.20], bm25=[10.0, 0.0]).no_match  # 0.30 + 0.5 shown
    phrase = ranked(t, [0.30, 0.20], [KeywordHit("b", 0, "flaky tests", 2)])
    # a matched phrase of two words vouches for the query: possibly relevant, never none
    assert not phrase.no_match and phrase.confidence == "low"
    one_word = ranked(t, [0.30, 0.20], [KeywordHit("b", 0, "ci", 1)])
    assert one_word.no_match  # one word does not


def test_confidence_grades_the_evidence_and_none_is_exactly_no_match():
    cfg = ScoringConfig()
    t = table(("a", "card"), ("b", "card"))

    def graded(cosine, center=0.0):
        near = candidates(np.array([cosine, 0.0], np.float32), np.arange(2), t, cfg, center)
        return rank(near, [], np.zeros(2), t, cfg, 5)

    # one card at cosine c: top = c (softmax of one document), evidence = 1.75 c + center
    none, low, high = graded(0.40), graded(0.50), graded(0.60)
    assert (none.confidence, low.confidence, high.confidence) == ("none", "low", "high")
    assert [r.no_match for r in (none, low, high)] == [True, False, False]
    assert low.evidence == pytest.approx(0.875, abs=1e-4)
    # the query's cosine with the collection's center adds to the evidence
    assert graded(0.40, center=0.2).confidence == "low"
    assert graded(0.50, center=-0.2).confidence == "none"
    # thresholds compare the kept evidence: 0.81996 is kept as 0.82, which is enough
    lifted = ScoringConfig(evidence_best_weight=0.0, evidence_center_weight=0.0)
    near = candidates(np.array([0.81996, 0.0], np.float32), np.arange(2), t, lifted)
    assert not rank(near, [], np.zeros(2), t, lifted, 5).no_match


def test_the_collection_center_is_the_normalised_mean_read_in_blocks():
    from retriever.index.center import center_of

    rng = np.random.default_rng(0)
    v = rng.normal(size=(70_000, 4)).astype(np.float32) + np.array([3, 0, 0, 0], np.float32)
    c = center_of(lambda rows: v[rows], len(v), 4)  # two blocks of 65,536 rows at most
    want = v.astype(np.float64).mean(0)
    assert np.allclose(c, want / np.linalg.norm(want), atol=1e-5)
    assert not center_of(lambda rows: v[rows], 0, 4).any()  # an empty collection


def test_equal_scores_rank_by_id_and_k_limits():
    t = table(("zeta", "card"), ("alpha", "card"), ("mid", "card"))
    result = ranked(t, [0.5, 0.5, 0.5], k=2)
    assert [x.skill_id for x in result.ranked] == ["alpha", "mid"]


def test_hits_carry_their_documents_best_first():
    t = table(("a", "card"), ("a", "pattern"), ("a", "anti_pattern"), ("a", "trigger"))
    hits = ranked(t, [0.3, 0.7, 0.5, 0.9]).ranked[0].hits
    assert [(h.kind, h.item) for h in hits] == [
        ("pattern", 1),
        ("trigger", 3),
        ("anti_pattern", 2),
    ]  # 0.7, 0.9 x 0.6, 0.5


def test_handoff_score_sits_just_under_its_source():
    cfg = ScoringConfig()
    assert handoff_score(0.8, cfg) == pytest.approx(0.72)
    assert handoff_score(-0.2, cfg) == pytest.approx(-0.22)  # under it even below zero


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"aggregation": "mean"}, "unknown aggregation 'mean'"),
        ({"temperature": 0}, "temperature must be above 0"),
        ({"candidates": 0}, "candidates must be above 0"),
        ({"keyword_bonus": -1}, "keyword_bonus must be 0 or more"),
        ({"handoff_share": 1.5}, "handoff_share must be between 0 and 1"),
        ({"kind_weights": (("trigger", -0.6),)}, "kind_weights holds"),
        ({"high_confidence_threshold": 0.5}, "must not be under no_match_threshold"),
        ({"evidence_best_weight": -1}, "evidence_best_weight must be 0 or more"),
        ({"answer_confidence": ("none",)}, "answer_confidence holds"),
        ({"answer_skills": 0}, "answer_skills must be above 0"),
    ],
)
def test_scoring_config_validates_itself_when_made(bad, message):
    with pytest.raises(ValueError, match=message):
        ScoringConfig(**bad)
