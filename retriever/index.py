"""The index in memory: what a build makes, what the store saves and loads, what a search
reads. One value type, so that the builder (``indexer``) and the folder (``store``) need
only it, never each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.documents import Document
from retriever.lexical import LexicalIndex
from retriever.skill import LoadProblem, Skill
from retriever.vectors import VectorIndex

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class SkillIndex:
    """A collection's documents, their vectors, the handoff rule vectors, BM25, the skills
    and their load problems, and the manifest that describes them."""

    manifest: dict[str, Any]
    vectors: VectorIndex  # one row per document, in document order
    documents: tuple[Document, ...]
    skills: tuple[Skill, ...]
    rule_vectors: np.ndarray  # one row per handoff rule (``handoffs.compile_rules`` order)
    lexical: LexicalIndex  # one row per skill, in skill order
    problems: tuple[LoadProblem, ...] = ()
    path: Path | None = None  # the version folder it was saved to or read from
