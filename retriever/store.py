"""Step 4 of the flow: the index on disk.

Layout of an index folder::

    DIR/
      current -> v-20261126T121500-1a2b3c   (symlink to the version in use)
      v-20261126T121500-1a2b3c/
        manifest.json     format and package version, model, dimension, metric, corpus
                          fingerprint, counts, creation time, and a sha256 of every file below
        vectors.faiss     the FAISS inner-product index of the document vectors
        documents.jsonl   the document table: one {skill_id, kind, field, text, item} per row
        skills.json       the normalised skills (so a query never re-parses YAML)
        rules.npy         one vector per handoff rule, for natural-language ``when`` rules
        problems.json     the load report's problems
        bm25.npz, bm25.json  the BM25 index of the skills (see ``lexical``)
      .lock               held while a build writes

A build writes a new version folder aside and then swaps the ``current`` symlink with one
atomic rename, so a reader sees the old index or the new one, never a mix, and a build that
dies half-way never replaces a good index. The previous version is kept for readers that
opened it just before the swap; older ones are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retriever.documents import Document
from retriever.errors import IndexError_, IndexWriteError
from retriever.index import SkillIndex
from retriever.lexical import ARRAYS as BM25_ARRAYS
from retriever.lexical import PARAMS as BM25_PARAMS
from retriever.lexical import LexicalIndex
from retriever.skill import LoadProblem, Skill
from retriever.vectors import FILE as VECTORS
from retriever.vectors import VectorIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: BM25 arrays added; 3: documents carry their item
CURRENT = "current"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
SKILLS = "skills.json"
RULES = "rules.npy"
PROBLEMS = "problems.json"
DATA_FILES = (VECTORS, DOCUMENTS, SKILLS, RULES, PROBLEMS, BM25_ARRAYS, BM25_PARAMS)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content, as the manifest records it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


LOCK = ".lock"


def _open_lock(index_dir: Path) -> int:
    """The lock file's descriptor, never following a link: a ``.lock`` that is a symlink
    would make a build create or lock a file outside the index folder."""
    path = index_dir / LOCK
    for _ in range(3):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            path.unlink()  # the link only; whatever it points to is left alone
    raise IndexWriteError(f"{path} keeps being replaced by a symbolic link")


def _probe_writable(index_dir: Path) -> None:
    """``OSError`` now, not after minutes of embedding, when nothing can be written here (an
    immutable folder lets the existing lock file be opened, then refuses every new file)."""
    probe = index_dir / f".probe-{uuid.uuid4().hex[:6]}"
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    probe.unlink()


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the folder's build lock: a second build waits until the first is done.

    ``IndexWriteError`` when the folder cannot be created or the lock taken (a read-only or
    immutable folder): the caller says the index cannot be rebuilt there.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(index_dir)
        _probe_writable(index_dir)
    except OSError as e:
        raise IndexWriteError(f"{e.strerror or e} ({index_dir})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            raise IndexWriteError(f"cannot lock {index_dir / LOCK}: {e.strerror or e}") from e
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def save_index(index_dir: Path, index: SkillIndex) -> SkillIndex:
    """Write ``index`` as a new version and make it current; the same index, with its
    ``path``, comes back (nothing is read again). Call under ``build_lock``.

    Any failure (disk full, read-only folder) leaves the current version as it was.
    """
    name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{name}"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        manifest = _write_version(tmp, index)
        os.rename(tmp, index_dir / name)
        link_tmp = index_dir / f".current-{uuid.uuid4().hex[:6]}"
        previous = _current_version(index_dir)
        if (
            previous == CURRENT
            or (index_dir / CURRENT).is_dir()
            and not (index_dir / CURRENT).is_symlink()
        ):
            # a real folder named current (a copied index, or anything else): moved aside
            # as an old version, since a link cannot replace a folder
            previous = f"v-replaced-{uuid.uuid4().hex[:6]}"
            os.rename(index_dir / CURRENT, index_dir / previous)
        os.symlink(name, link_tmp)
        os.replace(link_tmp, index_dir / CURRENT)  # the atomic switch
    except (OSError, RuntimeError) as e:  # FAISS reports a failed write as RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(e, "strerror", None) or str(e).strip().splitlines()[-1]
        raise IndexWriteError(
            f"cannot write the index in {index_dir}: {reason}; the previous "
            "index (if any) is unchanged"
        ) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_versions(index_dir, keep={name, previous})
    return replace(index, manifest=manifest, path=index_dir / name)


def _write_version(tmp: Path, index: SkillIndex) -> dict[str, Any]:
    """Write every file of ``index`` into ``tmp``; returns the manifest written last."""
    import numpy as np

    index.vectors.save(tmp / VECTORS)
    with open(tmp / DOCUMENTS, "w", encoding="utf-8") as f:
        for d in index.documents:
            f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
    _write_json(tmp / SKILLS, [s.to_dict() for s in index.skills])
    np.save(tmp / RULES, np.asarray(index.rule_vectors, dtype=np.float32), allow_pickle=False)
    _write_json(
        tmp / PROBLEMS,
        [
            {"path": p.path, "reason": p.reason, "skill_id": p.skill_id, "skipped": p.skipped}
            for p in index.problems
        ],
    )
    index.lexical.save(tmp)
    files = {
        f: {"sha256": file_sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in DATA_FILES
    }
    # The manifest is written last: a folder without one is never a usable index.
    manifest = {**index.manifest, "format_version": FORMAT_VERSION, "files": files}
    _write_json(tmp / MANIFEST, manifest)
    return manifest


def _current_version(index_dir: Path) -> str | None:
    """The name of the version in use: the target of the ``current`` link; ``current``
    itself when it is a real folder holding an index (a copy made with ``cp -r``, which
    follows the link); ``None`` when there is no index."""
    link = index_dir / CURRENT
    try:
        return os.readlink(link)
    except OSError:
        pass
    if link.is_dir() and (link / MANIFEST).is_file():
        return CURRENT
    return None


def remove_leftovers(index_dir: Path) -> None:
    """Remove what killed or failed builds left behind: temporary version folders, version
    folders that are not current, half-made links. Call under ``build_lock``: a build that
    dies on a nearly full disk must not keep the next one from finding room."""
    if not index_dir.is_dir():
        return
    _remove_old_versions(index_dir, keep={_current_version(index_dir)})


def _remove_old_versions(index_dir: Path, keep: set[str | None]) -> None:
    for child in index_dir.iterdir():
        if child.is_symlink():
            if child.name.startswith(".current-"):
                child.unlink(missing_ok=True)  # a link left by a build that died mid-swap
            continue  # never follow a link out of the folder
        if child.name.startswith(("v-", ".tmp-v-")) and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def read_manifest(index_dir: Path, version: str | None = None) -> dict[str, Any] | None:
    """The manifest of ``version`` (default: the current one), or ``None`` when there is no
    index yet.

    Raises ``IndexError_`` when there is something there but it is not a readable manifest.
    """
    version = version or _current_version(index_dir)
    if version is None:
        if (index_dir / CURRENT).exists() or (index_dir / MANIFEST).exists():
            raise IndexError_(f"{index_dir}: not an index folder of this format")
        return None
    path = index_dir / version / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise IndexError_(f"{path}: manifest is missing; rebuild the index") from e
    except (OSError, ValueError) as e:
        raise IndexError_(f"{path}: manifest is unreadable ({e}); rebuild the index") from e
    if not isinstance(manifest, dict):
        raise IndexError_(f"{path}: manifest is not a JSON object; rebuild the index")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(
            f"{path}: index format {manifest.get('format_version')!r}, this version of "
            f"skill-retriever reads format {FORMAT_VERSION}; rebuild the index"
        )
    return manifest


@dataclass(frozen=True)
class IndexStatus:
    """What an index folder holds, against the corpus and model it should serve."""

    folder: Path
    manifest: dict[str, Any] | None  # None: no index, or not a readable one
    stale_because: str | None  # None: up to date (files are checked when it is loaded)
    newer_writer: str | None = None  # the newer skill-retriever that wrote it, if so

    @property
    def fresh(self) -> bool:
        return self.stale_because is None


def index_status(index_dir: Path, model_id: str, fingerprint: str) -> IndexStatus:
    """Whether the index in ``index_dir`` was built from the corpus with ``fingerprint`` by
    the model ``model_id``, and if not, why (in words for a person)."""
    try:
        manifest = read_manifest(index_dir)
    except IndexError_ as e:
        return IndexStatus(index_dir, None, str(e))
    if manifest is None:
        return IndexStatus(index_dir, None, "no index yet")
    writer = newer_writer(manifest)
    if manifest.get("model") != model_id:
        why = f"built with model '{manifest.get('model')}', asked for '{model_id}'"
        return IndexStatus(index_dir, manifest, why, writer)
    if manifest.get("corpus_fingerprint") != fingerprint:
        return IndexStatus(
            index_dir, manifest, "the skill files changed since it was built", writer
        )
    return IndexStatus(index_dir, manifest, None, writer)


def load_index(index_dir: Path) -> SkillIndex:
    """Read the current version and check it whole: file hashes, counts, dimension.

    If a rebuild swaps versions and removes the one being read (two rebuilds during one
    read), the read starts again on the new current version.
    """
    for _ in range(3):
        version = _current_version(index_dir)
        try:
            return _load_version(index_dir, version)
        except IndexError_:
            if (
                version is not None
                and not (index_dir / version).exists()
                and _current_version(index_dir) != version
            ):
                continue  # replaced and removed while we read it
            raise
    raise IndexError_(f"{index_dir}: the index kept changing while being read; try again")


def _load_version(index_dir: Path, version: str | None) -> SkillIndex:
    import numpy as np

    manifest = read_manifest(index_dir, version)
    if manifest is None:
        raise IndexError_(f"no index in {index_dir}; build it with `retrieve index`")
    folder = index_dir / str(version)
    files = manifest.get("files") or {}
    for name in DATA_FILES:
        path = folder / name
        expected = (files.get(name) or {}).get("sha256")
        if not path.is_file():
            raise IndexError_(f"{path}: missing from the index; rebuild the index")
        if expected is None or file_sha256(path) != expected:
            raise IndexError_(
                f"{path}: content does not match the manifest (damaged or "
                "edited); rebuild the index"
            )
    try:
        vectors = VectorIndex.load(folder / VECTORS)
        with open(folder / DOCUMENTS, encoding="utf-8") as f:
            documents = tuple(Document.from_dict(json.loads(line)) for line in f if line.strip())
        skills = tuple(
            Skill.from_dict(d) for d in json.loads((folder / SKILLS).read_text(encoding="utf-8"))
        )
        rule_vectors = np.load(folder / RULES, allow_pickle=False)
        problems = tuple(
            LoadProblem(**p) for p in json.loads((folder / PROBLEMS).read_text(encoding="utf-8"))
        )
        lexical = LexicalIndex.load(folder)
    except Exception as e:  # noqa: BLE001 - any damage is reported the same way
        raise IndexError_(f"{folder}: cannot read the index ({e}); rebuild the index") from e

    counts = manifest.get("counts", {})
    n_rules = sum(len(s.handoffs) for s in skills)
    checks = [
        (
            vectors.ntotal == len(documents),
            f"{vectors.ntotal} vectors for {len(documents)} documents",
        ),
        (counts.get("documents") == len(documents), "document count differs from the manifest"),
        (counts.get("skills") == len(skills), "skill count differs from the manifest"),
        (
            vectors.dimension == manifest.get("dimension"),
            f"vector size {vectors.dimension} differs from manifest",
        ),
        (rule_vectors.shape[0] == n_rules, "handoff rule vectors out of step with the rules"),
        (lexical.num_docs == len(skills), "the BM25 index is out of step with the skills"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexError_(f"{folder}: {what}; rebuild the index")
    _warn_if_newer(manifest, folder)
    return SkillIndex(manifest, vectors, documents, skills, rule_vectors, lexical, problems, folder)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def newer_writer(manifest: dict[str, Any]) -> str | None:
    """The version of skill-retriever that wrote the index when it is newer than this one
    (its format is ours, so it is read, but it may hold what this version does not know)."""
    from retriever import __version__

    writer = manifest.get("package_version")
    if isinstance(writer, str) and _version_tuple(writer) > _version_tuple(__version__):
        return writer
    return None


def _warn_if_newer(manifest: dict[str, Any], folder: Path) -> None:
    writer = newer_writer(manifest)
    if writer:
        from retriever import __version__

        log.warning(
            "index %s was written by skill-retriever %s, newer than this %s; "
            "upgrade, or rebuild the index with this version",
            folder,
            writer,
            __version__,
        )
