"""One home for a skill's renderings: `retrieve show` prints what `show --json` holds, and
the Markdown for a prompt is built from the same entries (issue 20: `show webhooks` printed
none of the skill's 3 sharp edges or 2 checks while --json and MCP had them)."""

from __future__ import annotations

import json

from conftest import BUNDLED
from helpers import retrieve

from retriever.load import load_collection
from retriever.present.skill import SKILL_SECTIONS, skill_markdown, skill_sections, skill_text
from retriever.skill import (
    AntiPattern,
    Check,
    HandoffRule,
    Pattern,
    Receives,
    SharpEdge,
    Skill,
)

FULL = Skill(
    id="demo",
    name="Demo",
    description="Does the demo.",
    identity="A demo expert.",
    triggers=("demo", "show me"),
    owns=("demos",),
    tags=("example",),
    patterns=(Pattern("Start small", "One step at a time", "always", "print(1)"),),
    anti_patterns=(AntiPattern("Big bang", "All at once", "it breaks", "go small"),),
    handoffs=(HandoffRule("other", "deploy|ship", "the build is ready", "high", "skill.yaml"),),
    checks=(Check("no-print", "print() left in code", "remove it", "warning"),),
    sharp_edges=(
        SharpEdge(
            "Runs twice",
            "on retry",
            ("duplicate rows", "double mail"),
            "at-least-once",
            "dedupe on id",
            "high",
        ),
    ),  # fmt: skip
    receives=(Receives("when a demo is needed", "teacher"),),
    body="# Notes\nMore words.",
    path="/x/demo/skill.yaml",
    collection="/x",
)


def test_the_markdown_of_a_whole_skill_is_exactly_this():
    assert skill_markdown(FULL) == (
        "# Demo (`demo`)\n\nDoes the demo.\n\n## Identity\nA demo expert.\n\n"
        "## Triggers\ndemo, show me\n\n"
        "## Patterns\n- **Start small**: One step at a time\n  - When: always\n\n"
        "  ```\n  print(1)\n  ```\n\n"
        "## Anti-patterns\n- **Avoid: Big bang**: All at once\n  - Why: it breaks\n"
        "  - Instead: go small\n\n"
        "## Sharp edges\n- **Known problem: Runs twice**\n  - When: on retry\n"
        "  - Why: at-least-once\n  - Fix: dedupe on id\n\n"
        "## Checks\n- **Check: print() left in code**\n  - Fix: remove it\n\n"
        "## Handoffs\n- to `other` when: deploy|ship (the build is ready)\n\n"
        "# Notes\nMore words."
    )
    assert skill_markdown(FULL, ["triggers"]) == "# Demo (`demo`)\n\n## Triggers\ndemo, show me"


def test_the_text_shows_every_part_the_json_holds():
    text = skill_text(FULL)
    for part in (
        "Demo (demo)", "/x/demo/skill.yaml", "Does the demo.", "A demo expert.", "show me",
        "demos", "example", "Start small", "One step at a time", "always", "print(1)",
        "Big bang", "it breaks", "go small", "Runs twice", "on retry", "duplicate rows",
        "double mail", "at-least-once", "dedupe on id", "severity: high", "print() left in code",
        "no-print", "remove it", "severity: warning", "`other`", "deploy|ship",
        "the build is ready", "priority: high", "skill.yaml", "when a demo is needed",
        "teacher", "More words.",
    ):  # fmt: skip
        assert part in text, part
    # every section the skill has, in the one order
    assert [s.key for s in skill_sections(FULL)] == [
        "description", "identity", "triggers", "owns", "patterns", "anti_patterns",
        "sharp_edges", "validations", "handoffs", "receives", "body",
    ]  # fmt: skip
    assert set(SKILL_SECTIONS) <= {s.key for s in skill_sections(FULL)}


def test_retrieve_show_prints_what_show_json_holds():
    """The defect: `retrieve show webhooks` printed none of its 3 sharp edges or 2 checks."""
    shown = retrieve("show", "webhooks", "--skills", str(BUNDLED)).stdout
    held = json.loads(retrieve("show", "webhooks", "--skills", str(BUNDLED), "--json").stdout)
    assert len(held["sharp_edges"]) == 3 and len(held["checks"]) == 2
    for edge in held["sharp_edges"]:
        assert edge["summary"][:60] in shown
    for check in held["checks"]:
        assert (check["message"] or check["name"])[:60] in shown
    for receives in held["receives"]:
        assert receives["context"][:60] in shown
    for rule in held["handoffs"]:
        assert f"`{rule['target']}`" in shown
    assert held["path"] in shown and ", ".join(held["owns"])[:40] in shown


def test_every_bundled_skill_renders_both_ways():
    for skill in load_collection([BUNDLED]).skills:
        text, markdown = skill_text(skill), skill_markdown(skill)
        assert skill.name in text and f"# {skill.name} (`{skill.id}`)" in markdown
        for e in skill.sharp_edges:
            assert e.summary[:60] in text and e.summary in markdown
