"""The index in memory: what a build makes, what the store saves and loads, what a search
reads. One value type, so that the builder (``indexer``) and the folder (``store``) need
only it, never each other.

A loaded index keeps its documents and skills as tables (``DocumentTable``, ``SkillTable``)
that make a ``Document`` or a ``Skill`` only when one is asked for: a query reads a few dozen
of the tens of thousands an index holds, and making them all took longer than the rest of
opening it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from retriever.index.documents import Document
from retriever.index.lexical import LexicalIndex
from retriever.index.manifest import Manifest
from retriever.index.vectors import VectorIndex
from retriever.skill import LoadProblem, Skill

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class SkillIndex:
    """A collection's documents, their vectors, the handoff rule vectors, BM25, the skills
    and their load problems, and the manifest that describes them."""

    manifest: Manifest
    vectors: VectorIndex  # one row per document, in document order
    documents: Sequence[Document]  # a tuple when built, a DocumentTable when loaded
    skills: Sequence[Skill]  # a tuple when built, a SkillTable when loaded
    rule_vectors: np.ndarray  # one row per handoff rule (``handoffs.compile_rules`` order)
    lexical: LexicalIndex  # one row per skill, in skill order
    problems: tuple[LoadProblem, ...] = ()
    path: Path | None = None  # the version folder it was saved to or read from


def _utf8_column(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """``texts`` as one UTF-8 byte string and the offset where each one ends."""
    import numpy as np

    encoded = [t.encode("utf-8") for t in texts]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    return b"".join(encoded), ends


class DocumentTable(Sequence[Document]):
    """An index's documents as columns: per document its skill (a number into
    ``skill_ids``), its kind (a number into ``kinds``), its item (-1: none) and its field
    and text (UTF-8, ending at ``field_ends`` / ``text_ends``). The columns are what
    ranking needs of every document; a ``Document`` is made when first asked for."""

    def __init__(
        self,
        skill_ids: Sequence[str],
        kinds: Sequence[str],
        columns: dict[str, np.ndarray],
        fields: bytes | memoryview,
        texts: bytes | memoryview,
    ) -> None:
        self.skill_ids = tuple(skill_ids)
        self.kinds = tuple(kinds)
        self.skill = columns["skill"]
        self.kind = columns["kind"]
        self.item = columns["item"]
        self.field_ends = columns["field_ends"]
        self.text_ends = columns["text_ends"]
        # memory views: a loaded table's are slices of the file's bytes, not copies
        self.fields = memoryview(fields)
        self.texts = memoryview(texts)
        self._made: list[Document | None] = [None] * len(self.skill)

    @classmethod
    def of(cls, documents: Sequence[Document], skill_ids: Sequence[str]) -> DocumentTable:
        """The table of ``documents`` (each of a skill in ``skill_ids``)."""
        import numpy as np

        number = {sid: i for i, sid in enumerate(skill_ids)}
        kinds = list(dict.fromkeys(d.kind for d in documents))
        kind_number = {k: i for i, k in enumerate(kinds)}
        fields, field_ends = _utf8_column([d.field for d in documents])
        texts, text_ends = _utf8_column([d.text for d in documents])
        columns: dict[str, np.ndarray] = {
            "skill": np.array([number[d.skill_id] for d in documents], dtype=np.int32),
            "kind": np.array([kind_number[d.kind] for d in documents], dtype=np.uint8),
            "item": np.array([-1 if d.item is None else d.item for d in documents], np.int32),
            "field_ends": field_ends,
            "text_ends": text_ends,
        }
        table = cls(skill_ids, kinds, columns, fields, texts)
        table._made = list(documents)
        return table

    def check(self) -> str | None:
        """What is inconsistent in the columns (a writer's bug), or ``None``."""
        n = len(self.skill)
        if any(len(c) != n for c in (self.kind, self.item, self.field_ends, self.text_ends)):
            return "document columns of different lengths"
        if n and not (0 <= self.skill.min() and self.skill.max() < len(self.skill_ids)):
            return "a document of a skill the index does not hold"
        if n and self.kind.max() >= len(self.kinds):
            return "a document of an unknown kind"
        for ends, blob in ((self.field_ends, self.fields), (self.text_ends, self.texts)):
            if (int(ends[-1]) if n else 0) != len(blob) or (n and ends.min() < 0):
                return "document texts out of step with their offsets"
        return None

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, row: int) -> Document: ...

    @overload
    def __getitem__(self, row: slice) -> Sequence[Document]: ...

    def __getitem__(self, row: int | slice) -> Document | Sequence[Document]:
        if isinstance(row, slice):
            return tuple(self[i] for i in range(*row.indices(len(self))))
        made = self._made[row]  # IndexError for a row out of range, as a tuple's
        if made is None:
            made = self._made[row] = self._make(row % len(self))
        return made

    def _make(self, row: int) -> Document:
        # two threads may make the same document at once: equal values, either one is kept
        item = int(self.item[row])
        return Document(
            skill_id=self.skill_ids[int(self.skill[row])],
            kind=self.kinds[int(self.kind[row])],
            field=_cut(self.fields, self.field_ends, row),
            text=_cut(self.texts, self.text_ends, row),
            item=None if item < 0 else item,
        )

    def __iter__(self) -> Iterator[Document]:
        return (self[i] for i in range(len(self)))


