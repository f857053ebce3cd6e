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
from retriever.present.results import LOW, POSSIBLY_RELEVANT, SearchResult
from retriever.present.skill import (
    anti_pattern_entry,
    check_entry,
    entry_markdown,
    pattern_entry,
    sharp_edge_entry,
)
from retriever.skill import Skill


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
    A low-confidence result is headed "Possibly relevant skills" and says why.

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

    if result.confidence == LOW:  # say so rather than stay silent or claim a fit
        add(f"# Possibly relevant skills for: {result.query}\n{POSSIBLY_RELEVANT}")
    else:
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
                entry_markdown(
                    sharp_edge_entry(skill.sharp_edges[a.item])
                    if a.kind == SHARP_EDGE
                    else check_entry(skill.checks[a.item])
                )
            )
        for ph in hit.patterns:
            add(
                entry_markdown(
                    pattern_entry(skill.patterns[ph.item])
                    if ph.kind == PATTERN
                    else anti_pattern_entry(skill.anti_patterns[ph.item])
                )
            )
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
