"""Search, handoffs and rendering through the real pipeline with a deterministic fake embedder."""

from __future__ import annotations

import pytest
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.errors import QueryError, UnknownSkillError
from retriever.rules import rule_phrases
from retriever.search.rank import ScoringConfig


@pytest.fixture
def mini(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    return SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)


@pytest.fixture
def mini_any_word(tmp_path, fake_embedder):
    """The mini collection with one-word rule phrases firing on their own, as before the
    lone-word gate: the fake embedder's similarities are too low to pass it."""
    root = write_mini(tmp_path / "skills")
    config = ScoringConfig(lone_word_rule_threshold=0.0)
    return SkillRetriever.open(
        root, index_dir=tmp_path / "idx", embedder=fake_embedder, config=config
    )


@pytest.mark.parametrize(
    "trigger, phrases",
    [
        ("security audit|penetration", ("security audit", "penetration")),
        ("frontend or ui or component", ("frontend", "ui", "component")),
        ("cdn, edge", ("cdn", "edge")),
        ("webhook", ("webhook",)),
        ("Need to define brand positioning before building AI assets", ()),
        ("User needs AWS serverless", ()),
    ],
)
def test_rule_phrases(trigger, phrases):
    assert rule_phrases(trigger) == phrases


def test_ranks_and_explains(mini):
    r = mini.search("record each event id and skip events already processed", k=2)
    top = r.skills[0]
    assert top.id == "webhooks" and top.via == "semantic"
    assert top.matches[0].field == "patterns[0]" and top.matches[0].score > 0.7
    assert top.patterns[0].name == "Idempotent handler"
    assert r.patterns[0].skill_id == "webhooks" and r.patterns[0].name == "Idempotent handler"


def test_keyword_handoff_adds_its_target(mini_any_word):
    r = mini_any_word.search("does each webhook check the hmac", k=1)
    assert r.skills[0].id == "webhooks"
    fired = {(h.from_skill, h.to_skill): h for h in r.handoffs}
    assert "'hmac'" in fired[("webhooks", "security")].reason
    joined = r.skills[1]
    assert (joined.id, joined.via) == ("security", "handoff")
    assert joined.score == pytest.approx(r.skills[0].score * 0.9)
    assert joined.matches[0].via == "handoff"


def test_natural_language_rule_fires_semantically(mini):
    r = mini.search("webhook: the consumer must survive the same message arriving twice", k=1)
    h = next(h for h in r.handoffs if h.to_skill == "queues")
    assert h.score == pytest.approx(1.0, abs=0.2) and "resembles" in h.reason
    assert "queues" in r.skill_ids


def test_unresolved_target_is_reported_not_added(mini_any_word):
    r = mini_any_word.search("webhook delivery status in the frontend", k=3)
    h = next(h for h in r.handoffs if h.to_skill == "ui")
    assert h.resolved is False
    assert "ui" not in r.skill_ids


def test_lone_word_does_not_fire_when_the_query_is_far_from_the_target(mini):
    # 'hmac' is a one-word phrase of rule 'signature|hmac' -> security; the query is about
    # webhooks and (under the fake embedder) far from the security skill's documents
    r = mini.search("does each webhook check the hmac", k=1)
    assert r.skills[0].id == "webhooks"
    assert ("webhooks", "security") not in {(h.from_skill, h.to_skill) for h in r.handoffs}
    assert "security" not in {s.id for s in r.skills if s.via == "handoff"}


def test_handoff_cycle_does_not_loop_and_a_listed_skill_is_not_handed_to(mini):
    # webhooks -> queues is not keyword-triggered here; queues -> webhooks is ('webhook'),
    # but webhooks is listed already: a handoff to it would say nothing (nor would the
    # ping-pong pair webhooks -> queues -> webhooks)
    r = mini.search("webhook queue worker", k=3)
    assert len(r.skill_ids) == len(set(r.skill_ids))
    ranked = {s.id for s in r.skills if s.via != "handoff"}
    assert {"webhooks", "queues"} <= ranked
    assert not [h for h in r.handoffs if h.to_skill in ranked]
    # the rule itself still fires: asked of queues' rules alone, the handoff is there
    forced = mini.handoffs_for("webhook queue worker", ["queues"])
    assert ("queues", "webhooks") in {(h.from_skill, h.to_skill) for h in forced}


def test_weak_semantic_match_falls_back_to_triggers(mini):
    r = mini.search("penetration test", k=3)  # only a trigger; fake vectors barely overlap
    assert r.skills[0].id == "security"
    assert any(m.via == "keyword" for m in r.skills[0].matches)


