"""Step 2 of the flow: turn each skill into the texts that get embedded.

Per skill: a card (name, description, identity summary), each trigger, one text of what it
owns and its tags, each pattern, each anti-pattern, and (for SKILL.md skills, which have no
patterns) each section of the Markdown body. Sharp edges and validations are not indexed.
Code examples are left out: they are long, and match queries by accident more than by meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retriever.load.shapes import first_sentence
from retriever.skill import Skill

# Document kinds; ``pattern`` and ``anti_pattern`` are also returned as pattern hits.
CARD = "card"
TRIGGER = "trigger"
TOPICS = "topics"
PATTERN = "pattern"
ANTI_PATTERN = "anti_pattern"
SECTION = "section"
KINDS = (CARD, TRIGGER, TOPICS, PATTERN, ANTI_PATTERN, SECTION)

# Sections of a SKILL.md body are cut to this many characters: the model reads 256 tokens at
# most, and the start of a section says what it is about.
SECTION_CHARS = 700
MAX_SECTIONS = 12


@dataclass(frozen=True)
class Document:
    """One embedded text: whose it is, what kind, which field it came from, and the text.

    ``item`` is the position, in its list, of the trigger, pattern or anti-pattern the
    document stands for (``None`` for a card, topics or a section); ``field`` is the same
    place written for people ("patterns[3]") and is never parsed back.
    """

    skill_id: str
    kind: str
    field: str  # e.g. "card", "triggers[3]", "patterns[0]", "owns/tags", "body#Usage"
    text: str
    item: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            "kind": self.kind,
            "field": self.field,
            "text": self.text,
            "item": self.item,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(data["skill_id"], data["kind"], data["field"], data["text"], data.get("item"))


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def card_text(skill: Skill) -> str:
    identity = skill.role or (first_sentence(skill.identity) if skill.identity else "")
    if identity and identity in skill.description:
        identity = ""
    return _join(f"{skill.name}:", skill.description, identity)


def _sections(body: str) -> list[tuple[str, str]]:
    """``(heading, text)`` for each ``#``/``##`` section of a Markdown body that has text."""
    out: list[tuple[str, str]] = []
    heading, in_code = "", False
    lines: list[str] = []
    for line in body.splitlines() + ["# "]:
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = re.match(r"^#{1,3}\s+(.*)$", line)
        if m:
            text = " ".join(" ".join(lines).split())
            if text:
                out.append((heading, text))
            heading, lines = m.group(1).strip(), []
        else:
            lines.append(line)
    return out[:MAX_SECTIONS]


def skill_documents(skill: Skill) -> list[Document]:
    """Every document of one skill, in a fixed order."""
    sid = skill.id
    docs = [Document(sid, CARD, "card", card_text(skill))]
    docs += [Document(sid, TRIGGER, f"triggers[{i}]", t, i) for i, t in enumerate(skill.triggers)]
    if skill.owns or skill.tags:
        topics = ", ".join(dict.fromkeys(skill.owns + skill.tags))
        docs.append(Document(sid, TOPICS, "owns/tags", f"{skill.name} covers: {topics}"))
    for i, p in enumerate(skill.patterns):
        text = _join(f"{p.name}:", p.description, f"When: {p.when}" if p.when else "")
        docs.append(Document(sid, PATTERN, f"patterns[{i}]", text, i))
    for i, a in enumerate(skill.anti_patterns):
        text = _join(
            f"Avoid {a.name}:",
            a.description,
            f"Why: {a.why}" if a.why else "",
            f"Instead: {a.instead}" if a.instead else "",
        )
        docs.append(Document(sid, ANTI_PATTERN, f"anti_patterns[{i}]", text, i))
    for heading, text in _sections(skill.body):
        docs.append(
            Document(
                sid,
                SECTION,
                f"body#{heading}" if heading else "body",
                _join(f"{heading}:" if heading else "", text)[:SECTION_CHARS],
            )
        )
    return [d for d in docs if d.text.strip()]


def collection_documents(skills: tuple[Skill, ...] | list[Skill]) -> list[Document]:
    return [d for s in skills for d in skill_documents(s)]
