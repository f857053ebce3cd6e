"""An index ready to search: opened when it is up to date, built first when it is not.

Two ways in, one way through:

- ``open_index``: what ``SkillRetriever.open`` does. The index folder's manifest says
  whether it was built from these skill files (their metadata first, hashes only where it
  moved: ``load.changes``) by this model with this document recipe; if so it is loaded,
  else (when allowed) the roots are scanned once, parsed once and built.
- ``build``: what a live reload does (``serve.live``), which has scanned and parsed
  already and holds the index it replaces: nothing is walked, parsed or read again.

Either way a build makes the documents once, reuses the vectors of the index being
replaced and of the shared embedding cache (``index.cache``), embeds the rest, and saves
the new version atomically (``store.save_index``); the index comes back as built, never
read back from disk.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import IndexError_, IndexWriteError, StaleIndexError, no_skills

if TYPE_CHECKING:
    from retriever.index.cache import EmbeddingCache
    from retriever.index.embed import Embedder
    from retriever.index.manifest import Manifest
    from retriever.index.progress import BuildProgress
    from retriever.index.store import IndexStatus, Prefetch
    from retriever.index.tables import SkillIndex
    from retriever.load.changes import Scan
    from retriever.skill import LoadReport

log = logging.getLogger(__name__)

REBUILD_CHOICES = ("auto", "never", "always")


@dataclass(frozen=True)
class Opened:
    """An index ready to search, and why it was (re)built (``None``: it was up to date)."""

    index: SkillIndex
    rebuilt_because: str | None


def open_index(
    folder: Path,
    roots: list[Path],
    embedder: Embedder,
    *,
    rebuild: str = "auto",
    progress: BuildProgress | bool = False,
    verify: bool = False,
    prefetch: Prefetch | None = None,
    cache: EmbeddingCache | None = None,
) -> Opened:
    """The index in ``folder`` for ``roots`` and ``embedder``, built first when ``rebuild``
    and its state call for it (``"never"``: ``StaleIndexError`` instead)."""
    from retriever.index.store import build_lock, load_index
    from retriever.load.changes import scan_corpus

    if rebuild not in REBUILD_CHOICES:
        raise ValueError(f"rebuild must be one of {REBUILD_CHOICES}, not {rebuild!r}")
    scans: list[Scan] = []

    def scanned(record: Any) -> Scan:
        """The roots walked and fingerprinted (once per open), hashing only the files whose
        metadata differs from ``record``'s (a manifest's record of its corpus)."""
        if not scans:
            scans.append(scan_corpus(roots, record, verify=verify))
        return scans[0]

    def status() -> IndexStatus:
        return index_state(folder, roots, embedder, verify=verify, scan=scanned)

    current = None if rebuild == "always" else status()
    reason = "rebuild asked for" if current is None else current.stale_because
    if reason is None:
        try:
            return Opened(load_index(folder, current, prefetch), None)
        except IndexError_ as e:
            reason = str(e)
    if rebuild == "never":
        command = shlex.join(
            ["retrieve", "index", *(a for r in roots for a in ("--skills", str(r)))]
            + ["--index", str(folder)]
        )
        why = f"index {folder} cannot be used: {reason}"
        raise StaleIndexError(
            f"{why}. Build it with `{command}` (or allow rebuilding)", why=why, folder=folder
        )
    try:
        with build_lock(folder):
            if rebuild != "always" and (current := status()).fresh:
                try:  # another process built it while we waited for the lock
                    return Opened(load_index(folder, current, prefetch), None)
                except IndexError_:
                    pass
            log.info("building index %s (%s)", folder, reason)
            scan = scanned(_corpus_record(folder))
            report = load_report(scan, roots)
            built = build(folder, scan, report, embedder, progress=progress, cache=cache)
            return Opened(built, reason)
    except IndexWriteError as e:
        why = f"index {folder} needs a rebuild ({reason}) but cannot be rebuilt there: {e}"
        raise StaleIndexError(
            f"{why}. Rebuild it where the folder is writable (`retrieve index --skills ... "
            f"--index {folder}`), or pass --index a writable folder",
            why=why,
            folder=folder,
        ) from e


def index_state(
    folder: Path,
    roots: list[Path],
    embedder: Embedder,
    *,
    verify: bool = False,
    scan: Callable[[Any], Scan] | None = None,
) -> IndexStatus:
    """Whether the index in ``folder`` can be opened as it is for ``roots`` and
    ``embedder`` (model, its vectors' variant, document recipe, skill files), and if not
    why: the check ``open_index`` makes first, and servers make before deciding to build on a
    thread. No walk and no hashing when the manifest's record vouches for every file;
    ``scan``: where a walk, if needed, comes from (``open_index`` keeps it for the build)."""
    from retriever.index.store import index_status
    from retriever.load.changes import fingerprint_now

    return index_status(
        folder,
        embedder.model_id,
        lambda m: fingerprint_now(m.corpus_fingerprint, m.corpus, roots, verify=verify, scan=scan),
        lambda: embedder.variant,  # only asked when the model matches (it may export)
    )


def load_report(scan: Scan, roots: list[Path]) -> LoadReport:
    """The skills ``scan`` found, parsed, with every problem: folders the walk could not
    list first, then the files'."""
    from retriever.load.collection import load_sources

    report = load_sources(scan.sources, tuple(str(r) for r in roots))
    if scan.unreadable:
        report = replace(report, problems=scan.unreadable + report.problems)
    return report


def build(
    folder: Path,
    scan: Scan,
    report: LoadReport,
    embedder: Embedder,
    *,
    previous: SkillIndex | None = None,
    progress: BuildProgress | bool = False,
    cache: EmbeddingCache | None = None,
) -> SkillIndex:
    """Build the index of ``report`` (parsed from ``scan``) and save it as ``folder``'s
    current version; call under ``store.build_lock``. ``previous``: the index it replaces,
    when the caller holds it (else the folder's current one is read, for its vectors)."""
    from retriever import __version__
    from retriever.index.build import VectorCache, build_index, embedded_texts
    from retriever.index.documents import collection_documents
    from retriever.index.progress import BuildProgress
    from retriever.index.store import load_index, remove_leftovers, save_index
    from retriever.rules import compile_rules

    remove_leftovers(folder)
    if not report.skills:
        raise no_skills(report.roots, report.problems)
    if previous is None:
        try:  # the index being replaced, as a source of vectors already computed
            previous = load_index(folder)
        except IndexError_:
            previous = None
    documents = collection_documents(report.skills)
    vectors = VectorCache(previous, embedder, cache)
    todo = vectors.plan(embedded_texts(documents, compile_rules(report.skills)))
    tracker = BuildProgress.of(progress)
    if not todo:
        log.info(
            "%s skills: nothing to embed (every text's vector is known)", f"{len(report.skills):,}"
        )
    tracker.on_estimate = lambda seconds: announce_build(
        len(report.skills), len(todo), seconds, first=previous is None
    )
    built = build_index(
        report,
        embedder,
        fingerprint=scan.fingerprint,
        package_version=__version__,
        progress=tracker,
        vectors=vectors,
        documents=documents,
        corpus=scan.record,  # the next open checks these files' metadata
    )
    return save_index(folder, built)  # used as built: nothing is read back


def announce_build(skills: int, texts: int, seconds: float, *, first: bool) -> None:
    """Say up front how big the build is and how long it will take: a first build of a large
    collection takes minutes, and a user (or a CI log, where stderr is no terminal) should
    know why. ``seconds`` is measured (``index.progress``), not guessed."""
    from retriever.index.progress import duration_words

    log.info(
        "%s skills, %s %s to embed: %s on %d cores%s",
        f"{skills:,}",
        f"{texts:,}",
        "text" if texts == 1 else "texts",
        duration_words(seconds),
        os.cpu_count() or 1,
        " (later builds embed only the texts that changed)" if first else "",
    )


def _corpus_record(folder: Path) -> Any:
    """The record of the skill files the current index in ``folder`` was built from (its
    hashes are reused for the files whose metadata is unchanged), or ``None``."""
    from retriever.index.store import read_manifest

    try:
        manifest: Manifest | None = read_manifest(folder)
    except IndexError_:
        return None
    return manifest.corpus if manifest is not None else None
