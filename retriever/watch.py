"""Live reload (``--watch``): rebuild when skill files change, swap the retriever atomically.

A server answers every request with ``LiveRetriever.current``, read once per request. A
reload builds a whole new ``SkillRetriever`` beside the one serving (incrementally: the
vectors of unchanged texts are reused, so an edit costs seconds) and then replaces the
reference in one assignment: a query in flight finishes on the index it started on, the
next one sees the new index. A reload that fails, or an edit that breaks a skill file,
leaves the last good index serving and says why (``status``, the log).

``SkillWatcher`` runs ``watchfiles`` on the skill roots in a thread. Every batch of
changes is only a hint to rescan: the corpus fingerprint decides whether anything indexed
changed (inotify drops events in bursts, and editors save in several steps).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retriever.api import SkillRetriever

log = logging.getLogger(__name__)

# How long /health may reuse its answer to "do the files still match the index?": checking
# hashes every skill file.
FRESHNESS_TTL_S = 5.0


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload did: ``reloaded``, ``unchanged`` or ``held`` (kept the old index)."""

    outcome: str
    seconds: float
    at: str
    detail: str = ""


class LiveRetriever:
    """The retriever being served, replaced whole when its skill files change.

    ``current`` is a plain attribute: take it once per request and use that object to the
    end. Reloads run one at a time; readers never wait for them.
    """

    def __init__(self, retriever: SkillRetriever, roots: Sequence[Path]) -> None:
        self.current = retriever
        self.roots = tuple(Path(r) for r in roots)
        self.generation = 0  # how many times the index was swapped
        self.held_because: str | None = None  # why the files' state is not being served
        self.last_reload: ReloadOutcome | None = None
        self.watching = False
        self._reload_lock = threading.Lock()
        self._fresh_lock = threading.Lock()
        self._fresh: tuple[float, str, str | None] | None = None  # (when, fingerprint, why)

    # -- reloading -------------------------------------------------------------------------

    def reload(self) -> ReloadOutcome:
        """Rescan the roots; rebuild and swap when what is indexed changed.

        Never raises: a failure keeps the current index and is recorded in ``held_because``.
        """
        with self._reload_lock:
            started = time.perf_counter()
            try:
                outcome, detail = self._reload()
            except Exception as e:  # noqa: BLE001 - any failure keeps the last good index
                outcome, detail = "held", f"reload failed: {e}"
            if outcome == "held":
                self.held_because = detail
                log.warning("skill files changed but %s; still serving the last good index", detail)
            elif outcome == "reloaded":
                self.held_because = None
                log.info("%s", detail)
            else:
                self.held_because = None
            self._fresh = None
            self.last_reload = ReloadOutcome(
                outcome,
                round(time.perf_counter() - started, 3),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                detail,
            )
            return self.last_reload

    def _reload(self) -> tuple[str, str]:
        from retriever.api import SkillRetriever
        from retriever.load import load_sources
        from retriever.load.changes import indexed_paths, scan_corpus, unchanged

        missing = self.missing_root()
        if missing:
            return "held", missing
        old = self.current
        roots, record = list(self.roots), old.manifest.get("corpus")
        # most batches are editor temp files: the record vouches for every file, nothing is
        # walked or hashed; otherwise one scan, hashing only the files whose stamp moved
        if unchanged(record, roots):
            return "unchanged", "no indexed file changed"
        scan = scan_corpus(roots, record)
        if scan.fingerprint == old.manifest.get("corpus_fingerprint"):
            return "unchanged", "no indexed file changed"
        sources = scan.sources
        # A file that loaded before and does not now is a broken edit (a YAML typo saved
        # half-way): rebuilding would drop that skill, or its sharp edges or checks, from the
        # index, so keep the old one. A file the last build did not index, or that had a
        # problem then already, holds nothing: a broken new skill is reported, not waited on.
        report = load_sources(sources, tuple(str(r) for r in self.roots))
        before = indexed_paths(old.manifest.get("corpus")) - {p.path for p in old.problems}
        broken = [p for p in _unloaded(report) if p.path in before]
        if broken:
            return "held", f"{broken[0].path} does not load ({broken[0].reason})"
        new = SkillRetriever.open(
            list(self.roots),
            index_dir=old.index_dir,
            embedder=old.embedder,  # the model stays loaded: one copy, no start-up cost
            rebuild="auto",
            progress=False,
        )
        new.warm()  # the first query on a new index is not the slow one
        self.current = new  # the swap: one reference assignment
        self.generation += 1
        embedded = new.manifest.get("counts", {}).get("embedded", 0)
        return "reloaded", (
            f"reloaded the index: {len(new.skills)} skills, {embedded} "
            f"{'text' if embedded == 1 else 'texts'} embedded"
        )

    # -- freshness ---------------------------------------------------------------------------

    def missing_root(self) -> str | None:
        """Why the served roots cannot be read now (one has gone away), or ``None``."""
        missing = [str(r) for r in self.roots if not r.is_dir()]
        return f"skills root {missing[0]} is missing" if missing else None

    def freshness(self) -> tuple[bool, str | None]:
        """``(stale, why)``: whether the served index still matches the skill files."""
        from retriever.load.changes import fingerprint_now

        with self._fresh_lock:
            now = time.monotonic()
            served = self.current.manifest.get("corpus_fingerprint", "")
            cached = self._fresh
            if cached is None or now - cached[0] > FRESHNESS_TTL_S or cached[1] != served:
                why = self.missing_root()
                if (
                    why is None
                    and fingerprint_now(self.current.manifest, list(self.roots)) != served
                ):
                    why = "the skill files changed since it was loaded" + (
                        "" if self.watching else " (restart, or serve with --watch)"
                    )
                self._fresh = cached = (now, served, why)
            why = cached[2]
        if why is not None and self.held_because:
            why = self.held_because
        return why is not None, why

    def status(self) -> dict[str, Any]:
        """The reload state, for /health."""
        last = self.last_reload
        return {
            "enabled": self.watching,
            "generation": self.generation,
            "held_because": self.held_because,
            "last_reload": None
            if last is None
            else {
                "outcome": last.outcome,
                "at": last.at,
                "seconds": last.seconds,
                "detail": last.detail,
            },
        }


