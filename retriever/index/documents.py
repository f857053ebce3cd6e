"""Step 2 of the flow: turn each skill into the texts that get embedded.

Per skill: a card (name, description, identity summary), each trigger, one text of what it
owns and its tags, each pattern, each anti-pattern, and (for SKILL.md skills, which have no
patterns) each section of the Markdown body. Then what a skill says about problems, in the
words users describe them with: each validation check (its message and fix), each sharp edge
(its summary, situation and symptoms), and the contexts in which work comes to it (its own
``receives_from`` contexts, and the contexts of other skills' handoff rules that point to
it). Code examples are left out: they are long, and match queries by accident more than by
meaning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retriever.load.shapes import first_sentence
from retriever.skill import Check, HandoffRule, SharpEdge, Skill

# Document kinds; ``pattern`` and ``anti_pattern`` are also returned as pattern hits.
CARD = "card"
TRIGGER = "trigger"
TOPICS = "topics"
PATTERN = "pattern"
ANTI_PATTERN = "anti_pattern"
SECTION = "section"
VALIDATION = "validation"
SHARP_EDGE = "sharp_edge"
RECEIVES = "receives"
HANDOFF_IN = "handoff_in"
KINDS = (
    CARD,
    TRIGGER,
    TOPICS,
    PATTERN,
    ANTI_PATTERN,
    SECTION,
    VALIDATION,
    SHARP_EDGE,
    RECEIVES,
    HANDOFF_IN,
)
# Kinds that answer a symptom: when one matches, the result shows it and its fix.
PROBLEM_KINDS = (VALIDATION, SHARP_EDGE)
# The kinds a build indexes. The contexts in which work comes to a skill (receives,
# handoff_in) are built and measured (benchmarks/kinds.py) but left out: added to the
# validations they gained nothing on dev-A, and handoff_in cost 0.01-0.03 MRR@10 on dev-B.
INDEXED_KINDS = (CARD, TRIGGER, TOPICS, PATTERN, ANTI_PATTERN, SECTION, VALIDATION, SHARP_EDGE)
# Texts of the problem kinds are cut like sections: the start says what they are about.
PROBLEM_CHARS = 700

# Sections of a SKILL.md body are cut to this many characters: the model reads 256 tokens at
# most, and the start of a section says what it is about.
SECTION_CHARS = 700
MAX_SECTIONS = 12

# Bump when the text a kind makes of a skill changes: indexes made before are then stale.
REVISION = 1


def recipe() -> str:
    """What a build makes of the skills, as its manifest records it: an index made by
    another recipe (other kinds, other cuts) is stale, since its documents are not those this
    code would make. Read when called: a benchmark may index other kinds."""
    kinds = "+".join(INDEXED_KINDS)
    return f"r{REVISION} {kinds} cut{PROBLEM_CHARS}/{SECTION_CHARS}x{MAX_SECTIONS}"


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


def check_text(check: Check) -> str:
    return _join(check.message or check.name, f"Fix: {check.fix}" if check.fix else "")


def sharp_edge_text(edge: SharpEdge) -> str:
    symptoms = "; ".join(edge.symptoms)
    return _join(edge.summary, edge.situation, f"Symptoms: {symptoms}" if symptoms else "")


def incoming_rules(skills: Sequence[Skill]) -> dict[str, list[tuple[str, HandoffRule]]]:
    """For each skill id, the handoff rules of other skills that point to it, as
    ``(source skill id, rule)``, in skill order then rule order."""
    out: dict[str, list[tuple[str, HandoffRule]]] = {}
    ids = {s.id for s in skills}
    for s in skills:
        for rule in s.handoffs:
            if rule.target in ids and rule.target != s.id:
                out.setdefault(rule.target, []).append((s.id, rule))
    return out


def skill_documents(
    skill: Skill, incoming: Sequence[tuple[str, HandoffRule]] = ()
) -> list[Document]:
    """Every document of one skill, in a fixed order. ``incoming``: the rules of other
    skills that hand work to this one (``incoming_rules``)."""
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
    problem_docs = [
        *(
            Document(sid, VALIDATION, f"validations[{i}]", check_text(c)[:PROBLEM_CHARS], i)
            for i, c in enumerate(skill.checks)
        ),
        *(
            Document(sid, SHARP_EDGE, f"sharp_edges[{i}]", sharp_edge_text(e)[:PROBLEM_CHARS], i)
            for i, e in enumerate(skill.sharp_edges)
        ),
        *(
            Document(sid, RECEIVES, f"receives[{i}]", r.context[:PROBLEM_CHARS], i)
            for i, r in enumerate(skill.receives)
        ),
        *(
            Document(
                sid,
                HANDOFF_IN,
                f"handoffs_in[{i}]",
                (rule.context or rule.trigger)[:PROBLEM_CHARS],
                i,
            )
            for i, (_, rule) in enumerate(incoming)
        ),
    ]
    # the same text twice in one kind (two skills handing off in the same words) is one
    # document: a duplicate would count twice in the skill's soft maximum
    seen: set[tuple[str, str]] = set()
    for d in problem_docs:
        if (d.kind, d.text) not in seen:
            seen.add((d.kind, d.text))
            docs.append(d)
    return [d for d in docs if d.text.strip() and d.kind in INDEXED_KINDS]


def collection_documents(skills: Sequence[Skill]) -> list[Document]:
    incoming = incoming_rules(skills)
    return [d for s in skills for d in skill_documents(s, incoming.get(s.id, ()))]
