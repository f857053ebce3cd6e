"""Handoffs that fire when asked for: a one-word rule reads the request around its word, and
a handoff to a skill the ranking already lists is not shown (issue 23, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.present.results import Handoff
from retriever.search.answers import worth_listing
from retriever.search.handoffs import word_asked
from retriever.search.rank import Ranked


@pytest.fixture
def mini(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    return SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)


def test_worth_listing_drops_listed_targets_ping_pong_and_repeats():
    def h(a, b):
        return Handoff(a, b, "why", "context", 1.0, True)

    ranked = [Ranked(sid, 0.5, "semantic", 0.5, (), ()) for sid in ("a", "b")]
    fired = [h("a", "b"), h("b", "a"), h("a", "c"), h("b", "c"), h("b", "d")]
    kept = [(x.from_skill, x.to_skill) for x in worth_listing(fired, ranked)]
    assert kept == [("a", "c"), ("b", "d")]


@pytest.mark.parametrize(
    "text, word, asked",
    [
        ("we also need help with publishing", "publishing", True),
        ("build the api, then deploy it", "deploy", True),
        ("how do we test it", "test", True),
        ("a GitHub workflow deploys it", "deploys", None),  # there, not asked for
        ("the pods crash; the deploy itself is fine", "deploy", None),
        ("write live updates; no video this time", "video", False),
        ("the backend already runs", "backend", False),
        ("we don't need the database", "database", False),  # n't reads as not
        ("we don\u2019t need the database", "database", False),  # a typographic apostrophe
        ("the database is slow; we also need help with the database", "database", True),
        ("nothing about it here", "database", False),  # not in the text at all
    ],
)
def test_word_asked_reads_request_cues_in_the_clause(text, word, asked):
    assert word_asked(text, word) is asked


def test_a_lone_word_fires_when_asked_and_never_when_declined(mini):
    rules = mini._searcher._rules_of("webhooks")
    qv = np.zeros(rules.rule_vectors.shape[1], np.float32)  # natural-language rules stay quiet

    def fired(query, similarity):
        out = rules.fire(query, qv, ["webhooks"], 0.5, lambda _: similarity, 0.5, 0.3)
        return {f.rule.rule.target: f for f in out}

    # 'hmac' (rule 'signature|hmac' -> security), asked for, 0.35 similar: fires
    asked = fired("our webhook receiver works; we also need help with the hmac", 0.35)
    assert "security" in asked and "asks for 'hmac'" in asked["security"].reason
    # the same similarity without a request: quiet; with 0.5: fires as before
    assert "security" not in fired("our webhook receiver checks the hmac", 0.35)
    assert "security" in fired("our webhook receiver checks the hmac", 0.5)
    # declined: never, however similar
    assert "security" not in fired("the hmac is already verified upstream", 0.9)
    # without request cues (asked_threshold None), similarity alone decides, as before
    plain = rules.fire(
        "we also need help with the hmac", qv, ["webhooks"], 0.5, lambda _: 0.35, 0.5
    )
    assert "security" not in {f.rule.rule.target for f in plain}
