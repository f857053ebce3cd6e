"""Reading skill files safely: size and type checks, UTF-8, the safe YAML loader with limits.

Every failure is a ``FileProblem`` whose message is the reason the load report gives.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from retriever.skill import LoadProblem

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
                    self.duplicate_keys.append(f"'{key}' (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class FileProblem(Exception):
    """A file that cannot be used; the message is the reason for the load report."""


def read_text(path: Path) -> str:
    """The file's text, or ``FileProblem`` saying why it cannot be used.

    Opened without blocking and checked to be a regular file before anything is read: a
    FIFO put in a skill file's place would otherwise wait forever for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise FileProblem(f"cannot read file: {e.strerror or e}") from e
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileProblem("not a regular file; not read")
            if st.st_size > MAX_FILE_BYTES:
                raise FileProblem(
                    f"file is {st.st_size:,} bytes, over the "
                    f"{MAX_FILE_BYTES:,}-byte limit for a skill file"
                )
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise FileProblem(f"cannot read file: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileProblem(f"not valid UTF-8 (byte {e.start})") from e


def _check_expansion(data: Any, what: str) -> None:
    """``FileProblem`` when ``data`` expands to more than ``MAX_VALUES`` values (or loops)."""
    stack, count = [data], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise FileProblem(
                f"YAML in {what} expands to more than {MAX_VALUES:,} values "
                "(aliases of aliases, or an alias that contains itself)"
            )
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
            warnings.append(
                f"duplicate key(s) {', '.join(loader.duplicate_keys[:5])} in {what};"
                " the last value is used"
            )
        return data
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FileProblem(f"invalid YAML in {what}{where}: {problem}") from e
    except RecursionError as e:
        raise FileProblem(f"YAML in {what} is nested too deeply") from e
    finally:
        loader.dispose()


def load_map(path: Path, problems: list[LoadProblem], what: str = "file") -> dict[str, Any]:
    warnings: list[str] = []
    data = parse_yaml(read_text(path), what, warnings)
    problems.extend(LoadProblem(str(path), w) for w in warnings)
    if not isinstance(data, dict):
        found = "nothing" if data is None else type(data).__name__
        raise FileProblem(f"expected a map of fields at the top level, found {found}")
    return data
