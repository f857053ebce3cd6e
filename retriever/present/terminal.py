"""Readable plain-text output for the terminal (the CLI's default, non-JSON output)."""

from __future__ import annotations

import re
import shutil

from retriever.index.documents import PATTERN, SHARP_EDGE
from retriever.present.results import (
    HANDOFF,
    LOW_CONFIDENCE_NOTE,
    NO_MATCH_NOTE,
    SearchResult,
    shown,
)
from retriever.skill import Skill

# Every C0/C1 control character but the newline: skill text is printed as data, and an
# escape sequence in a name or description (clear the screen, set the window title) must
# never reach the terminal as a command.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """``text`` without control characters (newlines kept), printable on any terminal."""
    text = _CONTROL.sub(" ", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates


def _clip(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters (leading indent kept)."""
    text = safe(text)
    indent = text[: len(text) - len(text.lstrip(" "))]
    text = indent + " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _skill_lines(n: str, s, width: int) -> list[str]:
    lines = [
        "",
        _clip(f"{n} {s.id}  {s.name}  score {shown(s.score, 3)}  via {s.via}", width),
        "    " + _clip(s.description, width - 4),
    ]
    for a in s.answers:  # the gotcha or check the query describes, and its fix, first
        what = "gotcha" if a.kind == SHARP_EDGE else "check"
        lines.append(_clip(f"    {what} ({shown(a.score)}): {a.summary}", width))
        if a.fix:
            lines.append(_clip(f"      fix: {a.fix}", width))
    answered = {a.field for a in s.answers}
    for m in s.matches:
        if m.field in answered:  # shown just above, with its fix
            continue
        lines.append(_clip(f"    matched {m.field} ({m.via}, {shown(m.score)}): {m.text}", width))
    for p in s.patterns:
        label = "pattern" if p.kind == "pattern" else "anti-pattern"
        lines.append(_clip(f"    {label} ({shown(p.score)}): {p.name}", width))
    return lines


def format_result(result: SearchResult) -> str:
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    lines = [_clip(f"Skills for: {result.query}", width)]
    for note in result.notes:
        # the no-match note says it all; it leads, once (and a low confidence says so)
        lead = (
            "NO MATCH: "
            if note.startswith(NO_MATCH_NOTE)
            else "POSSIBLY RELEVANT: "
            if note.startswith(LOW_CONFIDENCE_NOTE)
            else "note: "
        )
        lines.append(safe(lead + note))
    if result.answers:
        best = result.answers[0]
        # where it comes from before the summary: a long summary is cut, the source is not
        what = "Known problem" if best.kind == SHARP_EDGE else "Check"
        lines.append(_clip(f"{what} ({best.skill_id} {best.field}): {best.summary}", width))
        if best.fix:
            lines.append(_clip(f"  fix: {best.fix}", width))
    ranked = [s for s in result.skills if s.via != HANDOFF]
    joined = [s for s in result.skills if s.via == HANDOFF]
    if not result.skills:
        lines.append("  (no skills)")
    for n, s in enumerate(ranked, 1):
        lines += _skill_lines(f"{n:>2}.", s, width)
    if joined:
        # Not part of the ranking: a rule of a ranked skill sent them, and their score
        # derives from that skill's (see "Handoffs"), so they are listed apart.
        lines += ["", "Handed off to (by the rules below, not ranked):"]
        for s in joined:
            lines += _skill_lines("  -", s, width)
    if result.handoffs:
        lines += ["", "Handoffs:"]
        for h in result.handoffs:
            missing = "" if h.resolved else "  [not in the collection]"
            lines.append(_clip(f"  {h.from_skill} -> {h.to_skill}{missing}: {h.reason}", width))
            if h.context and h.context not in h.reason:  # a rule whose text is its context
                lines.append(_clip(f"      context: {h.context}", width))
    if result.patterns:
        lines += ["", "Best patterns across all skills:"]
        for p in result.patterns:
            avoid = "" if p.kind == PATTERN else "avoid: "  # an anti-pattern says so
            lines.append(_clip(f"  {shown(p.score)}  {p.skill_id}: {avoid}{p.name}", width))
    return "\n".join(lines)


def format_skill(skill: Skill) -> str:
    """One skill as readable text (``present.skill.skill_text``), control characters removed."""
    from retriever.present.skill import skill_text

    return safe(skill_text(skill))