def test_errors(mini):
    for bad in ("", "   ", "!!!"):
        with pytest.raises(QueryError, match="empty"):
            mini.search(bad)
    with pytest.raises(QueryError):
        mini.search("webhook", k=0)
    with pytest.raises(UnknownSkillError, match="did you mean webhooks"):
        mini.skill("webhook")


def test_json_contract(mini_any_word):
    # k=1: a handoff to a skill the ranking lists is not shown
    d = mini_any_word.search("webhook hmac", k=1).to_dict()
    assert set(d) >= {"query", "skills", "patterns", "handoffs", "confidence", "no_match"}
    assert set(d["skills"][0]) >= {"id", "name", "score", "via", "matches", "patterns"}
    assert set(d["handoffs"][0]) >= {"from", "to", "reason"}


def test_markdown_fits_the_budget_and_keeps_blocks_whole(mini):
    r = mini.search("record each event id and skip events already processed", k=3)
    full = mini.render_markdown(r, max_chars=10_000)
    assert "## Webhooks (`webhooks`)" in full and "**Idempotent handler**" in full
    for budget in (80, 150, 250, 400):
        md = mini.render_markdown(r, max_chars=budget)
        assert len(md) <= budget
        # every pattern line present is complete, as in the full rendering
        for line in md.splitlines():
            assert line in full.splitlines()
        # never a title alone, nor handoffs of skills it does not show
        assert md == "" or "\n## " in md
        shown = {line.split("(`")[1].split("`")[0] for line in md.splitlines() if "(`" in line}
        for line in md.split("## Handoffs", 1)[1:]:
            for h in line.strip().splitlines():
                assert h.split(" -> ")[0].lstrip("- ") in shown


def test_the_exact_scan_finds_what_faiss_finds():
    """The exact index answers fewer rows than it holds by scanning every vector (the query
    path); asked for all of them, FAISS searches: the top rows and scores agree."""
    import numpy as np

    from retriever.index.vectors import VectorIndex

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((5000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(vectors)
    assert index.exact and index.kind == "IndexFlatIP"
    for _ in range(3):
        q = vectors[rng.integers(5000)] + 0.1 * rng.standard_normal(64).astype(np.float32)
        scores, rows, every = index.search(q, 50)
        assert every is not None and every[rows] == pytest.approx(scores)
        faiss_scores, faiss_rows, none = index.search(q, index.ntotal)
        assert none is None
        order = np.argsort(-scores, kind="stable")
        assert list(rows[order]) == list(faiss_rows[:50])
        assert scores[order] == pytest.approx(faiss_scores[:50], abs=1e-5)
    assert index.vectors(np.array([3, 7])) == pytest.approx(vectors[[3, 7]])


def test_an_ivf_index_searches_and_reads_vectors_back(monkeypatch):
    """Above EXACT_MAX_DOCUMENTS the index is IVF: searched by FAISS, vectors read back by
    row (what scoring a returned skill's patterns needs)."""
    import numpy as np

    import retriever.index.vectors as vectors_module
    from retriever.index.vectors import VectorIndex

    monkeypatch.setattr(vectors_module, "EXACT_MAX_DOCUMENTS", 100)
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(vectors)
    assert not index.exact and index.kind == "IndexIVFFlat"
    scores, rows, every = index.search(vectors[42], 10)
    assert every is None and rows[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert index.vectors(np.array([42, 7])) == pytest.approx(vectors[[42, 7]], abs=1e-6)
    assert index.all_vectors() == pytest.approx(vectors, abs=1e-6)


def test_inner_products_equal_numpy():
    import numpy as np

    from retriever.index.vectors import VectorIndex, inner_products

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((1000, 384)).astype(np.float32)
    query = rng.standard_normal(384).astype(np.float32)
    assert inner_products(vectors, query) == pytest.approx(vectors @ query, abs=1e-4)
    # a view that is not C-contiguous takes numpy's path and still answers
    strided = vectors[::2]
    assert inner_products(strided, query) == pytest.approx(strided @ query, abs=1e-4)
    # long enough to be split across threads: every slice lands in its place
    tall = rng.standard_normal((10_001, 384)).astype(np.float32)
    index = VectorIndex.build(tall)
    assert index.scan_workers >= 0
    index.scan_workers = 2  # force the split whatever the machine's cores
    assert index.inner_products(query) == pytest.approx(tall @ query, abs=1e-3)
