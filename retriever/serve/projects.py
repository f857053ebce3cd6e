"""One retriever per set of roots: the user's, or the user's plus one project's own folders.

A hook event names the folder the agent runs in (``cwd``). The project's skill folders found
there (``paths.project_skill_roots``: ``.claude/skills``, ``.agents/skills``, ... up to the
repository root) are added to the user's roots, and that set is searched as one collection:
one index per set, in its own folder under the index home, so that scores and BM25 weigh the
project's skills and the user's alike. Another project's set never includes this project's
folders, so a project never sees another project's skills.

The first prompt in a project builds its set's index (``open_set``) from what the served
index holds, when it still matches the user's files: their skills as parsed and their
vectors, so only the project's files are read and its texts embedded. The caller waits for
it up to a budget and, past that, answers from the user's roots alone while the build
finishes in the background. Built sets stay open in a small LRU (each holds a copy of the
user's index in memory) and share the served retriever's model; each is checked for edited
skill files at most every ``REFRESH_S`` seconds, in the background, and rebuilt
incrementally when one changed (``LiveRetriever.reload``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retriever.paths import project_skill_roots

if TYPE_CHECKING:
    from retriever.api import SkillRetriever
    from retriever.serve.live import LiveRetriever

log = logging.getLogger(__name__)

# Sets kept open besides the user's own: each holds the user's index once more (about 60
# MB for the 462 spawner skills), so a few; a fourth project evicts the least recent.
LRU_SIZE = 3
REFRESH_S = 30.0  # how stale an open project's skills may get before a background look
# How long the first prompt in a project waits for its index by default; Claude Code cancels
# a UserPromptSubmit hook after 30 s unless its entry says otherwise.
DEFAULT_WAIT_S = 20.0
MAX_WAIT_S = 60.0


class _Entry:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.live: LiveRetriever | None = None
        self.error: str | None = None
        self.checked = time.monotonic()
        self.refreshing = False


class ProjectRetrievers:
    """The retriever for a hook event's ``cwd``: the served one (``base()``) when the
    project has no skill folders of its own, else the one of the user's roots plus the
    project's, opened (built if needed) on first use and kept in an LRU."""

    def __init__(
        self,
        base: Callable[[], SkillRetriever],
        user_roots: Sequence[Path],
        *,
        size: int = LRU_SIZE,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.base = base
        self.user_roots = [Path(r).resolve() for r in user_roots]
        self.size = size
        self.refresh_s = refresh_s
        self._entries: OrderedDict[tuple[Path, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        # one build at a time: each already uses the cores (embedding, BM25)
        self._build_lock = threading.Lock()

    def project_roots(self, cwd: str | None) -> list[Path]:
        return project_skill_roots(cwd, exclude=self.user_roots)

    def ready(self, cwd: str | None) -> SkillRetriever | None:
        """The retriever for ``cwd`` when it is open now (the served one for a folder with
        no skill folders of its own), else ``None``: a few ``stat`` calls, no waiting, so
        that the common prompt needs no thread to find its retriever."""
        project = self.project_roots(cwd)
        if not project:
            return self.base()
        with self._lock:
            entry = self._entries.get(tuple(project))
            if entry is None or entry.live is None:
                return None
            self._entries.move_to_end(tuple(project))
        self._maybe_refresh(entry)
        return entry.live.current

    def for_cwd(self, cwd: str | None, wait: float = DEFAULT_WAIT_S) -> SkillRetriever:
        """The retriever to answer a prompt in ``cwd``, waiting ``wait`` seconds at most for
        a project's first build (then the user's roots alone, the build going on)."""
        project = self.project_roots(cwd)
        if not project:
            return self.base()
        key = tuple(project)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                threading.Thread(
                    target=self._open, args=(key, entry), name="project-index", daemon=True
                ).start()
            self._entries.move_to_end(key)
            self._evict()
        if not entry.ready.wait(max(0.0, wait)):
            log.info("the index of %s is still being built; answering from the user's roots", key)
            return self.base()
        if entry.live is None:  # the build failed: said in the log, the user's roots answer
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]  # the next prompt tries again
            return self.base()
        self._maybe_refresh(entry)
        return entry.live.current

    def open_sets(self) -> list[list[str]]:
        """The project sets open now, most recent last (for /health and tests)."""
        with self._lock:
            return [[str(p) for p in key] for key, e in self._entries.items() if e.live]

    def _evict(self) -> None:
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def _open(self, key: tuple[Path, ...], entry: _Entry) -> None:
        from retriever.errors import IndexNotReadyError
        from retriever.serve.live import LiveRetriever

        try:
            base = self.base()
            roots = [*self.user_roots, *key]
            started = time.perf_counter()
            with self._build_lock:
                retriever = open_set(base, roots, key).warm()
            entry.live = LiveRetriever(retriever, roots)
            log.info(
                "opened the skills of %s in %.1f s (%s)",
                ", ".join(map(str, key)),
                time.perf_counter() - started,
                retriever.rebuilt_because or "index up to date",
            )
        except IndexNotReadyError as e:  # the served index is not built yet: the next prompt
            entry.error = str(e)
        except Exception as e:  # noqa: BLE001 - a broken project folder must not break prompts
            entry.error = str(e)
            log.warning("cannot open the skills of %s: %s", ", ".join(map(str, key)), e)
        finally:
            entry.checked = time.monotonic()
            entry.ready.set()

    def _maybe_refresh(self, entry: _Entry) -> None:
        """Look for edited skill files in the background when the last look is old: the
        prompt is answered now, from the index as it is."""
        with self._lock:
            if entry.refreshing or time.monotonic() - entry.checked < self.refresh_s:
                return
            entry.refreshing = True

        def refresh() -> None:
            try:
                with self._build_lock:
                    if entry.live is not None:
                        entry.live.reload()  # never raises; keeps the last good index
            finally:
                entry.checked = time.monotonic()
                entry.refreshing = False

        threading.Thread(target=refresh, name="project-refresh", daemon=True).start()


def open_set(base: SkillRetriever, roots: list[Path], project: Sequence[Path]) -> SkillRetriever:
    """The retriever of ``roots`` (the served index's roots, then ``project``), sharing
    ``base``'s model: its index opened when built and fresh, else built.

    A build starts from what ``base`` holds when its index still matches the user's files:
    its skills, already parsed (reading hundreds of skill files again is most of a build),
    and its vectors; only the project's files are read and its texts embedded. Otherwise
    (the user's files changed since the served index was built) the whole set is scanned,
    parsed and built, as ``SkillRetriever.open`` does."""
    from retriever.api import SkillRetriever, shared_cache_for
    from retriever.errors import IndexError_, StaleIndexError
    from retriever.index.opening import build
    from retriever.index.store import build_lock
    from retriever.load.changes import scan_corpus, unchanged
    from retriever.load.collection import load_sources
    from retriever.paths import index_folder
    from retriever.skill import LoadProblem, LoadReport

    def opened(rebuild: str) -> SkillRetriever:
        return SkillRetriever.open(
            roots, rebuild=rebuild, embedder=base.embedder, config=base.config, progress=False
        )

    try:  # built before, by this server or another, or by the command hook's `retrieve index`
        return opened("never")
    except (StaleIndexError, IndexError_):
        pass
    record = base.manifest.corpus
    served = [Path(r) for r in record.get("roots", [])] if isinstance(record, dict) else []
    if [r.resolve() for r in served] != list(roots[: len(served)]) or not unchanged(record, served):
        return opened("auto")
    folder = index_folder(roots, base.embedder.model_id)
    with build_lock(folder):
        scan = scan_corpus(roots, record)  # the user's files are not hashed again
        inside = {Path(r).resolve() for r in project}
        own = [s for s in scan.sources if Path(s.root).resolve() in inside]
        parsed = load_sources(own, tuple(str(r) for r in project))
        known = {s.id for s in base.skills}
        kept = tuple(s for s in parsed.skills if s.id not in known)
        shadowed = tuple(
            LoadProblem(
                s.path,
                f"duplicate id '{s.id}': the user's skill of that id is kept",
                skill_id=s.id,
                skipped=True,
                code="duplicate_id",
            )
            for s in parsed.skills
            if s.id in known
        )
        report = LoadReport(
            skills=(*base.skills, *kept),
            problems=(*scan.unreadable, *base.problems, *parsed.problems, *shadowed),
            roots=tuple(str(r) for r in roots),
        )
        index = build(
            folder,
            scan,
            report,
            base.embedder,
            previous=base.index,  # the user's vectors, in memory
            cache=shared_cache_for(base.embedder),
        )
    return SkillRetriever.of_index(
        index, folder, base.embedder, base.config, "the project's skills added"
    )
