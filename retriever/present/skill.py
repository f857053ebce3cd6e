"""One skill, as its renderings share it: the sections it holds, each entry with its parts.

Every rendering of a skill or of a piece of one comes from here: the Markdown for a prompt
(``skill_markdown``, the blocks ``search --markdown`` adds for a matched pattern or
gotcha: ``entry_markdown``) and the plain text ``retrieve show`` prints (``skill_text``).
So the two cannot drift apart: what one shows of a pattern, the other shows too.

An entry has ``details`` (in every rendering: when, why, instead, the fix) and ``extra``
(what identifies rather than guides: a check's name and severity, a gotcha's symptoms and
severity, a rule's priority and origin). The Markdown for a prompt leaves ``extra`` out and
the sections that only describe the skill (owns/tags, where work comes from, its files);
``retrieve show`` prints everything ``show --json`` holds.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from retriever.skill import AntiPattern, Check, HandoffRule, Pattern, Receives, SharpEdge, Skill


@dataclass(frozen=True)
class Entry:
    """One item of a section: a pattern, an anti-pattern, a gotcha, a check, a handoff."""

    title: str  # in bold in Markdown
    text: str = ""  # after the title
    details: tuple[tuple[str, str], ...] = ()  # (label, text), shown everywhere
    extra: tuple[tuple[str, str], ...] = ()  # (label, text), shown by `retrieve show` only
    code: str = ""  # an example


@dataclass(frozen=True)
class Section:
    """A part of a skill: a paragraph, a list of words, or entries."""

    key: str  # the name ``sections=`` selects (get_skill, GET /skills/ID)
    title: str
    text: str = ""
    words: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()
    for_prompt: bool = True  # False: describes the skill, guides nothing (show only)


# The sections a prompt can ask for (get_skill, GET /skills/ID?sections=), in their order.
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


def _pairs(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((label, text) for label, text in pairs if text)


def pattern_entry(p: Pattern) -> Entry:
    return Entry(p.name, p.description, _pairs(("When", p.when)), code=p.example)


def anti_pattern_entry(a: AntiPattern) -> Entry:
    return Entry(f"Avoid: {a.name}", a.description, _pairs(("Why", a.why), ("Instead", a.instead)))


def sharp_edge_entry(e: SharpEdge) -> Entry:
    return Entry(
        f"Known problem: {e.summary}",
        details=_pairs(("When", e.situation), ("Why", e.why), ("Fix", e.solution)),
        extra=_pairs(("Symptoms", "; ".join(e.symptoms)), ("Severity", e.severity)),
    )


def check_entry(c: Check) -> Entry:
    return Entry(
        f"Check: {c.message or c.name}",
        details=_pairs(("Fix", c.fix)),
        extra=_pairs(("Name", c.name if c.message else ""), ("Severity", c.severity)),
    )


def handoff_entry(h: HandoffRule) -> Entry:
    return Entry(
        f"to `{h.target}`",
        # a rule whose context is its own text says it once
        f"when: {h.trigger}" + (f" ({h.context})" if h.context and h.context != h.trigger else ""),
        extra=_pairs(("Priority", h.priority), ("Written at", h.origin)),
    )


def receives_entry(r: Receives) -> Entry:
    return Entry(f"from `{r.from_skill}`" if r.from_skill else "from another skill", r.context)


def skill_sections(skill: Skill) -> list[Section]:
    """Every part of ``skill`` that has something, in the one order all renderings use."""
    parts = [
        Section("description", "Description", text=skill.description),
        Section("identity", "Identity", text=skill.identity),
        Section("triggers", "Triggers", words=skill.triggers),
        Section("owns", "Owns / tags", words=skill.owns + skill.tags, for_prompt=False),
        Section("patterns", "Patterns", entries=tuple(map(pattern_entry, skill.patterns))),
        Section(
            "anti_patterns",
            "Anti-patterns",
            entries=tuple(map(anti_pattern_entry, skill.anti_patterns)),
        ),
        Section(
            "sharp_edges", "Sharp edges", entries=tuple(map(sharp_edge_entry, skill.sharp_edges))
        ),
        Section("validations", "Checks", entries=tuple(map(check_entry, skill.checks))),
        Section("handoffs", "Handoffs", entries=tuple(map(handoff_entry, skill.handoffs))),
        Section(
            "receives",
            "Receives work",
            entries=tuple(map(receives_entry, skill.receives)),
            for_prompt=False,
        ),
        Section("body", "Body", text=skill.body),
    ]
    return [s for s in parts if s.text or s.words or s.entries]


# -- Markdown, for a prompt ------------------------------------------------------------------


def entry_markdown(entry: Entry, *, with_code: bool = False) -> str:
    """An entry as a Markdown list item: the title in bold, then its details."""
    lines = [f"- **{entry.title}**" + (f": {entry.text}" if entry.text else "")]
    lines += [f"  - {label}: {text}" for label, text in entry.details]
    block = "\n".join(lines)
    if with_code and entry.code:
        code = "\n".join("  " + ln for ln in entry.code.splitlines())
        block += f"\n\n  ```\n{code}\n  ```"
    return block


def _handoff_markdown(entry: Entry) -> str:
    # a handoff reads as a sentence ("to `x` when: ..."), not as a bold title
    return f"- {entry.title} {entry.text}"


def skill_markdown(skill: Skill, sections: tuple[str, ...] | list[str] | None = None) -> str:
    """One skill as prompt-ready Markdown: all its prompt sections, or only those named
    (``ValueError`` for a name not in ``SKILL_SECTIONS``).

    Skill text is reproduced as data under headings of its own; nothing in it is interpreted.
    """
    wanted = tuple(sections) if sections else SKILL_SECTIONS
    unknown = [s for s in wanted if s not in SKILL_SECTIONS]
    if unknown:
        raise ValueError(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SKILL_SECTIONS)}"
        )
    parts = [f"# {skill.name} (`{skill.id}`)"]
    for s in skill_sections(skill):
        if not s.for_prompt or s.key not in wanted:
            continue
        if s.key in ("description", "body"):  # under the skill's own heading
            parts.append(s.text)
        elif s.text:
            parts.append(f"## {s.title}\n{s.text}")
        elif s.words:
            parts.append(f"## {s.title}\n" + ", ".join(s.words))
        elif s.key == "handoffs":
            parts.append(f"## {s.title}\n" + "\n".join(map(_handoff_markdown, s.entries)))
        else:
            items = [entry_markdown(e, with_code=True) for e in s.entries]
            parts.append(f"## {s.title}\n" + "\n".join(items))
    return "\n\n".join(parts)


# -- plain text, for a person ----------------------------------------------------------------


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def skill_text(skill: Skill) -> str:
    """Every part of ``skill`` as readable text (what ``retrieve show`` prints; control
    characters are removed by the caller). Long lines are cut for the terminal; ``show
    --json`` has every text whole."""
    lines = [f"{skill.name} ({skill.id})", f"  {skill.format}: {skill.path}"]
    if skill.collection:
        lines.append(f"  collection: {skill.collection}")
    lines.append("")
    for s in skill_sections(skill):
        lines.append(s.title)
        if s.key == "body":
            lines.append(textwrap.indent(s.text, "  "))
        elif s.text:
            lines.append(textwrap.indent(textwrap.fill(" ".join(s.text.split()), 96), "  "))
        elif s.words:
            lines.append("  " + ", ".join(s.words))
        for e in s.entries:
            lines.append(
                f"  - {_clip(e.title, 100)}" + (f": {_clip(e.text, 100)}" if e.text else "")
            )
            for label, text in e.details + e.extra:
                lines.append(f"      {label.lower()}: {_clip(text, 100)}")
            if e.code:
                lines.append("      example:")
                lines.append(textwrap.indent(e.code.rstrip("\n"), "        "))
    return "\n".join(lines)