def _unloaded(report) -> list:
    """The problems of files whose content was dropped: a skill that was skipped, or a side
    file (sharp-edges.yaml, validations.yaml, ...) that did not parse."""
    return [p for p in report.problems if p.skipped or p.dropped]


class SkillWatcher:
    """Reloads ``live`` when files under its roots change, from a background thread.

    A root that disappears stops ``watchfiles`` (inotify loses the watch): the thread then
    waits for it to come back, reloads, and watches again.
    """

    def __init__(self, live: LiveRetriever, *, step_ms: int = 200, debounce_ms: int = 1600) -> None:
        self.live = live
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.ready = threading.Event()  # set once the watches are in place
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skill-watcher", daemon=True)

    def start(self) -> SkillWatcher:
        import watchfiles  # noqa: F401 - imported here, on the caller's thread, not the watcher's

        self.live.watching = True
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.live.watching = False

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.live.missing_root():
                self.live.reload()  # records "root missing"; the old index keeps serving
                while not self._stop.wait(1.0) and self.live.missing_root():
                    pass
                if self._stop.is_set():
                    return
                log.info("skills roots are back; rescanning")
                self.live.reload()
            try:
                self._watch()
            except Exception as e:  # noqa: BLE001 - a watcher error must not end the thread
                log.warning("watching the skill files failed (%s); starting again", e)
                self._stop.wait(1.0)

    def _watch(self) -> None:
        from watchfiles import watch

        for changes in watch(
            *self.live.roots,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=1000,
            yield_on_timeout=True,  # wakes once a second: a gone root is noticed
            raise_interrupt=False,
        ):
            self.ready.set()
            if changes:
                self.live.reload()
            if self.live.missing_root():
                return
