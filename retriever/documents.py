"""Step 2 of the flow: turn each skill into the texts that get embedded.

Per skill: a card (name, description, identity summary), each trigger, one text of what it
owns and its tags, each pattern, each anti-pattern, and (for SKILL.md skills, which have no
patterns) each section of the Markdown body. Sharp edges and validations are not indexed.
Code examples are left out: they are long, and match queries by accident more than by meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    """One embedded text: whose it is, what kind, which field it came from, and the text."""

    skill_id: str
    kind: str
    field: str  # e.g. "card", "triggers[3]", "patterns[0]", "owns/tags", "body#Usage"
    text: str

    @property
    def item(self) -> int | None:
        """The pattern/anti-pattern/trigger position this document stands for, if any."""
        return field_item(self.field)


def field_item(field: str) -> int | None:
    """``"patterns[3]"`` -> 3: the position a document's field names, if it names one."""
    m = re.search(r"\[(\d+)\]$", field)
    return int(m.group(1)) if m else None


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
    heading, lines, in_code = "", [], False
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
    docs += [Document(sid, TRIGGER, f"triggers[{i}]", t) for i, t in enumerate(skill.triggers)]
    if skill.owns or skill.tags:
        topics = ", ".join(dict.fromkeys(skill.owns + skill.tags))
        docs.append(Document(sid, TOPICS, "owns/tags", f"{skill.name} covers: {topics}"))
    for i, p in enumerate(skill.patterns):
        text = _join(f"{p.name}:", p.description, f"When: {p.when}" if p.when else "")
        docs.append(Document(sid, PATTERN, f"patterns[{i}]", text))
    for i, a in enumerate(skill.anti_patterns):
        text = _join(
            f"Avoid {a.name}:", a.description,
            f"Why: {a.why}" if a.why else "", f"Instead: {a.instead}" if a.instead else "",
        )
        docs.append(Document(sid, ANTI_PATTERN, f"anti_patterns[{i}]", text))
    for heading, text in _sections(skill.body):
        docs.append(Document(sid, SECTION, f"body#{heading}" if heading else "body",
                             _join(f"{heading}:" if heading else "", text)[:SECTION_CHARS]))
    return [d for d in docs if d.text.strip()]


def collection_documents(skills: tuple[Skill, ...] | list[Skill]) -> list[Document]:
    return [d for s in skills for d in skill_documents(s)]
