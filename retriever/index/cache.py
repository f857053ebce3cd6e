"""One embedding cache for every index under an index home: a text is embedded once per
model, whichever collection, project or build asks for it.

A vector depends on the model, on how it is run (the export variant: an int8 export gives
other vectors than the fp32 one) and on the text, nothing else; the cache is keyed by
exactly that: ``Embedder.cache_key`` and the sha256 of the text. An embedder that declares
no key (a test's fake, a user's own subclass) is not cached.

It is one SQLite database (``embeddings.sqlite`` in the index home): the standard
library's, safe with several writers at once (a build, a live reload, a second project's
hook: each write is one transaction, writers wait their turn) and with a crash mid-write
(a transaction is all or nothing). It is bounded: past ``limit_bytes`` the least recently
used vectors are dropped. A cache that cannot be opened or written (a read-only home, a
damaged file) is never a reason for a build to fail: the build embeds what it must and
says why once. A damaged file is moved aside and started afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

FILE = "embeddings.sqlite"
ENV_LIMIT_MB = "SKILL_RETRIEVER_CACHE_MB"
DEFAULT_LIMIT_MB = 2048  # ~1.3 million 384-dimension vectors
# Rows asked for or written per statement (SQLite allows 32,766 variables since 3.32; the
# older default was 999).
CHUNK = 900
# Pruning goes below the limit by this share, so that a build just past it does not prune
# again on every write.
PRUNE_TO = 0.8
SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    text_hash BLOB NOT NULL,
    vector BLOB NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
"""


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def limit_from_env() -> int:
    """The cache's size bound in bytes (``$SKILL_RETRIEVER_CACHE_MB``, default 2 GiB)."""
    raw = os.environ.get(ENV_LIMIT_MB, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_LIMIT_MB
    except ValueError:
        log.warning(
            "%s=%r is not a number of megabytes; using %d", ENV_LIMIT_MB, raw, DEFAULT_LIMIT_MB
        )
        mb = DEFAULT_LIMIT_MB
    return max(0, int(mb * 1024 * 1024))


class EmbeddingCache:
    """Vectors by (model key, text), in one SQLite file."""

    def __init__(self, path: Path, limit_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.limit_bytes = limit_from_env() if limit_bytes is None else limit_bytes
        self._db: sqlite3.Connection | None = None
        self.disabled: str | None = None  # why the cache is not used, once it failed

    # -- the connection ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            try:
                # before the first table: lets pruning give pages back to the file system
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
                db.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses no commit's data
                db.executescript(SCHEMA)
                db.execute("SELECT count(*) FROM vectors LIMIT 1").fetchone()
            except sqlite3.DatabaseError:
                db.close()
                raise
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _use(self, what: str) -> Iterator[sqlite3.Connection | None]:
        """The connection, or ``None`` when the cache cannot be used (said once). A failure
        inside the block ends the block quietly: the caller goes on without the cache."""
        db = None
        if not self.disabled:
            try:
                db = self._connect()
            except (sqlite3.DatabaseError, OSError) as e:
                self._failed(what, e)
        if db is None:
            yield None
            return
        try:
            yield db
        except (sqlite3.DatabaseError, OSError) as e:
            self._failed(what, e)

    def _failed(self, what: str, e: Exception) -> None:
        text = str(e)
        if isinstance(e, sqlite3.DatabaseError) and (
            "malformed" in text or "not a database" in text
        ):
            self._set_aside(e)
        else:
            self._disable(f"cannot {what} {self.path} ({getattr(e, 'strerror', None) or e})")

    def _disable(self, why: str) -> None:
        self.disabled = why
        log.warning("%s; embedding without the shared cache", why)
        self.close()

    def _set_aside(self, error: Exception) -> None:
        """A damaged file: moved aside (never read again), and a fresh one started."""
        self.close()
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")
            log.warning(
                "the embedding cache %s was damaged (%s); moved to %s", self.path, error, aside
            )
        except OSError as e:
            self._disable(
                f"the embedding cache {self.path} is damaged ({error}) and cannot be moved ({e})"
            )

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # -- reading and writing -------------------------------------------------------------------

    def get(self, model: str, texts: Sequence[str], dimension: int) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` that have one, by text; marks them used."""
        import numpy as np

        wanted = {text_hash(t): t for t in dict.fromkeys(texts)}
        found: dict[str, np.ndarray] = {}
        size = dimension * 4
        now = int(time.time())
        with self._use("read") as db:
            if db is None:
                return {}
            hashes = list(wanted)
            for start in range(0, len(hashes), CHUNK):
                chunk = hashes[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    "SELECT text_hash, vector FROM vectors "
                    f"WHERE model = ? AND text_hash IN ({marks})",
                    [model, *chunk],
                ).fetchall()
                for h, blob in rows:
                    if len(blob) == size:  # a row of another dimension is no vector of ours
                        found[wanted[bytes(h)]] = np.frombuffer(blob, dtype=np.float32)
            if found:  # least recently used is what pruning drops: these were just used
                self._touch(db, model, [text_hash(t) for t in found], now)
        return found

    def _touch(self, db: sqlite3.Connection, model: str, hashes: list[bytes], now: int) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # busy or read-only: only a hint
            db.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(hashes), CHUNK):
                    chunk = hashes[start : start + CHUNK]
                    marks = ",".join("?" * len(chunk))
                    db.execute(
                        f"UPDATE vectors SET used = ? WHERE model = ? AND text_hash IN ({marks})",
                        [now, model, *chunk],
                    )
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise

    def put(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store the vectors of ``texts`` (one row each), then prune past the limit."""
        import numpy as np

        if not len(texts):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        now = int(time.time())
        rows = [(model, text_hash(t), vectors[i].tobytes(), now) for i, t in enumerate(texts)]
        with self._use("write") as db:
            if db is None:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.OperationalError as e:  # read-only, disk full, busy past timeout
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                self._disable(f"cannot write {self.path} ({e})")
                return
        self.prune()

    def prune(self) -> int:
        """Drop the least recently used vectors while the file is over the limit; how many
        were dropped."""
        with self._use("prune") as db:
            if db is None:
                return 0
            size = self._bytes(db)
            if size <= self.limit_bytes:
                return 0
            count = db.execute("SELECT count(*) FROM vectors").fetchone()[0] or 1
            per_row = size / count
            drop = min(count, int((size - self.limit_bytes * PRUNE_TO) / per_row) + 1)
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "DELETE FROM vectors WHERE (model, text_hash) IN "
                    "(SELECT model, text_hash FROM vectors ORDER BY used LIMIT ?)",
                    (drop,),
                )
                db.execute("COMMIT")
                db.execute("PRAGMA incremental_vacuum")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                return 0
            log.info(
                "embedding cache over %d MB: dropped the %d least recently used vectors",
                self.limit_bytes // 2**20,
                drop,
            )
            return drop

    @staticmethod
    def _bytes(db: sqlite3.Connection) -> int:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page)

    def stats(self) -> dict[str, Any]:
        """What ``doctor`` reports: the file, its size, and the vectors per model."""
        out: dict[str, Any] = {
            "path": str(self.path),
            "exists": self.path.is_file(),
            "bytes": 0,
            "limit_bytes": self.limit_bytes,
            "models": {},
        }
        if not out["exists"]:
            return out
        with self._use("read") as db:
            if db is None:
                out["error"] = self.disabled
                return out
            out["bytes"] = self.path.stat().st_size
            out["models"] = dict(
                db.execute("SELECT model, count(*) FROM vectors GROUP BY model").fetchall()
            )
        return out


def shared_cache() -> EmbeddingCache:
    """The cache of the index home (``paths.index_home``)."""
    from retriever.paths import index_home

    return EmbeddingCache(index_home() / FILE)