def _cut(blob: memoryview, ends: np.ndarray, row: int) -> str:
    start = int(ends[row - 1]) if row else 0
    return str(blob[start : int(ends[row])], "utf-8")


def keys_to_json(skills: Sequence[Skill]) -> dict[str, list[Any]]:
    """What a query needs of every skill up front, as stored: its id and triggers (the
    trigger matcher is made of them) and how many handoff rules it has (where its rows of
    the rule vectors are). In flat lists: one small list per skill took longer to parse."""
    return {
        "ids": [s.id for s in skills],
        "trigger_counts": [len(s.triggers) for s in skills],
        "triggers": [t for s in skills for t in s.triggers],
        "rule_counts": [len(s.handoffs) for s in skills],
    }


def keys_from_json(data: dict[str, list[Any]]) -> tuple[list[Skill], list[int]]:
    """The skills ``keys_to_json`` kept, each holding only its id and triggers, and how
    many handoff rules each has."""
    ids, counts, triggers = data["ids"], data["trigger_counts"], data["triggers"]
    if len(counts) != len(ids) or sum(counts) != len(triggers):
        raise ValueError("skill keys out of step")
    keys, start = [], 0
    for sid, n in zip(ids, counts, strict=True):
        keys.append(
            Skill(id=sid, name="", description="", triggers=tuple(triggers[start : start + n]))
        )
        start += n
    return keys, [int(n) for n in data["rule_counts"]]


class SkillTable(Sequence[Skill]):
    """An index's skills in index order. ``keys`` holds what a query needs of every skill
    (``keys_to_json``) and ``rule_counts`` how many handoff rules each has; a whole skill is
    read from its stored JSON when first asked for."""

    def __init__(
        self,
        keys: Sequence[Skill],
        read: Callable[[int], Skill] | None = None,
        rule_counts: Sequence[int] | None = None,
    ) -> None:
        self.keys = tuple(keys)
        self.ids = tuple(k.id for k in self.keys)
        counts = [len(k.handoffs) for k in self.keys] if rule_counts is None else rule_counts
        self.rule_counts = tuple(counts)
        self.position = {sid: i for i, sid in enumerate(self.ids)}
        self._read = read
        # built in memory: the keys are the skills themselves
        self._made: list[Skill | None] = list(self.keys) if read is None else [None] * len(keys)
        self.by_id: Mapping[str, Skill] = _SkillsById(self)

    @classmethod
    def of(cls, skills: Sequence[Skill]) -> SkillTable:
        """The table of skills already made (an index built in memory)."""
        return skills if isinstance(skills, SkillTable) else cls(skills)

    @classmethod
    def stored(
        cls, keys: Sequence[Skill], rule_counts: Sequence[int], blocks: bytes, ends: Sequence[int]
    ) -> SkillTable:
        """The table of skills stored each as a zlib-compressed JSON object in ``blocks``,
        skill ``i`` ending at ``ends[i]``; ``keys`` and ``rule_counts`` as
        ``keys_from_json`` reads them."""

        def read(i: int) -> Skill:
            start = ends[i - 1] if i else 0
            return Skill.from_dict(json.loads(zlib.decompress(blocks[start : ends[i]])))

        return cls(keys, read, rule_counts)

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, i: int) -> Skill: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Skill]: ...

    def __getitem__(self, i: int | slice) -> Skill | Sequence[Skill]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        made = self._made[i]
        if made is None:
            assert self._read is not None
            # two threads may read the same skill at once: equal values, either one is kept
            made = self._made[i] = self._read(i % len(self))
        return made

    def __iter__(self) -> Iterator[Skill]:
        return (self[i] for i in range(len(self)))


class _SkillsById(Mapping[str, Skill]):
    """A ``SkillTable`` by skill id; asking whether an id is there reads no skill."""

    def __init__(self, table: SkillTable) -> None:
        self._table = table

    def __getitem__(self, sid: str) -> Skill:
        return self._table[self._table.position[sid]]

    def __contains__(self, sid: object) -> bool:
        return sid in self._table.position

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.ids)

    def __len__(self) -> int:
        return len(self._table.ids)
