"""Loading the real shared corpora: every skill loads, and named skills normalise right."""

from __future__ import annotations

import pytest
from conftest import AGENT_SKILLS, FLAT, SPAWNER, require_shared

from retriever.load import load_collection

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def spawner():
    require_shared(SPAWNER)
    return load_collection([SPAWNER])


def test_spawner_counts(spawner):
    assert len(spawner.skills) == 462
    # the only problems in the real corpus are handoffs to skills it does not have
    assert spawner.problems and all("not in the collection" in p.reason for p in spawner.problems)
    assert sum(len(s.patterns) for s in spawner.skills) > 2000
    assert sum(len(s.anti_patterns) for s in spawner.skills) > 2000
    assert sum(len(s.handoffs) for s in spawner.skills) > 3000


def test_patterns_as_a_map_yield_one_named_pattern_per_key(spawner):
    skill = spawner.by_id()["ai-personalization"]
    assert [p.name for p in skill.patterns] == [
        "Collaborative filtering setup",
        "Content based filtering",
        "Hybrid recommendation",
        "Cold start handling",
        "Llm personalized responses",
        "Real time recommendations",
    ]
    assert skill.patterns[0].when == "Building recommendation system with user interactions"


def test_anti_patterns_map_with_wrong_right(spawner):
    skill = spawner.by_id()["api-design"]  # written with skill_id, no id
    a = skill.anti_patterns[0]
    assert a.name == "Verbs in urls"
    assert a.description == "Using verbs instead of nouns"
    assert a.instead == "POST /users, GET /users/:id"


def test_identity_map_gives_role(spawner):
    skill = spawner.by_id()["ai-agents-architect"]
    assert skill.role == "AI Agent Systems Architect"
    assert "graceful" in skill.identity


def test_triggers_map_keeps_keywords_not_globs(spawner):
    skill = spawner.by_id()["ai-product"]
    assert "vector search" in skill.triggers
    assert not any("*" in t for t in skill.triggers)


def test_handoff_shapes_in_real_files(spawner):
    by_id = spawner.by_id()
    azure = by_id["azure-functions"].handoffs
    assert ("aws-serverless", "User needs AWS serverless") in [(h.target, h.trigger) for h in azure]
    caching = by_id["caching-patterns"].handoffs
    assert ("infrastructure-as-code", "redis|memcached|infrastructure") in [
        (h.target, h.trigger) for h in caching
    ]
    personalization = by_id["ai-personalization"].handoffs
    assert ("semantic-search", "Building vector-based similarity") in [
        (h.target, h.trigger) for h in personalization
    ]
    # "delegate_to: ai-safety-alignment skill" names the skill
    assert "ai-safety-alignment" in [h.target for h in by_id["ai-code-generation"].handoffs]


def test_missing_id_uses_folder_name(spawner):
    ids = {s.id for s in spawner.skills}
    assert "error-handling" in ids  # written with skill_id
    assert all(s.id for s in spawner.skills)


def test_flat_sample():
    require_shared(FLAT)
    report = load_collection([FLAT])
    assert sorted(s.id for s in report.skills) == ["crewai", "rag-engineer", "voice-agents"]
    assert all(s.format == "spawner-flat" for s in report.skills)
    crewai = report.by_id()["crewai"]
    assert crewai.patterns and crewai.anti_patterns and crewai.handoffs
    assert any(h.origin.startswith("crewai-collaboration.yaml") for h in crewai.handoffs)


def test_agent_skills_all_load():
    require_shared(AGENT_SKILLS)
    report = load_collection([AGENT_SKILLS])
    assert len(report.skills) == 1434
    assert report.problems == ()
    skill = report.by_id()["makepad-animation"]  # description is a block scalar
    assert skill.description.startswith("CRITICAL: Use for Makepad animation system.")
    assert "\n" in skill.description and skill.body


def test_all_corpora_together():
    require_shared(SPAWNER, FLAT, AGENT_SKILLS)
    report = load_collection([FLAT, SPAWNER, AGENT_SKILLS])
    # the flat sample's 3 skills are also in the folder layout (and crewai in agent-skills
    # too): the first root wins, and each duplicate is reported
    dup = [p for p in report.problems if "duplicate skill id" in p.reason]
    assert {p.skill_id for p in dup} >= {"crewai", "rag-engineer", "voice-agents"}
    assert report.by_id()["crewai"].format == "spawner-flat"
    assert len(report.skills) == 462 + 3 + 1434 - len(
        [p for p in report.problems if "duplicate skill id" in p.reason]
    )
    assert {s.collection for s in report.skills} == {str(SPAWNER), str(FLAT), str(AGENT_SKILLS)}
