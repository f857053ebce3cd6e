"""The compact search result an agent reads (the MCP ``search_skills`` tool), and the
schema of it that the tool declares as its ``outputSchema``.

The result's full JSON is ``SearchResult.to_dict`` (``search --json``, ``POST /search``);
this is the same result cut down for an agent's context: the best match of each skill,
short descriptions, three decimals.
"""

from __future__ import annotations

from typing import Any

from retriever.present.results import SearchResult


def compact_result(result: SearchResult) -> dict[str, Any]:
    """The search result in a compact form for an agent's context."""
    skills = []
    for s in result.skills:
        why = s.matches[0] if s.matches else None
        skills.append(
            {
                "id": s.id,
                "name": s.name,
                "score": round(s.score, 3),
                "via": s.via,
                "description": s.description[:300],
                "why": f"{why.field}: {why.text[:160]}" if why else "",
                "patterns": [
                    {"name": p.name, "kind": p.kind, "score": round(p.score, 3)} for p in s.patterns
                ],
            }
        )
    handoffs = [
        {"from": h.from_skill, "to": h.to_skill, "reason": h.reason, "resolved": h.resolved}
        for h in result.handoffs
    ]
    if result.no_match:
        # Said first, and the nearest skills kept apart from answers, so that an agent
        # cannot take them for guidance that fits.
        return {
            "query": result.query,
            "no_match": True,
            "confidence": result.confidence,
            "skills": [],
            "handoffs": [],
            "notes": list(result.notes),
            "nearest": [s["id"] for s in skills],
        }
    out: dict[str, Any] = {"query": result.query}
    if result.answers:  # the known problem the query describes, and its fix, first
        out["answers"] = [
            {
                "skill": a.skill_id,
                "kind": a.kind,
                "summary": a.summary,
                "fix": a.fix,
                "score": round(a.score, 3),
            }
            for a in result.answers
        ]
    out |= {"confidence": result.confidence, "skills": skills, "handoffs": handoffs}
    if result.notes:
        out["notes"] = list(result.notes)
    return out


def search_output_model() -> Any:
    """The pydantic model of search_skills' structured output, as its ``outputSchema``.

    Every object allows more fields than it lists (``additionalProperties``): results
    grow fields, and a client validating against the schema must keep working.
    """
    from pydantic import BaseModel, ConfigDict, Field

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    class PatternOut(Open):
        name: str
        kind: str = Field(description="pattern or anti_pattern")
        score: float

    class SkillOut(Open):
        id: str
        name: str
        score: float = Field(description="orders the ranking; not a probability")
        via: str = Field(description="semantic, keyword or handoff")
        description: str = ""
        why: str = Field("", description="the field and text that matched best")
        patterns: list[PatternOut] = []

    class HandoffOut(Open):
        from_: str = Field(alias="from")
        to: str
        reason: str = ""
        resolved: bool = True

    class SearchOutput(Open):
        query: str
        skills: list[SkillOut] = []
        handoffs: list[HandoffOut] = []
        notes: list[str] = []
        no_match: bool = Field(False, description="nothing in the collection fits")
        confidence: str = Field(
            "high",
            description="high, low (possibly relevant) or none (exactly when no_match)",
        )
        nearest: list[str] = Field(
            [], description="with no_match: the closest skill ids, not answers"
        )

    return SearchOutput
