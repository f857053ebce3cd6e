"""Step 2 of the flow: turn each skill into the texts that get embedded.

Per skill: a card (name, description, identity summary), each trigger, one text of what it
owns and its tags, each pattern, each anti-pattern, and (for SKILL.md skills, which have no
patterns) each section of the Markdown body and, one document each, what it says about when
it applies (each line of its "When to Use" sections, its description's "Use when" clause).
Then what a skill says about problems, in the
words users describe them with: each validation check (its message and fix), each sharp edge
(its summary, situation and symptoms), and the contexts in which work comes to it (its own
``receives_from`` contexts, and the contexts of other skills' handoff rules that point to
it). Code examples are left out: they are long, and match queries by accident more than by
meaning.
"""

from __future__ import annotations

import re
from collections import Counter
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
# What a skill says about when it applies: each line of a SKILL.md "When to Use" section
# and the "Use when ..." clause of a description, one document each.
USE_WHEN = "use_when"
KINDS = (
    CARD,
    TRIGGER,
    TOPICS,
    PATTERN,
    ANTI_PATTERN,
    SECTION,
    USE_WHEN,
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
# use_when: SKILL.md dev-A 0.585 -> 0.599 MRR@10 with the "When to Use" and "Do not use"
# sections no longer indexed as sections (benchmarks/skillmd.py).
INDEXED_KINDS = tuple(k for k in KINDS if k not in (RECEIVES, HANDOFF_IN))
# Texts of the problem kinds are cut like sections: the start says what they are about.
PROBLEM_CHARS = 700

# "When to Use" lines are short; a longer one is cut, and a skill has at most this many.
USE_WHEN_CHARS = 300
MAX_USE_WHEN = 16
# a "When to Use" line in this many skills of a collection is boilerplate ("This skill is
# applicable to execute the workflow ..." is in 369 of the 1,434 Agent Skills), not indexed
SHARED_USE_WHEN = 3

# Sections of a SKILL.md body are cut to this many characters: the model reads 256 tokens at
# most, and the start of a section says what it is about.
SECTION_CHARS = 700
MAX_SECTIONS = 12

# Bump when the text a kind makes of a skill changes: indexes made before are then stale.
REVISION = 2


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
    """``(heading, text)`` for each of the first ``MAX_SECTIONS`` ``#``-``###`` sections of a
    Markdown body that have text, less those that say when the skill applies (their lines are
    ``use_when`` documents) or when it does not ("Do not use this skill when": a query that
    matches them is the one the skill is not for)."""
    return [
        (h, " ".join(" ".join(lines).split()))
        for h, lines in _section_lines(body)[:MAX_SECTIONS]
        if not (is_when_heading(h) or is_not_when_heading(h))
    ]


def _section_lines(body: str, levels: int = 3) -> list[tuple[str, list[str]]]:
    """``(heading, lines)`` for each section (headings of ``levels`` ``#`` at most) of a
    Markdown body that has text, code blocks left out."""
    out: list[tuple[str, list[str]]] = []
    heading, in_code = "", False
    lines: list[str] = []
    pattern = re.compile(rf"^#{{1,{levels}}}\s+(.*)$")
    for line in body.splitlines() + ["# "]:
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = pattern.match(line)
        if m:
            if any(x.strip() for x in lines):
                out.append((heading, lines))
            heading, lines = m.group(1).strip(), []
        else:
            lines.append(line)
    return out


# A heading that says when the skill applies ("When to Use", "Use this skill when", "When to
# use this workflow", "Use cases", "Trigger phrases"), not when it does not.
_WHEN_HEADING = re.compile(
    r"\bwhen to (use|activate|invoke|apply)\b|\buse (this skill |this |it )?when\b"
    r"|\buse cases?\b|\btrigger (phrases|conditions)\b|\bwhen invoked\b",
    re.I,
)
_NOT_HEADING = re.compile(r"\b(not|don'?t|never|avoid)\b", re.I)
_NOT_WHEN_HEADING = re.compile(
    r"\b(do not|don'?t|never) use\b|\bwhen not to\b|\bnot (to )?use (this|it|when)\b", re.I
)
# The clause of a description that says when to use the skill: "Use when ...", "Use this
# skill when ...", "Use for ...", "Invoke when ...", "Triggers on ...".
_USE_CLAUSE = re.compile(
    r"\b(?:use|invoke|activate|apply|trigger(?:ed|s)?)(?: this skill| it| this)?"
    r"\s+(?:when|whenever|for|if|on)\b",
    re.I,
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+(.*\S)")
_MARKUP = re.compile(r"\*\*|__|`|^\[[ xX]\]\s*")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def is_when_heading(heading: str) -> bool:
    """A heading that says when the skill applies ("When to Use", "Use this skill when")."""
    return bool(_WHEN_HEADING.search(heading)) and not _NOT_HEADING.search(heading)


def is_not_when_heading(heading: str) -> bool:
    """A heading that says when the skill does not apply ("Do not use this skill when",
    "When not to use")."""
    return bool(_NOT_WHEN_HEADING.search(heading))


def _plain(text: str) -> str:
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", text)).split())


def use_when_clause(description: str) -> str:
    """The description's clause that says when to use the skill, from "Use when" (or "Use
    for", "Invoke when", ...) to its end; empty when it has none."""
    m = _USE_CLAUSE.search(description)
    return description[m.start() :].strip() if m else ""


def use_when_lines(body: str) -> list[str]:
    """The lines of a body's "When to Use" sections (any heading level): each list item, or
    each sentence of a section that has no list."""
    out: list[str] = []
    for heading, lines in _section_lines(body, levels=6):
        if not is_when_heading(heading):
            continue
        items = [m.group(1) for m in map(_LIST_ITEM.match, lines) if m]
        if not items:
            items = re.split(r"(?<=[.!?])\s+", " ".join(" ".join(lines).split()))
        out += [t for t in map(_plain, items) if len(t.split()) >= 2]
    return list(dict.fromkeys(out))


def use_when_texts(skill: Skill) -> list[tuple[str, str]]:
    """``(field, text)`` of what a skill says about when it applies: the description's
    "Use when" clause (``description#use-when``) and each "When to Use" line
    (``use_when[i]``), at most ``MAX_USE_WHEN``."""
    out: list[tuple[str, str]] = []
    clause = use_when_clause(skill.description)
    if clause:
        out.append(("description#use-when", clause[:USE_WHEN_CHARS]))
    lines = use_when_lines(skill.body) if skill.body else []
    out += [(f"use_when[{i}]", t[:USE_WHEN_CHARS]) for i, t in enumerate(lines)]
    return out[:MAX_USE_WHEN]


def shared_use_when(skills: Sequence[Skill]) -> set[str]:
    """The "When to Use" texts written alike in ``SHARED_USE_WHEN`` or more of ``skills``:
    boilerplate that tells none of them apart (neither indexed nor asked by ``eval
    --self``)."""
    per_text = Counter(t for s in skills for t in {t for _, t in use_when_texts(s)})
    return {t for t, n in per_text.items() if n >= SHARED_USE_WHEN}


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
    for i, (field, text) in enumerate(use_when_texts(skill)):
        docs.append(Document(sid, USE_WHEN, field, text, i))
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
    docs = [d for s in skills for d in skill_documents(s, incoming.get(s.id, ()))]
    # boilerplate "When to Use" lines (``shared_use_when``), counted on the documents made
    per_text = Counter(
        text for _, text in {(d.skill_id, d.text) for d in docs if d.kind == USE_WHEN}
    )
    return [d for d in docs if d.kind != USE_WHEN or per_text[d.text] < SHARED_USE_WHEN]
