"""Skill ids: taken from a file's ``id`` when usable, else from the folder name; never a
path, never holding a control character."""

from __future__ import annotations

from typing import Any

from retriever.load.source import SkillSource
from retriever.skill import LoadProblem

MAX_ID_CHARS = 200


def usable_id(value: str) -> bool:
    return (
        0 < len(value) <= MAX_ID_CHARS
        and "/" not in value
        and "\\" not in value
        and all(c.isprintable() for c in value)
    )


def folder_id(source: SkillSource, problems: list[LoadProblem]) -> str:
    """The folder (or flat file) name as an id; control characters in it are replaced (and
    reported), so an id never carries a terminal escape, a newline or a tab."""
    name = source.fallback_id
    if usable_id(name):
        return name
    usable = "".join(c if c.isprintable() and c not in "/\\" else "-" for c in name)
    usable = usable[:MAX_ID_CHARS].strip() or "skill"
    problems.append(
        LoadProblem(
            str(source.path),
            f"the folder name {name!r} is not a usable id (control characters, or over "
            f"{MAX_ID_CHARS} characters); using {usable!r}",
            code="bad_id",
        )
    )
    return usable


def skill_id(data: dict[str, Any], source: SkillSource, problems: list[LoadProblem]) -> str:
    for key in ("id", "skill_id"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str) and usable_id(value.strip()):
            return value.strip()
        shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
        problems.append(
            LoadProblem(
                str(source.path),
                f"field '{key}' should be a one-line name without slashes or control characters "
                f"(at most {MAX_ID_CHARS}), found {shown}; using the folder name",
                code="bad_id",
            )
        )
        break
    return folder_id(source, problems)
