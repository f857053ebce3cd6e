"""Every document a SKILL.md variant may index, made once: the library's documents with the
"When to Use" kind, and the benchmark's alternatives to today's body sections.

Kinds beyond the library's (each variant of ``benchmarks.skillmd`` picks some):

- ``section`` with ``item`` = the section's place in the body, every section (the library
  indexes the first ``MAX_SECTIONS``; their texts are the library's);
- ``section_cont``: the text of a long section after its first ``SECTION_CHARS``, in windows
  of the same size (at most two), each headed by the section's heading;
- ``use_when_s``: each ``use_when`` text with a leading "Use when" / "When" left out;
- ``card_core``: the card with the description's "Use when" clause left out;
- ``headings``: the skill's name and its section headings, the collection's most common
  headings ("Overview", "Limitations", ...) left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from retriever.authoring.questions import strip_lead
from retriever.index import documents as D
from retriever.index.documents import Document
from retriever.skill import Skill

SECTION_CONT = "section_cont"
USE_WHEN_S = "use_when_s"
CARD_CORE = "card_core"
HEADINGS = "headings"
CONT_WINDOWS = 2
# a heading in more than this share of the collection's skills says nothing of any of them
COMMON_HEADING_SHARE = 0.01


def library_documents(skills: Sequence[Skill]) -> list[Document]:
    """The library's documents with ``use_when`` indexed, whatever ``INDEXED_KINDS`` says."""
    saved = D.INDEXED_KINDS
    D.INDEXED_KINDS = tuple(dict.fromkeys((*saved, D.USE_WHEN)))
    try:
        return D.collection_documents(skills)
    finally:
        D.INDEXED_KINDS = saved


def all_sections(skill: Skill) -> list[tuple[str, str]]:
    return [(h, " ".join(" ".join(lines).split())) for h, lines in D._section_lines(skill.body)]


def superset_documents(skills: Sequence[Skill]) -> list[Document]:
    base = library_documents(skills)
    heading_count: Counter[str] = Counter()
    sections = {s.id: all_sections(s) for s in skills}
    for secs in sections.values():
        heading_count.update({h.lower() for h, _ in secs if h})
    common = {h for h, n in heading_count.items() if n > COMMON_HEADING_SHARE * len(skills)}
    out: list[Document] = [d for d in base if d.kind != D.SECTION]
    for s in skills:
        sid = s.id
        for i, (heading, text) in enumerate(sections[sid]):
            whole = D._join(f"{heading}:" if heading else "", text)
            field = f"body#{heading}" if heading else "body"
            out.append(Document(sid, D.SECTION, field, whole[: D.SECTION_CHARS], i))
            for w in range(1, CONT_WINDOWS + 1):
                rest = whole[w * D.SECTION_CHARS : (w + 1) * D.SECTION_CHARS]
                if len(rest.split()) >= 5:
                    head = f"{heading}: " if heading else ""
                    out.append(Document(sid, SECTION_CONT, f"{field}~{w}", head + rest, i))
        clause = D.use_when_clause(s.description)
        core = s.description[: len(s.description) - len(clause)].strip() if clause else None
        card = D.card_text(s) if core is None else D.card_text(_with_description(s, core))
        out.append(Document(sid, CARD_CORE, "card", card))
        heads = [h for h, _ in sections[sid] if h and h.lower() not in common]
        if heads:
            out.append(Document(sid, HEADINGS, "headings", f"{s.name}: " + "; ".join(heads)[:700]))
    for d in base:
        if d.kind == D.USE_WHEN:
            out.append(Document(d.skill_id, USE_WHEN_S, d.field, strip_lead(d.text), d.item))
    return out


def _with_description(skill: Skill, description: str) -> Skill:
    from dataclasses import replace

    return replace(skill, description=description)
