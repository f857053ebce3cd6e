"""One retriever per set of roots: the user's, or the user's plus one project's own folders.

A hook event names the folder the agent runs in (``cwd``). The project's skill folders found
there (``paths.project_skill_roots``: ``.claude/skills``, ``.agents/skills``, ... up to the
repository root) are added to the user's roots, and that set is searched as one collection:
one index per set, in its own folder under the index home, so that scores and BM25 weigh the
project's skills and the user's alike. Another project's set never includes this project's
folders, so a project never sees another project's skills.

The first prompt in a project builds its set's index. The shared embedding cache holds the
user's vectors already, so only the project's own texts are embedded; the rest of the build
is reading the user's skill files again (seconds for hundreds of skills). The caller waits
for it up to a budget and, past that, answers from the user's roots alone while the build
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
        from retriever.api import SkillRetriever
        from retriever.serve.live import LiveRetriever

        try:
            base = self.base()
            roots = [*self.user_roots, *key]
            started = time.perf_counter()
            with self._build_lock:
                # the served model, shared: no second copy of it, no start-up cost
                retriever = SkillRetriever.open(
                    roots, embedder=base.embedder, config=base.config, progress=False
                ).warm()
            entry.live = LiveRetriever(retriever, roots)
            log.info(
                "opened the skills of %s in %.1f s (%s)",
                ", ".join(map(str, key)),
                time.perf_counter() - started,
                retriever.rebuilt_because or "index up to date",
            )
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
