"""Step 4 of the flow: the index on disk.

Layout of an index folder::

    DIR/
      current -> v-20261126T121500-1a2b3c   (symlink to the version in use)
      v-20261126T121500-1a2b3c/
        manifest.json     format and package version, model, dimension, metric, corpus
                          fingerprint, counts, creation time, and a sha256 of every file below
        vectors.faiss     the FAISS inner-product index of the document vectors
        documents.jsonl   the document table: one {skill_id, kind, field, text} per FAISS row
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
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.documents import Document
from retriever.errors import IndexError_, IndexWriteError
from retriever.lexical import LexicalIndex
from retriever.skill import LoadProblem, Skill

if TYPE_CHECKING:
    import faiss
    import numpy as np

    from retriever.indexer import BuiltIndex

FORMAT_VERSION = 2  # 2: BM25 arrays added
CURRENT = "current"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
DOCUMENTS = "documents.jsonl"
SKILLS = "skills.json"
RULES = "rules.npy"
PROBLEMS = "problems.json"
LEXICAL_FILES = ("bm25.npz", "bm25.json")  # see retriever.lexical
DATA_FILES = (VECTORS, DOCUMENTS, SKILLS, RULES, PROBLEMS, *LEXICAL_FILES)


@dataclass(frozen=True)
class StoredIndex:
    """An index read back from disk and checked."""

    path: Path  # the version folder
    manifest: dict[str, Any]
    index: faiss.Index
    documents: tuple[Document, ...]
    skills: tuple[Skill, ...]
    rule_vectors: np.ndarray
    problems: tuple[LoadProblem, ...]
    lexical: LexicalIndex


def _sha256(path: Path) -> str:
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


def save_index(
    index_dir: Path, built: BuiltIndex, skills: tuple[Skill, ...],
    problems: tuple[LoadProblem, ...],
) -> Path:
    """Write a new version of the index and make it current. Call under ``build_lock``.

    Any failure (disk full, read-only folder) leaves the current version as it was.
    """
    name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{name}"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        _write_version(tmp, built, skills, problems)
        os.rename(tmp, index_dir / name)
        link_tmp = index_dir / f".current-{uuid.uuid4().hex[:6]}"
        previous = _current_version(index_dir)
        if previous == CURRENT or (index_dir / CURRENT).is_dir() and not (
                index_dir / CURRENT).is_symlink():
            # a real folder named current (a copied index, or anything else): moved aside
            # as an old version, since a link cannot replace a folder
            previous = f"v-replaced-{uuid.uuid4().hex[:6]}"
            os.rename(index_dir / CURRENT, index_dir / previous)
        os.symlink(name, link_tmp)
        os.replace(link_tmp, index_dir / CURRENT)  # the atomic switch
    except (OSError, RuntimeError) as e:  # FAISS reports a failed write as RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(e, "strerror", None) or str(e).strip().splitlines()[-1]
        raise IndexWriteError(f"cannot write the index in {index_dir}: {reason}; the previous "
                              "index (if any) is unchanged") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_versions(index_dir, keep={name, previous})
    return index_dir / name


def _write_version(tmp: Path, built: BuiltIndex, skills: tuple[Skill, ...],
                   problems: tuple[LoadProblem, ...]) -> None:
    import faiss
    import numpy as np

    faiss.write_index(built.index, str(tmp / VECTORS))
    with open(tmp / DOCUMENTS, "w", encoding="utf-8") as f:
        for d in built.documents:
            f.write(json.dumps({"skill_id": d.skill_id, "kind": d.kind, "field": d.field,
                                "text": d.text}, ensure_ascii=False) + "\n")
    _write_json(tmp / SKILLS, [s.to_dict() for s in skills])
    np.save(tmp / RULES, np.asarray(built.rule_vectors, dtype=np.float32), allow_pickle=False)
    _write_json(tmp / PROBLEMS, [
        {"path": p.path, "reason": p.reason, "skill_id": p.skill_id, "skipped": p.skipped}
        for p in problems
    ])
    built.lexical.save(tmp)
    files = {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size}
             for f in DATA_FILES}
    # The manifest is written last: a folder without one is never a usable index.
    _write_json(tmp / MANIFEST, {**built.manifest, "format_version": FORMAT_VERSION,
                                 "files": files})




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


def load_index(index_dir: Path) -> StoredIndex:
    """Read the current version and check it whole: file hashes, counts, dimension.

    If a rebuild swaps versions and removes the one being read (two rebuilds during one
    read), the read starts again on the new current version.
    """
    for _ in range(3):
        version = _current_version(index_dir)
        try:
            return _load_version(index_dir, version)
        except IndexError_:
            if version is not None and not (index_dir / version).exists() \
                    and _current_version(index_dir) != version:
                continue  # replaced and removed while we read it
            raise
    raise IndexError_(f"{index_dir}: the index kept changing while being read; try again")


def _load_version(index_dir: Path, version: str | None) -> StoredIndex:
    import faiss
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
        if expected is None or _sha256(path) != expected:
            raise IndexError_(f"{path}: content does not match the manifest (damaged or "
                              "edited); rebuild the index")
    try:
        index = faiss.read_index(str(folder / VECTORS))
        if hasattr(index, "nprobe"):  # an IVF index: reconstruct by row needs the map
            from retriever.indexer import IVF_PROBES

            index.nprobe = IVF_PROBES
            index.make_direct_map()
        with open(folder / DOCUMENTS, encoding="utf-8") as f:
            documents = tuple(Document(**json.loads(line)) for line in f if line.strip())
        skills = tuple(Skill.from_dict(d) for d in
                       json.loads((folder / SKILLS).read_text(encoding="utf-8")))
        rule_vectors = np.load(folder / RULES, allow_pickle=False)
        problems = tuple(LoadProblem(**p) for p in
                         json.loads((folder / PROBLEMS).read_text(encoding="utf-8")))
        lexical = LexicalIndex.load(folder)
    except Exception as e:  # noqa: BLE001 - any damage is reported the same way
        raise IndexError_(f"{folder}: cannot read the index ({e}); rebuild the index") from e

    counts = manifest.get("counts", {})
    n_rules = sum(len(s.handoffs) for s in skills)
    checks = [
        (index.ntotal == len(documents), f"{index.ntotal} vectors for {len(documents)} documents"),
        (counts.get("documents") == len(documents), "document count differs from the manifest"),
        (counts.get("skills") == len(skills), "skill count differs from the manifest"),
        (index.d == manifest.get("dimension"), f"vector size {index.d} differs from manifest"),
        (rule_vectors.shape[0] == n_rules, "handoff rule vectors out of step with the rules"),
        (lexical.num_docs == len(skills), "the BM25 index is out of step with the skills"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexError_(f"{folder}: {what}; rebuild the index")
    return StoredIndex(folder, manifest, index, documents, skills, rule_vectors, problems,
                       lexical)
