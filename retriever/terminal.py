"""Readable plain-text output for the terminal (the CLI's default, non-JSON output)."""

from __future__ import annotations

import shutil
import textwrap

from retriever.results import SearchResult
from retriever.skill import Skill


def _clip(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters (leading indent kept)."""
    indent = text[: len(text) - len(text.lstrip(" "))]
    text = indent + " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_result(result: SearchResult) -> str:
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    lines = [f"Skills for: {result.query}"]
    if result.no_match:
        lines.append("NO MATCH: no skill in this collection fits this query; the nearest "
                     "skills follow for reference only.")
    lines += [f"note: {n}" for n in result.notes]
    if not result.skills:
        lines.append("  (no skills)")
    for n, s in enumerate(result.skills, 1):
        lines.append("")
        lines.append(f"{n:>2}. {s.id}  {s.name}  score {s.score:.3f}  via {s.via}")
        lines.append("    " + _clip(s.description, width - 4))
        for m in s.matches:
            lines.append(_clip(f"    matched {m.field} ({m.via}, {m.score:.2f}): {m.text}", width))
        for p in s.patterns:
            label = "pattern" if p.kind == "pattern" else "anti-pattern"
            lines.append(_clip(f"    {label} ({p.score:.2f}): {p.name}", width))
    if result.handoffs:
        lines += ["", "Handoffs:"]
        for h in result.handoffs:
            missing = "" if h.resolved else "  [not in the collection]"
            lines.append(_clip(f"  {h.from_skill} -> {h.to_skill}{missing}: {h.reason}", width))
            if h.context:
                lines.append(_clip(f"      context: {h.context}", width))
    if result.patterns:
        lines += ["", "Best patterns across all skills:"]
        for p in result.patterns:
            lines.append(_clip(f"  {p.score:.2f}  {p.skill_id}: {p.name}", width))
    return "\n".join(lines)


def format_skill(skill: Skill) -> str:
    def para(title: str, text: str) -> list[str]:
        return [title, textwrap.indent(textwrap.fill(" ".join(text.split()), 96), "  ")] \
            if text else []

    lines = [f"{skill.name} ({skill.id})", f"  {skill.format}: {skill.path}", ""]
    lines += para("Description", skill.description)
    lines += para("Identity", skill.identity)
    if skill.triggers:
        lines += ["Triggers", "  " + ", ".join(skill.triggers)]
    if skill.owns or skill.tags:
        lines += ["Owns / tags", "  " + ", ".join(skill.owns + skill.tags)]
    if skill.patterns:
        lines.append("Patterns")
        for p in skill.patterns:
            lines.append(f"  - {p.name}: {_clip(p.description, 100)}")
            if p.when:
                lines.append(f"      when: {_clip(p.when, 100)}")
    if skill.anti_patterns:
        lines.append("Anti-patterns")
        for a in skill.anti_patterns:
            lines.append(f"  - {a.name}: {_clip(a.description, 100)}")
            if a.why:
                lines.append(f"      why: {_clip(a.why, 100)}")
            if a.instead:
                lines.append(f"      instead: {_clip(a.instead, 100)}")
    if skill.handoffs:
        lines.append("Handoffs")
        for h in skill.handoffs:
            lines.append(f"  - to {h.target} when {_clip(h.trigger, 90)}")
    if skill.body:
        lines += ["Body", textwrap.indent(skill.body, "  ")]
    return "\n".join(lines)
