"""Output that reads right (issue 23, item 6): anti-patterns marked wherever listed, each
trigger once per skill, a handoff's context said once."""

from __future__ import annotations

from dataclasses import replace

import pytest
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.present.results import Handoff, PatternHit
from retriever.present.skill import skill_markdown
from retriever.present.terminal import format_result
from retriever.skill import HandoffRule


@pytest.fixture
def mini(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    return SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)


def test_each_trigger_is_listed_once_per_skill(mini):
    r = mini.search("webhook", k=1)
    fields = [m.field for m in r.skills[0].matches]
    assert len(fields) == len(set(fields))
    assert any(m.field.startswith("triggers[") and m.via == "keyword" for m in r.skills[0].matches)


def test_output_marks_anti_patterns_and_says_a_handoff_context_once(mini):
    r = mini.search("record each event id and skip events already processed", k=2)
    anti = PatternHit("webhooks", "anti_pattern", "Slow Handler", "text", 0.5, "anti_patterns[0]")
    rule = "the consumer must survive duplicates"
    same = Handoff(
        "webhooks", "queues", f"the query resembles the rule '{rule}' (0.62)", rule, 0.62, True
    )
    other = Handoff(
        "webhooks", "security", "'hmac' in the query matches rule 'hmac'", "Audit it", 1.0, True
    )
    text = format_result(replace(r, patterns=(anti, *r.patterns), handoffs=(same, other)))
    best = text.split("Best patterns across all skills:", 1)[1]
    assert "webhooks: avoid: Slow Handler" in best  # an anti-pattern says so where listed
    assert text.count(rule) == 1  # the rule's text is its context: said once
    assert "context: Audit it" in text
    # get_skill / show: a rule whose context is its trigger, once
    skill = mini.skill("webhooks")
    skill = replace(skill, handoffs=(HandoffRule(target="queues", trigger=rule, context=rule),))
    md = skill_markdown(skill, ["handoffs"])
    assert md.count(rule) == 1
