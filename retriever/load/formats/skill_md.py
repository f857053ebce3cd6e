"""Turn an Agent Skills ``SKILL.md`` file (YAML front matter + Markdown body) into a ``Skill``."""

from __future__ import annotations

import re
from typing import Any

from retriever.load.shapes import first_paragraph, humanize, strings_of, text_of
from retriever.skill import Skill

# Front matter: a first line of exactly '---', YAML, then a line of exactly '---'.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """``(front matter YAML or None, Markdown body)``."""
    text = text.lstrip("\ufeff")
    m = _FRONT_MATTER.match(text)
    if not m:
        return None, text
    return m.group(1), text[m.end():]


def skill_from_skill_md(
    meta: dict[str, Any], body: str, *, skill_id: str, path: str, collection: str
) -> Skill:
    """Build a ``Skill`` from parsed front matter and the Markdown body."""
    description = text_of(meta.get("description")) or first_paragraph(body)
    return Skill(
        id=skill_id,
        name=text_of(meta.get("name")) or humanize(skill_id),
        description=description,
        triggers=strings_of(meta.get("triggers")),
        tags=strings_of(meta.get("tags")),
        body=body.strip(),
        format="skill-md",
        path=path,
        collection=collection,
    )
