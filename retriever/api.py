"""The Python API: ``SkillRetriever`` opens (building if needed) an index and searches it."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retriever.errors import (
    IndexError_,
    UnknownSkillError,
)
from retriever.index.documents import Document
from retriever.paths import PathArg, resolve_roots
from retriever.present.results import Handoff, SearchResult
from retriever.search.rank import ScoringConfig
from retriever.skill import LoadProblem, Skill

if TYPE_CHECKING:
    from retriever.index.cache import EmbeddingCache
    from retriever.index.embed import Embedder
    from retriever.index.manifest import Manifest
    from retriever.index.progress import BuildProgress
    from retriever.index.tables import SkillIndex
    from retriever.search.searcher import Searcher

log = logging.getLogger(__name__)


class SkillRetriever:
    """Ranked skills, patterns and handoffs for a task, over one or more skill collections.

    Open it with :meth:`open` (builds or refreshes the index as needed) and call
    :meth:`search`. Safe to share between threads.
    """

    def __init__(
        self, searcher: Searcher, index: SkillIndex, index_dir: Path, rebuilt_because: str | None
    ) -> None:
        self._searcher = searcher
        self._index = index
        self.index_dir = index_dir
        #: Why :meth:`open` (re)built the index, or ``None`` when it was up to date.
        self.rebuilt_because = rebuilt_because

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        skills: PathArg | Sequence[PathArg] | None = None,
        *,
        index_dir: PathArg | None = None,
        model: str | None = None,
        rebuild: str = "auto",
        config: ScoringConfig | None = None,
        embedder: Embedder | None = None,
        backend: str | None = None,
        precision: str | None = None,
        progress: bool | BuildProgress | None = None,
        verify: bool = False,
    ) -> SkillRetriever:
        """Open the index of ``skills`` (a root or several).

        Default roots: ``~/.spawner/skills`` and ``~/.claude/skills`` where they exist, else
        the bundled collection.

        ``rebuild``: ``"auto"`` builds when the index is missing, stale (another corpus or
        model) or damaged; ``"never"`` raises ``StaleIndexError``/``IndexError_`` instead;
        ``"always"`` rebuilds. ``model`` is a sentence-transformers name or path (default:
        the packaged all-MiniLM-L6-v2). ``backend``: ``"auto"`` (ONNX export when possible),
        ``"onnx"`` or ``"torch"`` (sentence-transformers); ``precision``: ``"int8"`` (the
        default, ``$SKILL_RETRIEVER_PRECISION``) or ``"fp32"``; see ``embed.make_embedder``.
        ``progress`` shows how far embedding is (default: when stderr is a terminal): a bar
        on a terminal, else a line every few seconds; or give a ``BuildProgress`` to read.

        Whether the skill files changed since the build is told from their metadata (size,
        mtime, ctime, inode; ``load.changes``), hashing only the files whose metadata
        changed. ``verify`` hashes every skill file instead: an edit that keeps a file's
        size and times is invisible to metadata.
        """
        from retriever.index.embed import make_embedder
        from retriever.index.opening import REBUILD_CHOICES, open_index
        from retriever.index.store import Prefetch
        from retriever.paths import index_folder

        if rebuild not in REBUILD_CHOICES:
            raise ValueError(f"rebuild must be one of {REBUILD_CHOICES}, not {rebuild!r}")
        if embedder is not None and (model, backend, precision) != (None, None, None):
            raise ValueError(
                "give either an embedder or a model/backend/precision to make one, not both: the "
                "embedder already decides the model and how it runs"
            )
        roots = resolve_roots(skills)
        embedder = embedder or make_embedder(model, backend, precision=precision)
        folder = index_folder(roots, embedder.model_id, index_dir)
        if folder.exists() and not folder.is_dir():
            raise IndexError_(
                f"index folder {folder} is a file, not a folder: pass --index a "
                "folder (it is created if missing)"
            )
        if progress is None:
            progress = sys.stderr.isatty()

        # The index's files are read and hashed on a thread of their own while this one
        # imports the native modules (a quarter of a second on one core): for a large index
        # that reading is most of the rest of opening it.
        prefetch = None if rebuild == "always" else Prefetch(folder)
        try:
            # Every module the query path needs is imported here, on this thread, before the
            # warm-up thread starts: two threads importing numpy at once (onnxruntime's
            # import in one, FAISS's in the other) can leave numpy half-initialised and kill
            # the process.
            _import_native_modules(embedder)
            # Loading the model's runtime overlaps with reading the index: both are mostly
            # native code that releases the GIL, and this machine has more than one core.
            warming = threading.Thread(target=embedder.warm, name="embedder-warm")
            warming.start()
            try:
                opened = open_index(
                    folder,
                    roots,
                    embedder,
                    rebuild=rebuild,
                    progress=progress,
                    verify=verify,
                    prefetch=prefetch,
                    cache=shared_cache_for(embedder),
                )
                retriever = cls.of_index(
                    opened.index, folder, embedder, config, opened.rebuilt_because
                )
            finally:
                # Joined on every path, errors included: a process that exits while this
                # thread is inside onnxruntime aborts ("terminate called without an active
                # exception").
                warming.join()
        finally:
            if prefetch is not None:
                prefetch.join()
        return retriever

    @classmethod
    def of_index(
        cls,
        index: SkillIndex,
        index_dir: Path,
        embedder: Embedder,
        config: ScoringConfig | None = None,
        rebuilt_because: str | None = None,
    ) -> SkillRetriever:
        """A retriever over an index already in memory (a live reload's new build)."""
        from retriever.search.searcher import Searcher

        return cls(
            Searcher(index, embedder, config or ScoringConfig()), index, index_dir, rebuilt_because
        )

    # -- using ------------------------------------------------------------------------------

    def warm(self) -> SkillRetriever:
        """This retriever after one query, so that the first real one is not the slow one
        (the model's first run, the skills read from the index); returns itself."""
        self.search("warm up")
        return self

    def search(self, query: str, k: int = 5) -> SearchResult:
        """The ``k`` best skills for ``query`` (plus any handoff targets), best first."""
        return self._searcher.search(query, k)

    def rank(self, query: str, k: int = 10) -> list[str]:
        """The ids of the ``k`` best skills for ``query``, best first: the ranking alone,
        without the handoff targets ``search`` adds after them. What evaluation measures."""
        return self._searcher.rank(query, k)

    def handoffs_for(self, query: str, sources: Sequence[str]) -> list[Handoff]:
        """The handoffs that the rules of ``sources`` (skill ids, at most the configured
        ``handoff_from``) call for on ``query``, as if they led the ranking: for authors
        checking their rules, and for measuring them."""
        return self._searcher.handoffs_for(query, list(sources))

    @property
    def skills(self) -> Sequence[Skill]:
        return self._index.skills

    @property
    def problems(self) -> tuple[LoadProblem, ...]:
        """What went wrong loading the collection when the index was built."""
        return self._index.problems

    @property
    def manifest(self) -> Manifest:
        """What the index says about itself (model, counts, roots, when it was built)."""
        return self._index.manifest

    @property
    def index(self) -> SkillIndex:
        """The opened index itself (documents, vectors, BM25, skills), for code that ranks
        or measures over it directly, such as the benchmarks."""
        return self._index

    @property
    def documents(self) -> Sequence[Document]:
        """The indexed texts, one per vector, in index order."""
        return self._index.documents

    @property
    def document_count(self) -> int:
        return len(self._index.documents)

    @property
    def config(self) -> ScoringConfig:
        """The ranking's numbers this retriever searches with."""
        return self._searcher.config

    @property
    def embedder(self) -> Embedder:
        """The embedding model the index was opened with (e.g. to count tokens)."""
        return self._searcher.embedder

    def skill(self, skill_id: str) -> Skill:
        """One skill by id; ``UnknownSkillError`` names close ids when there is no such skill."""
        found = self._searcher.skills.get(skill_id)
        if found is None:
            raise UnknownSkillError(unknown_skill_message(skill_id, self._searcher.skills))
        return found

    def render_markdown(
        self, result: SearchResult, max_chars: int | None = None, *, max_tokens: int | None = None
    ) -> str:
        """The result's skills and patterns as prompt-ready Markdown, best first, whole blocks.

        Give ``max_tokens`` to count the budget with the embedding model's tokenizer, or
        ``max_chars`` for characters (default: 6,000 characters). Empty for a no-match
        result, or when not even the first skill's heading and description fit.
        """
        from retriever.present.markdown import render_result

        listed = self._listed_skills(result)
        if max_tokens is not None:
            return render_result(
                result, listed, budget=max_tokens, measure=self._searcher.embedder.count_tokens
            )
        return render_result(result, listed, budget=6000 if max_chars is None else max_chars)

    def _listed_skills(self, result: SearchResult) -> dict[str, Skill]:
        """The skills ``result`` lists, by id (a loaded index reads a skill when asked)."""
        known = self._searcher.skills
        return {hit.id: known[hit.id] for hit in result.skills if hit.id in known}


def shared_cache_for(embedder: Embedder) -> EmbeddingCache | None:
    """The index home's embedding cache, for an embedder that can be cached."""
    from retriever.index.cache import limit_from_env, shared_cache

    if not embedder.cache_key or limit_from_env() == 0:  # $SKILL_RETRIEVER_CACHE_MB=0: off
        return None
    return shared_cache()


def _import_native_modules(embedder: Embedder) -> None:
    """Import, on the calling thread, the native modules that opening and searching use."""
    import numpy  # noqa: F401

    from retriever.index import lexical, vectors

    vectors.import_library()
    lexical.import_stemmer()
    embedder.import_modules()


def unknown_skill_message(skill_id: str, known: Mapping[str, Skill] | Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(skill_id, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    # shown escaped where it is not text (a lone surrogate from a bad byte): the message
    # must be writable to any UTF-8 stream, a JSON-RPC reply included
    shown = skill_id.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"unknown skill id '{shown}'{hint}"
