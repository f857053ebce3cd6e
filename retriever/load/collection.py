"""Load whole collections: parse every discovered skill, report problems, keep the rest.

One broken file never takes the load down: every problem (unreadable or unparseable file,
wrong type, duplicate id, handoff to a skill the collection does not have) becomes a
``LoadProblem`` naming the file and the reason, and the other skills still load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from retriever.handoffs import long_phrases
from retriever.keywords import MAX_PHRASE_WORDS, too_long, words
from retriever.load.discover import SkillSource, discover, display_path
from retriever.load.skillmd import skill_from_skill_md, split_front_matter
from retriever.load.spawner import skill_from_spawner
from retriever.skill import LoadProblem, LoadReport, Skill

log = logging.getLogger(__name__)

# Skill files are hand-written text; anything this large is a mistake (or an attack), and is
# refused before it is read into memory.
MAX_FILE_BYTES = 4 * 1024 * 1024
# An upper bound on the values a skill file may expand to. YAML aliases share one object
# between many places; a file built as an "alias bomb" (aliases of aliases) stays small on
# disk and in memory but would expand to billions of values in any walk over it.
MAX_VALUES = 200_000
# libyaml's loader is ~10x faster; both are the *safe* loaders (no arbitrary objects).
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, noting keys written twice in one map (YAML keeps the last silently)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[str] = []

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is not None and key in seen:
                    self.duplicate_keys.append(
                        f"'{key}' (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _FileProblem(Exception):
    """A file that cannot be used; the message is the reason for the load report."""


def read_text(path: Path) -> str:
    """The file's text, or ``_FileProblem`` saying why it cannot be used.

    Opened without blocking and checked to be a regular file before anything is read: a
    FIFO put in a skill file's place would otherwise wait forever for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _FileProblem(f"cannot read file: {e.strerror or e}") from e
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _FileProblem("not a regular file; not read")
            if st.st_size > MAX_FILE_BYTES:
                raise _FileProblem(f"file is {st.st_size:,} bytes, over the "
                                   f"{MAX_FILE_BYTES:,}-byte limit for a skill file")
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise _FileProblem(f"cannot read file: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _FileProblem(f"not valid UTF-8 (byte {e.start})") from e


def _check_expansion(data: Any, what: str) -> None:
    """``_FileProblem`` when ``data`` expands to more than ``MAX_VALUES`` values (or loops)."""
    stack, count = [data], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise _FileProblem(f"YAML in {what} expands to more than {MAX_VALUES:,} values "
                               "(aliases of aliases, or an alias that contains itself)")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_yaml(text: str, what: str = "file", warnings: list[str] | None = None) -> Any:
    """Parse with the safe loader; duplicate keys go to ``warnings``."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
        _check_expansion(data, what)
        if warnings is not None and loader.duplicate_keys:
            warnings.append(f"duplicate key(s) {', '.join(loader.duplicate_keys[:5])} in {what};"
                            " the last value is used")
        return data
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise _FileProblem(f"invalid YAML in {what}{where}: {problem}") from e
    except RecursionError as e:
        raise _FileProblem(f"YAML in {what} is nested too deeply") from e
    finally:
        loader.dispose()


def _load_map(path: Path, problems: list[LoadProblem], what: str = "file") -> dict[str, Any]:
    warnings: list[str] = []
    data = parse_yaml(read_text(path), what, warnings)
    problems.extend(LoadProblem(str(path), w) for w in warnings)
    if not isinstance(data, dict):
        found = "nothing" if data is None else type(data).__name__
        raise _FileProblem(f"expected a map of fields at the top level, found {found}")
    return data


MAX_ID_CHARS = 200


def _usable_id(value: str) -> bool:
    return (0 < len(value) <= MAX_ID_CHARS and "/" not in value and "\\" not in value
            and all(c.isprintable() for c in value))


def _folder_id(source: SkillSource, problems: list[LoadProblem]) -> str:
    """The folder (or flat file) name as an id; control characters in it are replaced (and
    reported), so an id never carries a terminal escape, a newline or a tab."""
    name = source.folder_name
    if _usable_id(name):
        return name
    usable = "".join(c if c.isprintable() and c not in "/\\" else "-" for c in name)
    usable = usable[:MAX_ID_CHARS].strip() or "skill"
    problems.append(LoadProblem(
        str(source.path),
        f"the folder name {name!r} is not a usable id (control characters, or over "
        f"{MAX_ID_CHARS} characters); using {usable!r}",
    ))
    return usable


def _skill_id(data: dict[str, Any], source: SkillSource, problems: list[LoadProblem]) -> str:
    for key in ("id", "skill_id"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str) and _usable_id(value.strip()):
            return value.strip()
        shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
        problems.append(LoadProblem(
            str(source.path),
            f"field '{key}' should be a one-line name without slashes or control characters "
            f"(at most {MAX_ID_CHARS}), found {shown}; using the folder name",
        ))
        break
    return _folder_id(source, problems)


def _load_one(source: SkillSource, problems: list[LoadProblem]) -> Skill:
    """Parse one skill; raises ``_FileProblem`` when its main file is unusable."""
    if source.problem:
        raise _FileProblem(source.problem)
    problems.extend(LoadProblem(p, reason) for p, reason in source.notes)
    path, collection = str(source.path), str(source.root)
    if source.format == "skill-md":
        front, body = split_front_matter(read_text(source.path))
        warnings: list[str] = []
        meta: Any = {} if front is None else parse_yaml(front, "front matter", warnings)
        problems.extend(LoadProblem(path, w) for w in warnings)
        if front is None:
            problems.append(LoadProblem(path, "no YAML front matter (--- name/description ---)"))
        if not isinstance(meta, dict):
            raise _FileProblem(f"front matter should be a map, found {type(meta).__name__}")
        # The folder name is the id: the Agent Skills format asks for name == folder name, and
        # real collections break that (two folders, one name), while folder names are unique.
        return skill_from_skill_md(
            meta, body, skill_id=_folder_id(source, problems), path=path, collection=collection
        )

    data = _load_map(source.path, problems)
    collaboration = None
    if source.collaboration is not None:
        try:
            collaboration = _load_map(source.collaboration, problems)
        except _FileProblem as e:  # the skill itself is still usable
            problems.append(LoadProblem(str(source.collaboration), str(e)))
    return skill_from_spawner(
        data,
        collaboration,
        skill_id=_skill_id(data, source, problems),
        fmt=source.format,
        path=path,
        collection=collection,
        file_name=source.path.name,
        collaboration_name=source.collaboration.name if source.collaboration else "",
    )


def load_sources(sources: list[SkillSource], roots: tuple[str, ...] = ()) -> LoadReport:
    """Parse ``sources`` (as found by ``discover``) into a report of skills and problems."""
    problems: list[LoadProblem] = []
    skills: dict[str, Skill] = {}
    for source in sources:
        try:
            skill = _load_one(source, problems)
        except _FileProblem as e:
            problems.append(LoadProblem(display_path(source.path), str(e), skipped=True))
            continue
        except Exception as e:  # noqa: BLE001 - one odd file must never stop the load
            log.debug("unexpected error loading %s", source.path, exc_info=True)
            problems.append(LoadProblem(display_path(source.path), f"cannot load skill: {e!r}",
                                        skipped=True))
            continue
        kept = skills.get(skill.id)
        if kept is not None:
            problems.append(LoadProblem(
                skill.path,
                f"duplicate skill id '{skill.id}': the one from {kept.path} is kept, this one is "
                "skipped (first root and first path win)",
                skill.id,
                skipped=True,
            ))
            continue
        skills[skill.id] = skill

    for skill in skills.values():
        problems.extend(_phrase_problems(skill))
        for rule in skill.handoffs:
            if rule.target not in skills:
                problems.append(LoadProblem(
                    skill.path,
                    f"handoff to '{rule.target}', which is not in the collection "
                    f"({rule.origin}); it will be reported as unresolved",
                    skill.id,
                ))
    return LoadReport(skills=tuple(skills.values()), problems=tuple(problems), roots=roots)


def _phrase_problems(skill: Skill) -> list[LoadProblem]:
    """Triggers and rule phrases too long to be matched as keywords (still embedded)."""
    out = []
    for i, trigger in enumerate(skill.triggers):
        if too_long(trigger):
            out.append(LoadProblem(
                skill.path, f"triggers[{i}] has {len(words(trigger)):,} words; keyword "
                f"matching reads triggers of at most {MAX_PHRASE_WORDS} words, so this one "
                "counts only semantically", skill.id))
    for rule in skill.handoffs:
        for phrase in long_phrases(rule.trigger):
            out.append(LoadProblem(
                skill.path, f"a phrase of the handoff rule to '{rule.target}' ({rule.origin}) "
                f"has {len(words(phrase)):,} words; rule phrases of more than "
                f"{MAX_PHRASE_WORDS} words are not matched", skill.id))
    return out


def load_collection(roots: list[Path] | tuple[Path, ...]) -> LoadReport:
    """Discover and load every skill under ``roots`` (in order: the first root wins a duplicate).

    Raises ``SkillLoadError`` only when a root itself is missing or not a folder.
    """
    sources = discover(roots)
    report = load_sources(sources, tuple(str(Path(r).expanduser().resolve()) for r in roots))
    empty = [r for r in report.roots if not any(s.root == Path(r) for s in sources)]
    if empty:
        report = LoadReport(
            skills=report.skills,
            problems=report.problems + tuple(
                LoadProblem(r, "no skills found here (expected <dir>/skill.yaml, "
                               "<dir>/<id>.yaml or <dir>/SKILL.md)")
                for r in empty
            ),
            roots=report.roots,
        )
    return report


def corpus_fingerprint(sources: list[SkillSource]) -> str:
    """A hash of every indexed file's path and content, and of the roots they were found in.

    Sharp edges and validations are not indexed, so editing them does not make an index stale.
    """
    h = hashlib.sha256()
    for source in sources:
        h.update(str(source.root).encode(errors="surrogateescape") + b"\0")
        h.update(f"{source.path}|{source.problem}".encode(errors="surrogateescape") + b"\0")
        for path in source.files():
            h.update(str(path.relative_to(source.root)).encode(errors="surrogateescape")
                     + b"\0")
            try:
                h.update(hashlib.sha256(path.read_bytes()).digest())
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()
