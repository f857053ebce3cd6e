"""Step 7 of the flow: results as prompt-ready Markdown, within a size budget.

Blocks are added whole, best skill first: a skill's header and description, then its best
patterns and anti-patterns one by one, then the handoffs. A block that does not fit is left
out, never cut in half.
"""

from __future__ import annotations

from retriever.results import SearchResult
from retriever.skill import AntiPattern, Pattern, Skill


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


def render_result(result: SearchResult, skills: dict[str, Skill], *, max_chars: int) -> str:
    """Markdown for ``result``; at most ``max_chars`` characters."""
    out: list[str] = []
    used = 0

    def add(block: str) -> bool:
        nonlocal used
        cost = len(block) + 2  # the blank line joining blocks
        if used + cost > max_chars:
            return False
        out.append(block)
        used += cost
        return True

    add(f"# Skills for: {result.query}")
    for hit in result.skills:
        skill = skills.get(hit.id)
        if skill is None:
            continue
        header = f"## {skill.name} (`{skill.id}`)\n{skill.description}".rstrip()
        if not add(header):
            break
        for ph in hit.patterns:
            i = int(ph.field[ph.field.index("[") + 1:-1])
            block = (_pattern_block(skill.patterns[i]) if ph.kind == "pattern"
                     else _anti_block(skill.anti_patterns[i]))
            add(block)
    if result.handoffs:
        lines = ["## Handoffs"] + [
            f"- {h.from_skill} -> {h.to_skill}" + (f": {h.context}" if h.context else "")
            + ("" if h.resolved else " (not in this collection)")
            for h in result.handoffs
        ]
        for n in range(len(lines), 1, -1):  # as many whole lines as fit
            if add("\n".join(lines[:n])):
                break
    return "\n\n".join(out)
