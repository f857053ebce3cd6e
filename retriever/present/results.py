"""What a search returns: typed, frozen, and explaining itself.

``SearchResult.to_dict()`` is the JSON contract of ``retrieve search --json`` (see README).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SEMANTIC = "semantic"
KEYWORD = "keyword"
HANDOFF = "handoff"
# How the note that explains a no-match result begins (the terminal leads with it).
NO_MATCH_NOTE = "no skill in the collection fits this query"
# A result's confidence (``search.rank.confidence_of``): "none" is exactly a no match.
HIGH, LOW, NONE = "high", "low", "none"
CONFIDENCES = (HIGH, LOW, NONE)
# How the note of a low-confidence result begins (the terminal leads with it).
LOW_CONFIDENCE_NOTE = "low confidence: these skills are possibly relevant"
# What a low-confidence Markdown rendering says under its heading.
POSSIBLY_RELEVANT = (
    "Low confidence: nothing in the collection clearly fits; use these only where they apply."
)
# Scores are kept to this many decimals, as JSON shows them; thresholds are compared with
# the kept value, so that no output shows a score on the other side of a decision.
SCORE_DECIMALS = 4


def kept(score: float) -> float:
    """``score`` as results keep and show it."""
    return round(score, SCORE_DECIMALS)


def shown(score: float, decimals: int = 2) -> str:
    """A kept score for people, cut (not rounded) to ``decimals``: 0.4199 reads "0.41",
    under a 0.42 threshold it is under, never "0.42"."""
    import math

    step = 10**decimals
    return f"{math.floor(kept(score) * step + 1e-9) / step:.{decimals}f}"


@dataclass(frozen=True)
class Match:
    """One reason a skill is in the results: the field and text that matched, and how well."""

    field: str  # e.g. "card", "triggers[2]", "patterns[0]"
    kind: str  # document kind ("card", "trigger", "pattern", ...) or "handoff"
    text: str
    score: float
    via: str  # "semantic", "keyword" or "handoff"


@dataclass(frozen=True)
class PatternHit:
    """A pattern or anti-pattern of a skill that fits the query."""

    skill_id: str
    kind: str  # "pattern" or "anti_pattern"
    name: str
    text: str
    score: float
    field: str  # "patterns[i]" / "anti_patterns[i]", for people
    item: int = 0  # i: its position in the skill's patterns or anti-patterns

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``field`` says the place; ``item`` is for code, not JSON)."""
        return {
            "skill_id": self.skill_id,
            "kind": self.kind,
            "name": self.name,
            "text": self.text,
            "score": round(self.score, SCORE_DECIMALS),
            "field": self.field,
        }


@dataclass(frozen=True)
class Answer:
    """A known problem of a skill that the query matched: a sharp edge (a gotcha) or a
    validation check, and what to do about it."""

    skill_id: str
    kind: str  # "sharp_edge" or "validation"
    field: str  # "sharp_edges[i]" / "validations[i]"
    summary: str  # the gotcha's summary, or what the check flags
    fix: str  # the first lines of the solution or of the check's fix
    score: float  # the cosine of its document with the query
    item: int = 0  # i: its place in the skill's sharp edges or checks

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            "kind": self.kind,
            "field": self.field,
            "summary": self.summary,
            "fix": self.fix,
            "score": round(self.score, SCORE_DECIMALS),
        }


@dataclass(frozen=True)
class Handoff:
    """A handoff rule of a result skill that fired for the query."""

    from_skill: str
    to_skill: str
    reason: str
    context: str
    score: float
    resolved: bool  # False: the target is not in the collection

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_skill,
            "to": self.to_skill,
            "reason": self.reason,
            "context": self.context,
            "score": round(self.score, 4),
            "resolved": self.resolved,
        }


@dataclass(frozen=True)
class SkillHit:
    """One ranked skill with the evidence for it and its best patterns."""

    id: str
    name: str
    score: float
    via: str
    description: str
    collection: str
    matches: tuple[Match, ...]
    patterns: tuple[PatternHit, ...]
    answers: tuple[Answer, ...] = ()  # its sharp edges and checks among the matches

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "score": round(self.score, 4),
            "via": self.via,
            "description": self.description,
            "collection": self.collection,
            "matches": [_rounded(asdict(m)) for m in self.matches],
            "answers": [a.to_dict() for a in self.answers],
            "patterns": [p.to_dict() for p in self.patterns],
        }


@dataclass(frozen=True)
class SearchResult:
    """Ranked skills, the best patterns across all skills, and the handoffs that fired."""

    query: str
    skills: tuple[SkillHit, ...]
    patterns: tuple[PatternHit, ...]
    handoffs: tuple[Handoff, ...]
    weak: bool  # the best semantic score was under the weak threshold
    no_match: bool = False  # nothing in the collection fits; ``skills`` are only the nearest
    notes: tuple[str, ...] = ()
    truncated: bool = False  # the query was longer than the model reads, or was cut
    answers: tuple[Answer, ...] = ()  # the listed skills' matched problems, best first
    # "high", "low" (possibly relevant) or "none" (exactly when ``no_match``)
    confidence: str = HIGH

    def __post_init__(self) -> None:
        if self.confidence not in CONFIDENCES:
            raise ValueError(
                f"confidence is one of {', '.join(CONFIDENCES)}, not {self.confidence!r}"
            )
        # no_match is exactly confidence "none": a result made with only one of them says
        # both
        if self.no_match:
            object.__setattr__(self, "confidence", NONE)
        elif self.confidence == NONE:
            object.__setattr__(self, "no_match", True)

    @property
    def skill_ids(self) -> list[str]:
        return [s.id for s in self.skills]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "skills": [s.to_dict() for s in self.skills],
            "answers": [a.to_dict() for a in self.answers],
            "patterns": [p.to_dict() for p in self.patterns],
            "handoffs": [h.to_dict() for h in self.handoffs],
            "weak": self.weak,
            "no_match": self.no_match,
            "confidence": self.confidence,
            "truncated": self.truncated,
            "notes": list(self.notes),
        }


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}
