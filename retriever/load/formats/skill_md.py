"""The Agent Skills format: ``<dir>/SKILL.md``, YAML front matter (``name``, ``description``)
and a Markdown body. The folder name is the id."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retriever.load.files import FileProblem, parse_yaml, read_text
from retriever.load.formats.base import SkillFormat
from retriever.load.ids import folder_id
from retriever.load.shapes import first_paragraph, humanize, strings_of, text_of
from retriever.load.source import SkillSource
from retriever.skill import LoadProblem, Skill

SKILL_MD = "skill-md"
SKILL_MD_FILE = "SKILL.md"

# Front matter: a first line of exactly '---', YAML, then a line of exactly '---'.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """``(front matter YAML or None, Markdown body)``."""
    text = text.lstrip("\ufeff")
    m = _FRONT_MATTER.match(text)
    if not m:
        return None, text
    return m.group(1), text[m.end() :]


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
        format=SKILL_MD,
        path=path,
        collection=collection,
    )


class SkillMdFormat(SkillFormat):
    name = SKILL_MD

    def find(self, folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
        if SKILL_MD_FILE not in names:
            return [], False
        return [SkillSource(self.name, folder / SKILL_MD_FILE, root, folder.name)], True

    def parse(self, source: SkillSource, problems: list[LoadProblem]) -> Skill:
        path = str(source.path)
        front, body = split_front_matter(read_text(source.path))
        warnings: list[str] = []
        meta: Any = {} if front is None else parse_yaml(front, "front matter", warnings)
        problems.extend(LoadProblem(path, w) for w in warnings)
        if front is None:
            problems.append(
                LoadProblem(
                    path, "no YAML front matter (--- name/description ---)", code="no_front_matter"
                )
            )
        if not isinstance(meta, dict):
            raise FileProblem(f"front matter should be a map, found {type(meta).__name__}")
        # The folder name is the id: the Agent Skills format asks for name == folder name, and
        # real collections break that (two folders, one name), while folder names are unique.
        return skill_from_skill_md(
            meta, body, skill_id=folder_id(source, problems), path=path, collection=str(source.root)
        )
