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

A root is kept as named (``LiveRetriever.roots``) and resolved again at every look: inotify
watches a folder, not a name, so a root replaced whole (``rm -rf R && cp -r new R``,
``mv R R.old && mv new R``, a link switched with ``ln -s v2 R.tmp && mv -T R.tmp R``) would
leave the watch on the old folder. The watcher compares each root's identity (what it
resolves to, and that folder's device and inode) with the one it watches at every wake-up
(``check_ms``) and, when it changed, watches the new folder and reloads. Before a reload
scans, it waits for the tree to be quiet (``wait_quiet``), so that a copy in progress is not
served as the whole collection.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retriever.api import SkillRetriever
    from retriever.errors import IndexNotReadyError
    from retriever.index.manifest import Manifest
    from retriever.index.progress import BuildProgress

log = logging.getLogger(__name__)

# How long /health may reuse its answer to "do the files still match the index?": checking
# hashes every skill file.
FRESHNESS_TTL_S = 5.0

# A tree is quiet when two looks at its metadata this far apart see the same (or one look
# finds nothing changed for that long); a reload waits for that at most QUIET_MAX_S, then
# loads what is there.
QUIET_S = 0.3
QUIET_MAX_S = 10.0

# What a root is: the folder it resolves to, and that folder's device and inode.
Identity = tuple[str, int, int]


