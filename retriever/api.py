"""The Python API: ``SkillRetriever`` opens (building if needed) an index and searches it."""

from __future__ import annotations

import logging
import shlex
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import (
    IndexError_,
    IndexWriteError,
    SkillLoadError,
    StaleIndexError,
    UnknownSkillError,
)
from retriever.index.documents import Document
from retriever.paths import PathArg, resolve_roots
from retriever.present.results import Handoff, SearchResult
from retriever.search.rank import ScoringConfig
from retriever.skill import LoadProblem, Skill

if TYPE_CHECKING:
    from retriever.index.embed import Embedder
    from retriever.index.store import IndexStatus
    from retriever.index.tables import SkillIndex
    from retriever.search.searcher import Searcher

log = logging.getLogger(__name__)

REBUILD_CHOICES = ("auto", "never", "always")


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
        progress: bool | None = None,
        verify: bool = False,
    ) -> SkillRetriever:
        """Open the index of ``skills`` (a root or several).

        Default roots: ``~/.spawner/skills`` and ``~/.claude/skills`` where they exist, else
        the bundled collection.

        ``rebuild``: ``"auto"`` builds when the index is missing, stale (another corpus or
        model) or damaged; ``"never"`` raises ``StaleIndexError``/``IndexError_`` instead;
        ``"always"`` rebuilds. ``model`` is a sentence-transformers name or path (default:
        the packaged all-MiniLM-L6-v2). ``backend``: ``"auto"`` (ONNX export when possible),
        ``"onnx"`` or ``"torch"`` (sentence-transformers); see ``embed.make_embedder``.
        ``progress`` shows a bar while embedding (default: when stderr is a terminal).

        Whether the skill files changed since the build is told from their metadata (size,
        mtime, ctime, inode; ``load.changes``), hashing only the files whose metadata
        changed. ``verify`` hashes every skill file instead: an edit that keeps a file's
        size and times is invisible to metadata.
        """
        from retriever.index.embed import make_embedder
        from retriever.index.store import Prefetch
        from retriever.paths import default_index_dir

        if rebuild not in REBUILD_CHOICES:
            raise ValueError(f"rebuild must be one of {REBUILD_CHOICES}, not {rebuild!r}")
        roots = resolve_roots(skills)
        embedder = embedder or make_embedder(model, backend)
        folder = (
            Path(index_dir).expanduser()
            if index_dir
            else default_index_dir(roots, embedder.model_id)
        )
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
                index, reason = cls._open_or_build(
                    folder, roots, embedder, rebuild, progress, verify, prefetch
                )
                from retriever.search.searcher import Searcher

                searcher = Searcher(index, embedder, config or ScoringConfig())
            finally:
                # Joined on every path, errors included: a process that exits while this
                # thread is inside onnxruntime aborts ("terminate called without an active
                # exception").
                warming.join()
        finally:
            if prefetch is not None:
                prefetch.join()
        return cls(searcher, index, folder, reason)

    @classmethod
    def _open_or_build(
        cls, folder, roots, embedder, rebuild, progress, verify, prefetch=None
    ) -> tuple[SkillIndex, str | None]:
        """The index in ``folder``, built first when ``rebuild`` and its state call for it;
        and why it was built (``None``: it was up to date)."""
        from retriever.index.store import build_lock, index_status, load_index
        from retriever.load.changes import Scan, fingerprint_now, scan_corpus

        scans: list[Scan] = []

        def scanned(record: Any) -> Scan:
            """The roots walked and fingerprinted (once per open), hashing only the files
            whose metadata differs from ``record``'s (a manifest's record of its corpus)."""
            if not scans:
                scans.append(scan_corpus(roots, record, verify=verify))
            return scans[0]

        def status() -> IndexStatus:
            # no walk and no hashing when the manifest's record vouches for every file
            return index_status(
                folder,
                embedder.model_id,
                lambda manifest: fingerprint_now(manifest, roots, verify=verify, scan=scanned),
            )

        current = None if rebuild == "always" else status()
        reason = "rebuild asked for" if current is None else current.stale_because
        if reason is None:
            try:
                return load_index(folder, current, prefetch), None
            except IndexError_ as e:
                reason = str(e)
        if rebuild == "never":
            command = shlex.join(
                ["retrieve", "index", *(a for r in roots for a in ("--skills", str(r)))]
                + ["--index", str(folder)]
            )
            raise StaleIndexError(
                f"index {folder} cannot be used: {reason}. Build it with `{command}`"
                " (or allow rebuilding)"
            )
        try:
            with build_lock(folder):
                if rebuild != "always" and (current := status()).fresh:
                    try:  # another process built it while we waited for the lock
                        return load_index(folder, current, prefetch), None
                    except IndexError_:
                        pass
                log.info("building index %s (%s)", folder, reason)
                scan = scanned(_corpus_record(folder))
                return cls._build(folder, roots, scan, embedder, progress), reason
        except IndexWriteError as e:
            raise StaleIndexError(
                f"index {folder} needs a rebuild ({reason}) but cannot be rebuilt there: {e}. "
                "Rebuild it where the folder is writable (`retrieve index --skills ... --index "
                f"{folder}`), or pass --index a writable folder"
            ) from e

    @staticmethod
    def _build(folder, roots, scan, embedder, progress) -> SkillIndex:
        from retriever import __version__
        from retriever.index.build import build_index
        from retriever.index.store import load_index, remove_leftovers, save_index
        from retriever.load.collection import load_sources

        remove_leftovers(folder)
        report = load_sources(scan.sources, tuple(str(r) for r in roots))
        if scan.unreadable:
            report = replace(report, problems=scan.unreadable + report.problems)
        if not report.skills:
            where = ", ".join(str(r) for r in roots)
            problems = "; ".join(str(p) for p in report.problems[:3])
            raise SkillLoadError(
                f"no skills found under {where}"
                + (f" ({problems})" if problems else "")
                + ": expected <dir>/skill.yaml, <dir>/<id>.yaml or <dir>/SKILL.md"
            )
        try:  # the index being replaced, as a cache of vectors already computed
            previous = load_index(folder)
        except IndexError_:
            previous = None
        _announce_build(report.skills, previous, embedder.model_id)
        built = build_index(
            report,
            embedder,
            fingerprint=scan.fingerprint,
            package_version=__version__,
            progress=progress,
            previous=previous,
        )
        # the record of the files it was built from: the next open checks their metadata
        built = replace(built, manifest={**built.manifest, "corpus": scan.record})
        return save_index(folder, built)  # used as built: nothing is read back

    # -- using ------------------------------------------------------------------------------

    def warm(self) -> SkillRetriever:
        """This retriever after one query, so that the first real one is not the slow one
        (the model's first run, the skills read from the index); returns itself."""
        self.search("warm up")
        return self

    def search(self, query: str, k: int = 5) -> SearchResult:
        """The ``k`` best skills for ``query`` (plus any handoff targets), best first."""
        return self._searcher.search(query, k)

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
    def manifest(self) -> dict[str, Any]:
        return dict(self._index.manifest)

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


