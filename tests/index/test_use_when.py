"""What a SKILL.md says about when it applies: each line of its "When to Use" sections and its
description's "Use when" clause are documents of their own kind (``use_when``)."""

from __future__ import annotations

from retriever.authoring.questions import collection_questions
from retriever.index.documents import (
    CARD,
    SECTION,
    USE_WHEN,
    is_not_when_heading,
    is_when_heading,
    skill_documents,
    use_when_clause,
    use_when_lines,
)
from retriever.skill import Skill

BODY = """# Queue helper

Intro text about queues.

## When to Use This Skill

- Use when a consumer must survive **duplicate** deliveries
- Retrying failed jobs with [backoff](https://example.org)
* x

## Do not use this skill when

- The task is unrelated to queues

## Limitations

- Use this skill only when the task clearly matches the scope described above.

### Use cases

Draining a dead-letter queue. Replaying events after an outage.

```
## When to use: inside code, not a heading
- not a line
```
"""


def test_headings_that_say_when_a_skill_applies():
    for heading in ("When to Use", "Use this skill when", "When to use this workflow", "Use cases"):
        assert is_when_heading(heading), heading
    for heading in ("Do not use this skill when", "When Not to Use", "Limitations", "Usage"):
        assert not is_when_heading(heading), heading
    assert is_not_when_heading("Do not use this skill when")
    assert is_not_when_heading("When not to use")
    assert not is_not_when_heading("When to Use")


def test_lines_of_when_to_use_sections_are_read_plain():
    assert use_when_lines(BODY) == [
        "Use when a consumer must survive duplicate deliveries",
        "Retrying failed jobs with backoff",
        "Draining a dead-letter queue.",
        "Replaying events after an outage.",
    ]


def test_the_description_clause():
    assert (
        use_when_clause("Queues. Use when jobs fail, or retry.") == "Use when jobs fail, or retry."
    )
    assert (
        use_when_clause("Service Bus SDK. Use for queues and topics.")
        == "Use for queues and topics."
    )
    assert use_when_clause("Queues and brokers.") == ""


def test_use_when_documents_and_the_card_without_the_clause():
    skill = Skill(
        id="queues",
        name="Queues",
        description="Brokers and consumers. Use when messages are lost.",
        body=BODY,
        format="skill-md",
    )
    docs = skill_documents(skill)
    when = [d for d in docs if d.kind == USE_WHEN]
    assert [d.field for d in when] == [
        "description#use-when",
        "use_when[0]",
        "use_when[1]",
        "use_when[2]",
        "use_when[3]",
    ]
    assert when[0].text == "Use when messages are lost."
    assert [d.item for d in when] == [0, 1, 2, 3, 4]
    card = next(d for d in docs if d.kind == CARD)
    assert "Brokers and consumers" in card.text
    sections = [d.field for d in docs if d.kind == SECTION]
    assert "body#Queue helper" in sections and "body#Limitations" in sections
    # the sections that say when the skill applies, or not, are not indexed as sections
    assert not [f for f in sections if "When to Use" in f or "Do not use" in f]


def test_boilerplate_lines_of_many_skills_are_not_indexed():
    from retriever.index.documents import collection_documents

    boiler = "- This skill is applicable to execute the workflow described above\n"
    skills = [
        Skill(
            id=f"s{i}",
            name=f"s{i}",
            description="d",
            body=f"## When to Use\n{boiler}- Use when case {i} happens\n",
            format="skill-md",
        )
        for i in range(3)
    ]
    texts = [d.text for d in collection_documents(skills) if d.kind == USE_WHEN]
    assert texts == [f"Use when case {i} happens" for i in range(3)]
    # in two skills only, a line is still indexed
    texts = [d.text for d in collection_documents(skills[:2]) if d.kind == USE_WHEN]
    assert sum("applicable" in t for t in texts) == 2


def test_eval_self_asks_the_when_to_use_lines_without_their_lead():
    """The questions ``eval --self`` asks of a SKILL.md collection (``own_questions``)."""

    def skill(sid: str, body: str) -> Skill:
        return Skill(id=sid, name=sid, description="d", body=body, format="skill-md")

    boiler = "- This skill is applicable to execute the workflow described above\n"
    skills = [
        skill("queues", BODY.replace("## Do not use", boiler + "\n## Do not use")),
        skill("a", "## When to Use\n" + boiler),
        skill("b", "## When to Use\n" + boiler + "- Use when sizing a thread pool\n"),
    ]
    asked = [(q.skill_id, q.source, q.field, q.text) for q in collection_questions(skills)]
    assert (
        "queues",
        "use_when",
        "use_when[0]",
        "A consumer must survive duplicate deliveries",
    ) in asked
    assert ("b", "use_when", "use_when[1]", "Sizing a thread pool") in asked
    assert not any("applicable" in text for *_, text in asked)  # in 3 skills: boilerplate
    assert all(q.held_by == q.field for q in collection_questions(skills))
