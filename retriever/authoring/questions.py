"""A skill's own questions: the texts in which it says, in a user's words, what it answers.

A spawner skill's validation messages, the symptoms and situations of its sharp edges and
the contexts in which other skills hand it work (``receives_from``) are written the way a
user describes a problem, and so are the lines of a SKILL.md's "When to Use" sections (the
way a user describes a task); their right answer is known: the skill itself. They are what
``eval --self`` asks (``selfeval``) and what ``retrieve tune`` trains on (``tune``): one
gatherer, so the two read the same texts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from retriever.index.documents import (
    SHARP_EDGE,
    USE_WHEN,
    VALIDATION,
    shared_use_when,
    use_when_texts,
)
from retriever.skill import Skill

RECEIVES = "receives"


@dataclass(frozen=True)
class Question:
    """One of a skill's own questions, and the document that holds it (if one does)."""

    skill_id: str
    source: str  # "validation", "sharp_edge", "receives" or "use_when"
    field: str  # e.g. "validations[2]", "sharp_edges[0]", "receives[1]", "use_when[3]"
    text: str
    held_by: str  # the field of the document that holds it, left out when it is asked


def own_questions(skill: Skill, boilerplate: Collection[str] = ()) -> list[Question]:
    """The skill's own questions, in its order: each check's message (else its name), each
    sharp edge's symptoms and situation (else summary), each ``receives_from`` context, and
    each line of a SKILL.md's "When to Use" sections but those in ``boilerplate`` (written
    alike in many skills of the collection: ``documents.shared_use_when``)."""
    out: list[Question] = []
    sid = skill.id
    for i, c in enumerate(skill.checks):
        text = c.message or c.name
        if text.strip():
            out.append(Question(sid, VALIDATION, f"validations[{i}]", text, f"validations[{i}]"))
    for i, e in enumerate(skill.sharp_edges):
        for text in dict.fromkeys([*e.symptoms, e.situation or e.summary]):
            if text.strip():
                field = f"sharp_edges[{i}]"
                out.append(Question(sid, SHARP_EDGE, field, text, field))
    for i, r in enumerate(skill.receives):
        if r.context.strip():  # held by its own document whenever that kind is indexed
            out.append(Question(sid, RECEIVES, f"receives[{i}]", r.context, f"receives[{i}]"))
    for place, text in use_when_texts(skill):
        # the description's "Use when" clause is not asked: the card, which a fold does not
        # leave out, holds its words
        if place.startswith("use_when") and text not in boilerplate:
            out.append(Question(sid, USE_WHEN, place, strip_lead(text), place))
    return out


def collection_questions(skills: Sequence[Skill]) -> list[Question]:
    boilerplate = shared_use_when(skills)
    return [q for s in skills for q in own_questions(s, boilerplate)]


_LEAD = re.compile(
    r"^(?:use (?:this skill |this |it )?(?:when|if|for|to)|when|if|whenever)\b[:,]?\s+", re.I
)


def strip_lead(text: str) -> str:
    """A "When to Use" line as a user would ask it: without a leading "Use when" (the
    question is the situation, not the instruction about it)."""
    out = _LEAD.sub("", text, count=1)
    return out[:1].upper() + out[1:] if out else text