# Texts embedded per second on one core, measured on this project's machine (252 texts/s on
# 2 cores); good enough to tell seconds from minutes.
_TEXTS_PER_CORE_S = 125


def _announce_build(skills, previous, model_id: str) -> None:
    """Say up front how big the build is: a first build of a large collection takes
    minutes, and a user (or a CI log, where stderr is no terminal) should know why."""
    import os

    from retriever.index.documents import collection_documents

    texts = {d.text for d in collection_documents(skills)}
    if previous is not None and previous.manifest.get("model") == model_id:
        texts -= {d.text for d in previous.documents}  # reused, not embedded again
    seconds = len(texts) / (_TEXTS_PER_CORE_S * min(4, os.cpu_count() or 1))
    if seconds < 20:
        estimate = "a few seconds" if seconds < 10 else "under half a minute"
    elif seconds < 90:
        estimate = "about a minute"
    else:
        estimate = f"about {round(seconds / 60)} minutes"
    log.info(
        "%s skills, %s %s to embed: %s on %d cores%s",
        f"{len(skills):,}",
        f"{len(texts):,}",
        "text" if len(texts) == 1 else "texts",
        estimate,
        os.cpu_count() or 1,
        " (later builds embed only the texts that changed)" if previous is None else "",
    )


def _corpus_record(folder: Path) -> Any:
    """The record of the skill files the current index in ``folder`` was built from (its
    hashes are reused for the files whose metadata is unchanged), or ``None``."""
    from retriever.index.store import read_manifest

    try:
        return (read_manifest(folder) or {}).get("corpus")
    except IndexError_:
        return None


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
