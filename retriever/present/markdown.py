"""Step 7 of the flow: results as prompt-ready Markdown, within a size budget.

Blocks are added whole, best skill first: a skill's header and description, then the known
problems (sharp edges, checks) the query matched with their fixes, then its best patterns and
anti-patterns one by one, then the handoffs. A block that does not fit is left
out, never cut in half. The budget is counted by a ``measure`` function: characters, or the
embedding model's tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from retriever.index.documents import PATTERN, SHARP_EDGE
from retriever.present.results import SearchResult
from retriever.skill import AntiPattern, Check, Pattern, SharpEdge, Skill


def _pattern_block(p: Pattern) -> str:
    lines = [f"- **{p.name}**" + (f": {p.description}" if p.description else "")]
    if p.when:
        lines.append(f"  - When: {p.when}")
    return "\n".join(lines)


def _anti_block(a: AntiPattern) -> str:
    lines = [f"- **Avoid: {a.name}**" + (f": {a.description}" if a.description else "")]
    if a.why:
        lines.append(f"  - Why: {a.why}")
    if a.instead:
        lines.append(f"  - Instead: {a.instead}")
    return "\n".join(lines)


def _sharp_edge_block(e: SharpEdge) -> str:
    lines = [f"- **Known problem: {e.summary}**"]
    if e.situation:
        lines.append(f"  - When: {e.situation}")
    if e.why:
        lines.append(f"  - Why: {e.why}")
    if e.solution:
        lines.append(f"  - Fix: {e.solution}")
    return "\n".join(lines)


def _check_block(c: Check) -> str:
    lines = [f"- **Check: {c.message or c.name}**"]
    if c.fix:
        lines.append(f"  - Fix: {c.fix}")
    return "\n".join(lines)


def render_result(
    result: SearchResult,
    skills: dict[str, Skill],
    *,
    budget: int,
    measure: Callable[[str], int] = len,
) -> str:
    """Markdown for ``result`` whose ``measure`` (default: characters) is at most ``budget``;
    empty when the result is ``no_match``, or when not even the first skill's heading and
    description fit (a title alone, or handoffs without their skills, would say nothing).

    Each block is measured with the blank line that joins it, so the parts add up to at
    least the whole for characters and for word-piece tokens alike.
    """
    if result.no_match:  # nothing fits: no context beats misleading context
        return ""
    out: list[str] = []
    used = 0

    def add(block: str) -> bool:
        nonlocal used
        cost = measure(block + "\n\n")
        if used + cost > budget:
            return False
        out.append(block)
        used += cost
        return True

    add(f"# Skills for: {result.query}")
    shown: set[str] = set()
    for hit in result.skills:
        skill = skills.get(hit.id)
        if skill is None:
            continue
        header = f"## {skill.name} (`{skill.id}`)\n{skill.description}".rstrip()
        if not add(header):
            break
        shown.add(skill.id)
        for a in hit.answers:  # what the query describes comes first
            add(
                _sharp_edge_block(skill.sharp_edges[a.item])
                if a.kind == SHARP_EDGE
                else _check_block(skill.checks[a.item])
            )
        for ph in hit.patterns:
            block = (
                _pattern_block(skill.patterns[ph.item])
                if ph.kind == PATTERN
                else _anti_block(skill.anti_patterns[ph.item])
            )
            add(block)
    if not shown:
        return ""
    handoffs = [h for h in result.handoffs if h.from_skill in shown]  # of skills shown
    if handoffs:
        lines = ["## Handoffs"] + [
            f"- {h.from_skill} -> {h.to_skill}"
            + (f": {h.context}" if h.context else "")
            + ("" if h.resolved else " (not in this collection)")
            for h in handoffs
        ]
        for n in range(len(lines), 1, -1):  # as many whole lines as fit
            if add("\n".join(lines[:n])):
                break
    return "\n\n".join(out)


SKILL_SECTIONS = (
    "description",
    "identity",
    "triggers",
    "patterns",
    "anti_patterns",
    "sharp_edges",
    "validations",
    "handoffs",
    "body",
)


def render_skill(skill: Skill, sections: tuple[str, ...] | list[str] | None = None) -> str:
    """One skill as prompt-ready Markdown: all sections, or only those named.

    Skill text is reproduced as data under headings of its own; nothing in it is interpreted.
    """
    wanted = tuple(sections) if sections else SKILL_SECTIONS
    unknown = [s for s in wanted if s not in SKILL_SECTIONS]
    if unknown:
        raise ValueError(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SKILL_SECTIONS)}"
        )
    parts = [f"# {skill.name} (`{skill.id}`)"]
    if "description" in wanted and skill.description:
        parts.append(skill.description)
    if "identity" in wanted and skill.identity:
        parts.append("## Identity\n" + skill.identity)
    if "triggers" in wanted and skill.triggers:
        parts.append("## Triggers\n" + ", ".join(skill.triggers))
    if "patterns" in wanted and skill.patterns:
        blocks = []
        for p in skill.patterns:
            block = _pattern_block(p)
            if p.example:
                block += (
                    "\n\n  ```\n"
                    + "\n".join("  " + ln for ln in p.example.splitlines())
                    + "\n  ```"
                )
            blocks.append(block)
        parts.append("## Patterns\n" + "\n".join(blocks))
    if "anti_patterns" in wanted and skill.anti_patterns:
        parts.append("## Anti-patterns\n" + "\n".join(_anti_block(a) for a in skill.anti_patterns))
    if "sharp_edges" in wanted and skill.sharp_edges:
        parts.append(
            "## Sharp edges\n" + "\n".join(_sharp_edge_block(e) for e in skill.sharp_edges)
        )
    if "validations" in wanted and skill.checks:
        parts.append("## Checks\n" + "\n".join(_check_block(c) for c in skill.checks))
    if "handoffs" in wanted and skill.handoffs:
        parts.append(
            "## Handoffs\n"
            + "\n".join(
                f"- to `{h.target}` when: {h.trigger}" + (f" ({h.context})" if h.context else "")
                for h in skill.handoffs
            )
        )
    if "body" in wanted and skill.body:
        parts.append(skill.body)
    return "\n\n".join(parts)