def root_identity(root: Path) -> Identity | None:
    """Which folder ``root`` (as named) is now; ``None`` when it is not a folder (gone, or a
    link leading nowhere). Another inode at the same path: the folder was replaced."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return os.path.realpath(root), st.st_dev, st.st_ino


def _look(roots: Sequence[Path]) -> tuple[tuple[Any, ...], int]:
    """What the trees under ``roots`` are now, as metadata: each root's identity and every
    entry discovery would walk (links not followed; hidden and ``__`` folders skipped), and
    the newest time stamped on any of them (ns)."""
    seen: list[Any] = []
    newest = 0
    for root in roots:
        identity = root_identity(root)
        seen.append(identity)
        if identity is None:
            continue
        pending = [identity[0]]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        seen.append(
                            (entry.path, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                        )
                        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
                        if stat.S_ISDIR(st.st_mode) and not entry.name.startswith((".", "__")):
                            pending.append(entry.path)
            except OSError:
                seen.append((folder, "unreadable"))
            try:
                st = os.stat(folder)
                newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
            except OSError:
                pass
    return tuple(seen), newest  # a folder unchanged lists its entries in the same order


def wait_quiet(
    roots: Sequence[Path],
    *,
    interval: float = QUIET_S,
    limit: float = QUIET_MAX_S,
    stop: threading.Event | None = None,
) -> bool:
    """Wait until nothing under ``roots`` changes for ``interval`` seconds (a copy or a
    checkout in progress has finished): two looks at the metadata that far apart see the
    same, or a single look finds nothing stamped that recently. Gives up after ``limit``
    seconds (or when ``stop`` is set) and says ``False``."""
    deadline = time.monotonic() + limit
    before, newest = _look(roots)
    if newest < time.time_ns() - int(interval * 1e9):
        return True
    while True:
        wait = min(interval, deadline - time.monotonic())
        if wait <= 0 or (stop is not None and stop.wait(wait)):
            return False
        if stop is None:
            time.sleep(wait)
        now, _ = _look(roots)
        if now == before:
            return True
        before = now


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

    def __init__(
        self,
        retriever: SkillRetriever | None,
        roots: Sequence[Path],
        *,
        index_dir: Path | None = None,
        quiet_s: float = QUIET_S,
        quiet_max_s: float = QUIET_MAX_S,
    ) -> None:
        self._current = retriever
        # the index folder served: known before a first build has made anything in it
        self.index_dir = index_dir or (retriever.index_dir if retriever is not None else None)
        # how far the first build is (``opening``); ``None`` when opened before serving
        self.progress: BuildProgress | None = None
        self.failed_because: str | None = None  # why the first open failed, if it did
        # as named (``paths.named_roots``): a link is resolved again at every look, so a
        # switched one is seen; resolved roots are taken too, and then a link is not seen
        self.roots = tuple(Path(r) for r in roots)
        self.quiet_s, self.quiet_max_s = quiet_s, quiet_max_s
        self.generation = 0  # how many times the index was swapped
        self.held_because: str | None = None  # why the files' state is not being served
        self.last_reload: ReloadOutcome | None = None
        self.watching = False
        self._reload_lock = threading.Lock()
        self._fresh_lock = threading.Lock()
        # (when, (fingerprint served, the roots' identities), why)
        self._fresh: tuple[float, tuple[Any, ...], str | None] | None = None

    @classmethod
    def opening(
        cls,
        open_first: Callable[[BuildProgress], SkillRetriever],
        roots: Sequence[Path],
        *,
        index_dir: Path,
        then: Callable[[LiveRetriever], None] | None = None,
        show: bool = True,
        **options: Any,
    ) -> LiveRetriever:
        """A live retriever that serves at once and opens its first index on a thread:
        ``open_first(progress)`` builds (or opens) it, counting in ``progress``; until it
        returns, every request is told how far the build is (``IndexNotReadyError``), never
        answered from a half-built index. ``then(live)`` runs once it serves (say, starts
        the watcher). A failure is kept (``failed_because``) and told to every request."""
        from retriever.index.progress import BuildProgress

        live = cls(None, roots, index_dir=index_dir, **options)
        live.progress = BuildProgress(show=show)
        threading.Thread(
            target=live._open_first, args=(open_first, then), name="first-index", daemon=True
        ).start()
        return live

    def _open_first(
        self,
        open_first: Callable[[BuildProgress], SkillRetriever],
        then: Callable[[LiveRetriever], None] | None,
    ) -> None:
        assert self.progress is not None
        started = time.perf_counter()
        try:
            retriever = open_first(self.progress)
        except Exception as e:  # noqa: BLE001 - told to every request, the server stays up
            self.failed_because = str(e)
            self.progress.finish("failed")
            log.error("the skill index could not be opened: %s", e)
            return
        self._current = retriever
        self.progress.finish("ready")
        log.info(
            "index ready: %d skills (%.0f s after start)",
            len(retriever.skills),
            time.perf_counter() - started,
        )
        if then is not None:
            then(self)

    @property
    def current(self) -> SkillRetriever:
        """The retriever to answer this request with; ``IndexNotReadyError`` while the first
        index is being built, or when it could not be."""
        retriever = self._current
        if retriever is None:
            raise self.not_ready()
        return retriever

    @current.setter
    def current(self, retriever: SkillRetriever) -> None:
        self._current = retriever

    @property
    def ready(self) -> bool:
        return self._current is not None

    def not_ready(self) -> IndexNotReadyError:
        """What a request made before the first index serves is told."""
        from retriever.errors import IndexNotReadyError

        if self.failed_because is not None:
            return IndexNotReadyError(
                f"the skill index could not be opened: {self.failed_because}",
                code="unavailable",
            )
        progress = self.progress
        if progress is None:  # pragma: no cover - a live retriever is made with one or the other
            return IndexNotReadyError("the skill index is not open yet")
        return IndexNotReadyError(
            f"{progress.describe()}; ask again shortly", progress=progress.snapshot()
        )

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
        from retriever.api import SkillRetriever, shared_cache_for
        from retriever.index.opening import build, load_report
        from retriever.index.store import build_lock
        from retriever.load.changes import indexed_paths, scan_corpus, unchanged

        if self._current is None:
            return "held", "the first index is not open yet"
        missing = self.missing_root()
        if missing:
            return "held", missing
        # a copy or checkout in progress would be served as the whole collection
        if not wait_quiet(self.roots, interval=self.quiet_s, limit=self.quiet_max_s):
            log.info(
                "skill files still changing after %s s; loading them as they are", self.quiet_max_s
            )
        missing = self.missing_root()
        if missing:
            return "held", missing
        old = self.current
        roots, record = self.targets(), old.manifest.corpus
        # most batches are editor temp files: the record vouches for every file, nothing is
        # walked or hashed; otherwise one scan, hashing only the files whose stamp moved
        if unchanged(record, roots):
            return "unchanged", "no indexed file changed"
        scan = scan_corpus(roots, record)
        if scan.fingerprint == old.manifest.corpus_fingerprint:
            return "unchanged", "no indexed file changed"
        # A file that loaded before and does not now is a broken edit (a YAML typo saved
        # half-way): rebuilding would drop that skill, or its sharp edges or checks, from the
        # index, so keep the old one. A file the last build did not index, or that had a
        # problem then already, holds nothing: a broken new skill is reported, not waited on.
        report = load_report(scan, roots)
        # compared as (root, path inside it): a root replaced by a link switch holds the
        # same files under another folder
        loaded = indexed_paths(record) - {p.path for p in old.problems}
        before = _inside(loaded, _recorded_roots(old.manifest) or roots)
        broken = [p for p in _unloaded(report) if _inside([p.path], roots) <= before]
        if broken:
            return "held", f"{broken[0].path} does not load ({broken[0].reason})"
        # Built from this scan and this parse, with the index being served as the source of
        # unchanged vectors: nothing is walked, parsed or read from disk again. The folders
        # scanned are the roots' targets: a link switched since is the next reload's.
        with build_lock(old.index_dir):
            index = build(
                old.index_dir,
                scan,
                report,
                old.embedder,  # the model stays loaded: one copy, no start-up cost
                previous=old.index,
                cache=shared_cache_for(old.embedder),
            )
        new = SkillRetriever.of_index(
            index, old.index_dir, old.embedder, old.config, "the skill files changed"
        )
        new.warm()  # the first query on a new index is not the slow one
        self.current = new  # the swap: one reference assignment
        self.generation += 1
        embedded = new.manifest.counts.embedded
        return "reloaded", (
            f"reloaded the index: {len(new.skills)} skills, {embedded} "
            f"{'text' if embedded == 1 else 'texts'} embedded"
        )

    # -- freshness ---------------------------------------------------------------------------

    def identities(self) -> tuple[Identity | None, ...]:
        """Which folder each root is now (``root_identity``)."""
        return tuple(root_identity(r) for r in self.roots)

    def targets(self) -> list[Path]:
        """The folders the roots resolve to now."""
        return [Path(os.path.realpath(r)) for r in self.roots]

    def missing_root(self) -> str | None:
        """Why the served roots cannot be read now (one has gone away), or ``None``."""
        missing = [str(r) for r in self.roots if not r.is_dir()]
        return f"skills root {missing[0]} is missing" if missing else None

    def freshness(self) -> tuple[bool, str | None]:
        """``(stale, why)``: whether the served index still matches the skill files."""
        from retriever.load.changes import fingerprint_now

        if self._current is None:
            return True, self.not_ready().args[0]
        with self._fresh_lock:
            now = time.monotonic()
            manifest = self.current.manifest
            served = manifest.corpus_fingerprint
            # a root replaced, or a link switched, is looked at again at once
            key = (served, self.identities())
            cached = self._fresh
            if cached is None or now - cached[0] > FRESHNESS_TTL_S or cached[1] != key:
                why = self.missing_root() or self._moved(manifest)
                if (
                    why is None
                    and fingerprint_now(served, manifest.corpus, self.targets()) != served
                ):
                    why = "the skill files changed since it was loaded"
                if why is not None and not self.watching and not self.missing_root():
                    why += " (restart, or serve with --watch)"
                self._fresh = cached = (now, key, why)
            why = cached[2]
        if why is not None and self.held_because:
            why = self.held_because
        return why is not None, why

    def _moved(self, manifest: Manifest) -> str | None:
        """Why the served index is not of the folders the roots lead to now (a link switched
        to another folder), or ``None``."""
        loaded = _recorded_roots(manifest)
        if len(loaded) != len(self.roots):
            return None  # not a record of these roots: the fingerprint decides
        for named, target, was in zip(self.roots, self.targets(), loaded, strict=True):
            if str(target) != was:
                return f"skills root {named} now leads to {target}, not {was} as when loaded"
        return None

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


def _recorded_roots(manifest: Manifest) -> list[str]:
    """The (resolved) roots an index was built from, as its manifest says."""
    record = manifest.corpus
    roots = record.get("roots") if isinstance(record, dict) else list(manifest.roots)
    return [str(r) for r in roots] if isinstance(roots, list) else []


def _inside(paths, roots: Sequence[Path | str]) -> set[tuple[int, str]]:
    """Each of ``paths`` as (which root, path inside it); -1 and the path for one outside."""
    prefixes = [os.path.join(str(r), "") for r in roots]
    out = set()
    for path in paths:
        text = str(path)
        which = next((i for i, p in enumerate(prefixes) if text.startswith(p)), -1)
        out.add((which, text[len(prefixes[which]) :] if which >= 0 else text))
    return out


def _unloaded(report) -> list:
    """The problems of files whose content was dropped: a skill that was skipped, or a side
    file (sharp-edges.yaml, validations.yaml, ...) that did not parse."""
    return [p for p in report.problems if p.skipped or p.dropped]


class SkillWatcher:
    """Reloads ``live`` when files under its roots change, from a background thread.

    It watches the folders the roots resolve to, and at every wake-up (a batch of changes,
    or ``check_ms`` without any) looks again at which folders they are. A root replaced by
    another folder (removed and copied again, swapped in by renames, a link switched) is
    watched anew, once its tree is quiet, and reloaded. A root that disappears keeps the last
    index serving; the thread waits for it to come back, then does the same.
    """

    def __init__(
        self,
        live: LiveRetriever,
        *,
        step_ms: int = 200,
        debounce_ms: int = 1600,
        check_ms: int = 500,
    ) -> None:
        self.live = live
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.check_ms = check_ms
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
        reload_first = False  # whether the roots changed since the last reload
        while not self._stop.is_set():
            seen = self.live.identities()
            if None in seen:
                self.live.reload()  # records "root missing"; the old index keeps serving
                while not self._stop.wait(0.2) and None in self.live.identities():
                    pass
                if self._stop.is_set():
                    return
                log.info("skills roots are back; rescanning")
                reload_first = True
                continue
            try:
                self._watch(seen, reload_first)
            except Exception as e:  # noqa: BLE001 - a watcher error must not end the thread
                log.warning("watching the skill files failed (%s); starting again", e)
                self._stop.wait(1.0)
            # _watch returns when a root is another folder now, or has gone
            reload_first = True

    def _watch(self, seen: tuple[Identity | None, ...], reload_first: bool) -> None:
        """Watch the folders of ``seen`` until one of the roots is another folder; reload
        on every batch of changes (and at once when ``reload_first``)."""
        from watchfiles import Change, watch

        if reload_first:
            # a folder being copied in: watch (and load) it once the copy is done
            wait_quiet(
                self.live.roots,
                interval=self.live.quiet_s,
                limit=self.live.quiet_max_s,
                stop=self._stop,
            )
        folders = [identity[0] for identity in seen if identity is not None]  # resolved
        for changes in watch(
            *folders,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=self.check_ms,
            yield_on_timeout=True,  # wakes every check_ms: a replaced root is noticed
            raise_interrupt=False,
        ):
            self.ready.set()
            now = self.live.identities()
            gone = [path for kind, path in changes if kind == Change.deleted and path in folders]
            if gone:
                # removed and made again: often with the same inode (freed and reused at
                # once), which the identity cannot tell, but this watch is on the old one
                log.info("skills root %s was removed; watching it again", gone[0])
                return
            if now != seen:
                moved = [
                    str(r) for r, a, b in zip(self.live.roots, seen, now, strict=True) if a != b
                ]
                log.info("skills root %s is another folder now; watching it again", moved[0])
                return
            if changes or reload_first:
                reload_first = False
                self.live.reload()
