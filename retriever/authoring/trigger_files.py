"""Reading trigger evals: the files skill-creator has authors write, and a JSONL variant.

skill-creator ("Description Optimization", step 1, in anthropics/skills
``skills/skill-creator/SKILL.md``) has authors save about 20 queries per skill as a JSON
list of ``{"query": "...", "should_trigger": true|false}``; its ``scripts/run_eval.py``
reads exactly those two keys. It names no file; authors keep the list beside the skill, most
often as ``evals/trigger-evals.json`` (also ``evals/trigger_evals.json``) inside the skill's
folder, next to skill-creator's ``evals/evals.json`` (output-quality evals, another format).

Which skill a list is for is said, in this order, by an item's ``skill`` field, a wrapping
object's ``skill_name`` (``{"skill_name": ..., "evals": [...]}``, a shape some authors use),
or the skill folder the file sits in (or a ``<skill>-workspace`` folder, skill-creator's
workspace). A JSONL file (suffix ``.jsonl``) holds one ``{"query", "should_trigger",
"skill"}`` a line, for a whole collection in one file.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retriever.errors import QueryError

# The names a folder is searched for (``retrieve eval --triggers DIR``).
FILE_NAMES = (
    "trigger-evals.json",
    "trigger_evals.json",
    "trigger-evals.jsonl",
    "trigger_evals.jsonl",
)
WORKSPACE = "-workspace"  # skill-creator's <skill-name>-workspace/ beside the skill


@dataclass(frozen=True)
class TriggerCase:
    """One labelled query: should ``skill_id`` be picked for ``query``?"""

    skill_id: str
    query: str
    should_trigger: bool
    where: str  # file and item, for messages: "path[3]" or "path:3"
    file: str = ""


def find_trigger_files(path: str | Path) -> list[Path]:
    """``path`` itself when it is a file; else every file under it named as in
    ``FILE_NAMES``, in path order. ``QueryError`` when there is nothing to read."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise QueryError(f"trigger eval file or folder not found: {path}")
    found = sorted(p for p in path.rglob("*") if p.name in FILE_NAMES and p.is_file())
    if not found:
        raise QueryError(
            f"no trigger evals under {path}: looked for files named "
            + ", ".join(FILE_NAMES)
            + " (skill-creator's list of {query, should_trigger}, kept in <skill>/evals/)"
        )
    return found


def read_trigger_evals(
    path: str | Path, skill_folders: Mapping[Path, str], skill_ids: Iterable[str]
) -> list[TriggerCase]:
    """Every case in the trigger eval files at ``path`` (a file or a folder).

    ``skill_folders``: each skill's folder (resolved) and id, to tell which skill a list is
    for; ``skill_ids``: the collection's ids, against which every named skill is checked.
    ``QueryError`` names the file, the item and the value of the first bad entry.
    """
    ids = set(skill_ids)
    cases: list[TriggerCase] = []
    for file in find_trigger_files(path):
        cases += _read_file(file, skill_folders, ids)
    if not cases:
        raise QueryError(f"{path}: no trigger eval queries in it")
    return cases


def _read_file(file: Path, folders: Mapping[Path, str], ids: set[str]) -> list[TriggerCase]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise QueryError(f"cannot read trigger evals {file}: {e}") from e
    if file.suffix == ".jsonl":
        items: list[tuple[str, Any]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append((f"{file}:{n}", json.loads(line)))
                except ValueError as e:
                    raise QueryError(f"{file}:{n}: not valid JSON ({e})") from e
        default = _folder_skill(file, folders)
        return [_case(where, obj, default, ids, file) for where, obj in items]
    try:
        data = json.loads(text)
    except ValueError as e:
        raise QueryError(f"{file}: not valid JSON ({e})") from e
    named = None
    if isinstance(data, dict) and isinstance(data.get("evals"), list):
        named = data.get("skill_name")
        if not isinstance(named, (str, type(None))):
            raise QueryError(f"{file}: 'skill_name' must be a string, not {named!r}")
        data = data["evals"]
    if not isinstance(data, list):
        raise QueryError(
            f'{file}: expected a JSON list of {{"query", "should_trigger"}} objects '
            f"(skill-creator's trigger evals), found {type(data).__name__}"
        )
    default = named or _folder_skill(file, folders)
    return [_case(f"{file}[{i}]", obj, default, ids, file) for i, obj in enumerate(data)]


def _case(where: str, obj: Any, default: str | None, ids: set[str], file: Path) -> TriggerCase:
    if not isinstance(obj, dict):
        raise QueryError(f"{where}: expected an object, found {type(obj).__name__}")
    query, should = obj.get("query"), obj.get("should_trigger")
    if query is None and "prompt" in obj:
        raise QueryError(
            f"{where}: has 'prompt' and no 'query': this looks like skill-creator's "
            'output-quality evals.json; trigger evals are {"query", "should_trigger"}'
        )
    if not isinstance(query, str) or not query.strip():
        raise QueryError(f"{where}: 'query' must be a non-empty string, not {query!r}")
    if not isinstance(should, bool):
        raise QueryError(f"{where}: 'should_trigger' must be true or false, not {should!r}")
    skill = obj.get("skill", default)
    if skill is None:
        raise QueryError(
            f"{where}: cannot tell which skill this query is for: keep the file in the "
            f'skill\'s folder (<skill>/evals/{FILE_NAMES[0]}) or give it a "skill" field'
        )
    if not isinstance(skill, str) or skill not in ids:
        close = difflib.get_close_matches(str(skill), sorted(ids), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise QueryError(f"{where}: skill {skill!r} is not in the collection{hint}")
    return TriggerCase(skill, query.strip(), should, where, str(file))


def _folder_skill(file: Path, folders: Mapping[Path, str]) -> str | None:
    """The skill whose folder holds ``file`` (nearest first), or whose skill-creator
    workspace (``<id>-workspace``) does."""
    ids = set(folders.values())
    for folder in file.resolve().parents:
        if folder in folders:
            return folders[folder]
        if folder.name.endswith(WORKSPACE) and folder.name[: -len(WORKSPACE)] in ids:
            return folder.name[: -len(WORKSPACE)]
    return None


def skill_folders(skills: Iterable[Any]) -> dict[Path, str]:
    """Each skill's own folder (resolved) and id; a folder holding several skills (the
    spawner flat layout) names none of them."""
    seen: dict[Path, list[str]] = {}
    for s in skills:
        if s.path:
            seen.setdefault(Path(s.path).resolve().parent, []).append(s.id)
    return {folder: ids[0] for folder, ids in seen.items() if len(ids) == 1}
