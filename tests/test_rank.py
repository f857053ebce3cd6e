"""The aggregation and ranking rules, on hand-checkable numbers."""

import math

import pytest

from retriever.rank import DocHit, KeywordHit, ScoringConfig, aggregate, rank
from retriever.results import KEYWORD, SEMANTIC


def hit(sid, score, kind="card", row=0):
    return DocHit(row, sid, kind, "card", "t", score)


def test_softmax_aggregation_and_trigger_weight():
    cfg = ScoringConfig()  # softmax, T = 0.1, triggers x 0.6
    agg = aggregate([hit("a", 0.5), hit("a", 0.4), hit("b", 0.6), hit("c", 0.7, "trigger")],
                    cfg)
    assert agg["a"][0] == pytest.approx(0.1 * math.log(math.exp(5) + math.exp(4)))
    assert agg["b"][0] == pytest.approx(0.6)
    assert agg["c"][0] == pytest.approx(0.42)  # 0.7 x 0.6
    # a second close document lifts a skill by at most T * log 2
    assert agg["a"][0] - 0.5 == pytest.approx(0.1 * math.log(1 + math.exp(-1)))
    # the size discount: a skill with 40 documents pays T * log(40) more than one with a
    # single document
    sized = aggregate([hit("a", 0.5), hit("b", 0.5)], cfg, {"a": 40, "b": 1})
    assert sized["b"][0] - sized["a"][0] == pytest.approx(0.1 * math.log(40))
    assert sized["b"][0] == pytest.approx(0.5)


def test_aggregate_best_plus_a_tenth_of_the_next_two():
    cfg = ScoringConfig(aggregation="best+", second_weight=0.1, extra_hits=2)
    agg = aggregate([hit("a", 0.5), hit("a", 0.4), hit("a", 0.3), hit("a", 0.2),
                     hit("b", 0.6)], cfg)
    assert agg["a"][0] == pytest.approx(0.5 + 0.1 * (0.4 + 0.3))
    assert agg["b"][0] == pytest.approx(0.6)
    assert [h.score for h in agg["a"][1]] == [0.5, 0.4, 0.3, 0.2]  # best first


def test_lexical_term_saturates_and_never_adds_skills():
    cfg = ScoringConfig()
    sem = aggregate([hit("a", 0.6), hit("b", 0.58)], cfg)
    ranked, _ = rank(sem, [], cfg, lexical={"b": 10.0, "zzz": 99.0})
    assert [r.skill_id for r in ranked] == ["b", "a"]
    assert cfg.lexical_weight == 1.0 and cfg.lexical_saturation == 10
    assert ranked[0].lexical == pytest.approx(10 / 20)
    assert ranked[0].score == pytest.approx(0.58 + 0.5)


def test_many_hits_break_a_near_tie_but_never_beat_a_clearly_better_best_hit():
    cfg = ScoringConfig()
    near = aggregate([hit("many", 0.60), hit("many", 0.55), hit("many", 0.5),
                      hit("one", 0.62)], cfg)
    ranked, _ = rank(near, [], cfg)
    assert [r.skill_id for r in ranked] == ["many", "one"]
    far = aggregate([hit("many", 0.40), hit("many", 0.39), hit("many", 0.38),
                     hit("one", 0.62)], cfg)
    ranked, _ = rank(far, [], cfg)
    assert [r.skill_id for r in ranked] == ["one", "many"]


def test_strong_mode_keyword_bonus_is_capped():
    cfg = ScoringConfig(keyword_bonus=0.04, max_keyword_bonuses=2)
    sem = aggregate([hit("a", 0.6), hit("b", 0.55)], cfg)
    kws = [KeywordHit("b", f"triggers[{i}]", "t", 1) for i in range(5)]
    ranked, weak = rank(sem, kws, cfg)
    assert not weak
    assert [r.skill_id for r in ranked] == ["b", "a"]
    assert ranked[0].score == pytest.approx(0.55 + 0.08)
    assert ranked[0].via == SEMANTIC


def test_weak_semantic_match_lets_keywords_lead():
    cfg = ScoringConfig(weak_threshold=0.35)
    sem = aggregate([hit("a", 0.30), hit("b", 0.20), hit("c", 0.25)], cfg)
    kws = [KeywordHit("b", "triggers[0]", "ci", 1),
           KeywordHit("c", "triggers[0]", "flaky tests", 2)]
    ranked, weak = rank(sem, kws, cfg)
    assert weak
    assert [r.skill_id for r in ranked] == ["c", "b", "a"]  # more matched words first
    assert [r.via for r in ranked] == [KEYWORD, KEYWORD, SEMANTIC]


def test_keyword_only_skill_is_ranked_and_says_keyword():
    cfg = ScoringConfig()
    sem = aggregate([hit("a", 0.7)], cfg)
    ranked, _ = rank(sem, [KeywordHit("z", "triggers[0]", "x", 1)], cfg)
    assert [(r.skill_id, r.via) for r in ranked] == [("a", SEMANTIC), ("z", KEYWORD)]


def test_numpy_aggregation_equals_the_reference():
    import numpy as np

    from retriever.rank import aggregate_arrays

    rng = np.random.default_rng(3)
    kinds = ["card", "trigger", "pattern", "anti_pattern"]
    hits = [DocHit(i, f"s{rng.integers(6)}", kinds[rng.integers(4)], f"f{i}", "t",
                   float(rng.uniform(0, 1))) for i in range(60)]
    for cfg in (ScoringConfig(), ScoringConfig(aggregation="max"),
                ScoringConfig(aggregation="best+")):
        counts = {f"s{i}": 1 + 3 * i for i in range(6)}  # documents per skill
        ref = aggregate(hits, cfg, counts)
        weights = np.array([cfg.kind_weight(h.kind) for h in hits])
        skills = np.array([int(h.skill_id[1:]) for h in hits])
        fast = aggregate_arrays(np.array([h.score for h in hits]), weights, skills, cfg,
                                doc_counts=np.array([counts[f"s{i}"] for i in range(6)]))
        assert {f"s{k}" for k in fast} == set(ref)
        for sid, (score, hs) in ref.items():
            got_score, positions = fast[int(sid[1:])]
            assert got_score == pytest.approx(score)
            assert [hits[i].row for i in positions] == [h.row for h in hs]
        kept = aggregate_arrays(np.array([h.score for h in hits]), weights, skills, cfg, keep=2)
        assert all(len(positions) <= 2 for _, positions in kept.values())
    assert aggregate_arrays(np.array([]), np.array([]), np.array([], dtype=int),
                            ScoringConfig()) == {}
