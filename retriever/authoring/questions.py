"""A skill's own questions: the texts in which it says, in a user's words, what it answers.

A spawner skill's validation messages, the symptoms and situations of its sharp edges and
the contexts in which other skills hand it work (``receives_from``) are written the way a
user describes a problem, and their right answer is known: the skill itself. They are what
``eval --self`` asks (``selfeval``) and what ``retrieve tune`` trains on (``tune``): one
gatherer, so the two read the same texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retriever.index.documents import SHARP_EDGE, VALIDATION
from retriever.skill import Skill

RECEIVES = "receives"


@dataclass(frozen=True)
class Question:
    """One of a skill's own questions, and the document that holds it (if one does)."""

    skill_id: str
    source: str  # "validation", "sharp_edge" or "receives"
    field: str  # e.g. "validations[2]", "sharp_edges[0]", "receives[1]"
    text: str
    held_by: str  # the field of the document that holds it, left out when it is asked


def own_questions(skill: Skill) -> list[Question]:
    """The skill's own questions, in its order: each check's message (else its name), each
    sharp edge's symptoms and situation (else summary), each ``receives_from`` context."""
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
    return out


def collection_questions(skills: Sequence[Skill]) -> list[Question]:
    return [q for s in skills for q in own_questions(s)]
