"""The normalised skill model every input format is turned into.

Values are frozen dataclasses with tuples (no mutable defaults), so a loaded collection can be
shared between threads and cached without copies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pattern:
    """A recommended way of doing something, as a skill teaches it."""

    name: str
    description: str = ""
    when: str = ""
    example: str = ""


@dataclass(frozen=True)
class AntiPattern:
    """A common mistake, why it hurts, and what to do instead."""

    name: str
    description: str = ""
    why: str = ""
    instead: str = ""


@dataclass(frozen=True)
class Check:
    """A validation check of a skill: what it flags in code, in words, and the fix."""

    name: str
    message: str = ""
    fix: str = ""
    severity: str = ""


@dataclass(frozen=True)
class SharpEdge:
    """A gotcha: how it shows (summary, situation, symptoms), why, and what to do."""

    summary: str
    situation: str = ""
    symptoms: tuple[str, ...] = ()
    why: str = ""
    solution: str = ""
    severity: str = ""


@dataclass(frozen=True)
class Receives:
    """A context in which another skill hands work to this one (``receives_from``)."""

    context: str
    from_skill: str = ""


@dataclass(frozen=True)
class HandoffRule:
    """A rule of one skill that sends part of the work to another skill.

    ``trigger`` is the raw rule text: a keyword alternation (``"security audit|penetration"``,
    ``"frontend or ui or component"``) or a natural-language condition (``when:``), which the
    handoff matcher tells apart.
    """

    target: str
    trigger: str
    context: str = ""
    priority: str = ""
    origin: str = ""  # where the rule was written, e.g. "skill.yaml:handoffs[2]"


@dataclass(frozen=True)
class Skill:
    """One skill of a collection, whatever format it was written in."""

    id: str
    name: str
    description: str
    identity: str = ""
    role: str = ""
    triggers: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    patterns: tuple[Pattern, ...] = ()
    anti_patterns: tuple[AntiPattern, ...] = ()
    handoffs: tuple[HandoffRule, ...] = ()
    checks: tuple[Check, ...] = ()  # validations.yaml
    sharp_edges: tuple[SharpEdge, ...] = ()  # sharp-edges.yaml
    receives: tuple[Receives, ...] = ()  # collaboration.yaml receives_from
    body: str = ""  # Markdown body of a SKILL.md file
    format: str = "spawner"  # a format name of retriever.load.formats
    path: str = ""  # the skill's main file
    collection: str = ""  # the root it was found under

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Skill:
        return cls(
            **{
                **data,
                "triggers": tuple(data.get("triggers", ())),
                "owns": tuple(data.get("owns", ())),
                "tags": tuple(data.get("tags", ())),
                "patterns": tuple(Pattern(**p) for p in data.get("patterns", ())),
                "anti_patterns": tuple(AntiPattern(**a) for a in data.get("anti_patterns", ())),
                "handoffs": tuple(HandoffRule(**h) for h in data.get("handoffs", ())),
                "checks": tuple(Check(**c) for c in data.get("checks", ())),
                "sharp_edges": tuple(
                    SharpEdge(**{**e, "symptoms": tuple(e.get("symptoms", ()))})
                    for e in data.get("sharp_edges", ())
                ),
                "receives": tuple(Receives(**r) for r in data.get("receives", ())),
            }
        )


# What kinds of load problem there are (``LoadProblem.code``).
PROBLEM_CODES = {
    "unreadable": "a skill file or folder cannot be read or parsed: the skill is left out",
    "side_file": "a side file cannot be read: the skill loaded without what it holds",
    "duplicate_id": "a second skill with an id already loaded (first root and path win)",
    "unresolved_handoff": "a handoff to a skill the collection does not have",
    "long_phrase": "a trigger or rule phrase too long for keyword matching",
    "bad_id": "an id that cannot be used as it is written",
    "no_front_matter": "a SKILL.md without YAML front matter",
    "empty_root": "a skills root with no skills in it",
    "invalid": "a field of the wrong shape or type, read as well as it could be",
}


@dataclass(frozen=True)
class LoadProblem:
    """Something wrong in a collection: the file, and why. The rest still loads.

    ``code`` says what kind of problem it is, for code that acts on it (lint, the CLI's
    summary line), so that nothing matches the wording of ``reason``: one of ``CODES``.
    """

    path: str
    reason: str
    skill_id: str = ""
    skipped: bool = False  # the skill was not loaded (else it loaded, maybe with a change)
    # a side file (sharp-edges.yaml, validations.yaml, collaboration.yaml) that could not be
    # read: the skill loaded without what it holds
    dropped: bool = False
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class LoadReport:
    """What loading one or more roots produced: the skills, and every problem met."""

    skills: tuple[Skill, ...]
    problems: tuple[LoadProblem, ...] = ()
    roots: tuple[str, ...] = field(default=())

    def by_id(self) -> dict[str, Skill]:
        return {s.id: s for s in self.skills}
