"""Step 4 of the flow: the index on disk.

Layout of an index folder::

    DIR/
      current -> v-20261126T121500-1a2b3c   (symlink to the version in use)
      v-20261126T121500-1a2b3c/
        manifest.json     format and package version, model, dimension, metric, corpus
                          fingerprint, counts, creation time, and a sha256 of every file below
        vectors.faiss     the FAISS inner-product index of the document vectors
        documents.bin     the document table as columns (``arrays_file``): per row its
                          skill, kind and item numbers, and its field and text (UTF-8 with
                          end offsets)
        skills.z          the normalised skills, each a zlib-compressed JSON object, back to
                          back (so a query never re-parses YAML, and reads only the skills
                          it returns; compressed, there are fewer bytes to read and hash)
        skill_keys.json   per skill its id, triggers and number of handoff rules (what a
                          query needs of every skill) and where it ends in skills.z
        rules.bin         one vector per handoff rule, for natural-language ``when`` rules
                          (the rows that are not zero: keyword rules have no vector)
        problems.json     the load report's problems
        bm25.bin          the BM25 index of the skills (``lexical``), an arrays file
      .lock               held while a build writes

The manifest also keeps the corpus record (``load.changes``): the stamps and hashes that
tell, on open, whether the skill files are still those indexed.

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
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import IndexError_, IndexWriteError
from retriever.index.arrays import arrays_file, read_arrays_file
from retriever.index.documents import Document, recipe
from retriever.index.lexical import FILE as BM25
from retriever.index.lexical import LexicalIndex
from retriever.index.manifest import FileEntry, Manifest
from retriever.index.tables import (
    DocumentTable,
    SkillIndex,
    SkillTable,
    keys_from_json,
    keys_to_json,
)
from retriever.index.vectors import FILE as VECTORS
from retriever.index.vectors import VectorIndex
from retriever.skill import LoadProblem

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# 2: BM25 arrays added; 3: documents carry their item; 4: documents as columns, skills one a
# line with their keys apart (read when asked for), the corpus record in the manifest;
# 5: BM25 in one arrays file (read once, with the rest), load problems with their code
FORMAT_VERSION = 5
CURRENT = "current"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.bin"
SKILLS = "skills.z"
SKILL_KEYS = "skill_keys.json"
RULES = "rules.bin"
PROBLEMS = "problems.json"
DATA_FILES = (VECTORS, DOCUMENTS, SKILLS, SKILL_KEYS, RULES, PROBLEMS, BM25)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content, as the manifest records it.

    Read through one reused buffer: the FAISS file is tens of megabytes and only hashed here
    (its library reads it), and a copy would cost the kernel a fresh page per 4 KB of it.
    Not through a memory map: a file truncated meanwhile would kill the process (SIGBUS),
    where a short read only makes the hash differ.
    """
    h = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
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


def _write_version(tmp: Path, index: SkillIndex) -> Manifest:
    """Write every file of ``index`` into ``tmp``; returns the manifest written last."""
    import numpy as np

    index.vectors.save(tmp / VECTORS)
    skills = SkillTable.of(index.skills)
    _write_documents(tmp / DOCUMENTS, index.documents, skills.ids)
    _write_skills(tmp, skills)
    _write_bytes(tmp / RULES, _rules_file(np.asarray(index.rule_vectors, dtype=np.float32)))
    _write_json(
        tmp / PROBLEMS,
        [
            {
                "path": p.path,
                "reason": p.reason,
                "skill_id": p.skill_id,
                "skipped": p.skipped,
                "dropped": p.dropped,
                "code": p.code,
            }
            for p in index.problems
        ],
    )
    _write_bytes(tmp / BM25, index.lexical.to_bytes())
    files = {f: FileEntry(file_sha256(tmp / f), (tmp / f).stat().st_size) for f in DATA_FILES}
    # The manifest is written last: a folder without one is never a usable index.
    manifest = index.manifest.with_files(files, FORMAT_VERSION)
    _write_json(tmp / MANIFEST, manifest.to_json())
    return manifest


def _write_documents(path: Path, documents: Sequence[Document], skill_ids: Sequence[str]) -> None:
    import numpy as np

    table = documents if isinstance(documents, DocumentTable) else None
    if table is None or table.skill_ids != tuple(skill_ids):
        table = DocumentTable.of(list(documents), skill_ids)
    columns = {
        "skill": table.skill,
        "kind": table.kind,
        "item": table.item,
        "field_ends": table.field_ends,
        "text_ends": table.text_ends,
        "fields": np.frombuffer(table.fields, dtype=np.uint8),
        "texts": np.frombuffer(table.texts, dtype=np.uint8),
    }
    _write_bytes(path, arrays_file(columns, {"kinds": list(table.kinds)}))


def _rules_file(vectors: np.ndarray) -> bytes:
    """The rule vectors, less their zero rows: keyword rules are matched by their words, and
    most rules of real collections are keyword rules."""
    import numpy as np

    rows = np.flatnonzero(np.any(vectors != 0, axis=1))
    return arrays_file({"rows": rows, "vectors": vectors[rows]}, {"shape": list(vectors.shape)})


def _read_rules(data: bytes) -> np.ndarray:
    import numpy as np

    meta, arrays = read_arrays_file(data)
    vectors = np.zeros(meta["shape"], dtype=np.float32)  # untouched zero pages cost nothing
    vectors[arrays["rows"]] = arrays["vectors"]
    return vectors


def _write_skills(folder: Path, skills: SkillTable) -> None:
    """Each skill compressed on its own (``SkillTable.stored`` reads one), and apart what a
    query needs of every one."""
    blocks = [
        zlib.compress(json.dumps(s.to_dict(), ensure_ascii=False).encode(), 1) for s in skills
    ]
    ends, end = [], 0
    for block in blocks:
        end += len(block)
        ends.append(end)
    _write_bytes(folder / SKILLS, b"".join(blocks))
    _write_json(folder / SKILL_KEYS, {**keys_to_json(skills.keys), "ends": ends})


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


def read_manifest(index_dir: Path, version: str | None = None) -> Manifest | None:
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
    try:
        return Manifest.from_json(manifest)
    except ValueError as e:
        raise IndexError_(f"{path}: manifest is malformed ({e}); rebuild the index") from e


@dataclass(frozen=True)
class IndexStatus:
    """What an index folder holds, against the corpus and model it should serve."""

    folder: Path
    manifest: Manifest | None  # None: no index, or not a readable one
    stale_because: str | None  # None: up to date (files are checked when it is loaded)
    newer_writer: str | None = None  # the newer skill-retriever that wrote it, if so
    version: str | None = None  # the version folder whose manifest was read

    @property
    def fresh(self) -> bool:
        return self.stale_because is None


def index_status(
    index_dir: Path,
    model_id: str,
    fingerprint: str | Callable[[Manifest], str],
    variant: str | Callable[[], str] | None = None,
) -> IndexStatus:
    """Whether the index in ``index_dir`` was built from the corpus with ``fingerprint`` by
    the model ``model_id`` run as ``variant`` (``Embedder.variant``; ``None``: not
    checked), and if not, why (in words for a person).

    ``fingerprint`` may be a function of the manifest, called only when the model matches:
    the manifest's record of the corpus (``load.changes``) can spare the hashing. So may
    ``variant``: knowing it can mean making the model's export.
    """
    version = _current_version(index_dir)
    try:
        manifest = read_manifest(index_dir, version)
    except IndexError_ as e:
        return IndexStatus(index_dir, None, str(e))
    if manifest is None:
        return IndexStatus(index_dir, None, "no index yet")
    writer = newer_writer(manifest)
    if manifest.model != model_id:
        why = f"built with model '{manifest.model}', asked for '{model_id}'"
        return IndexStatus(index_dir, manifest, why, writer, version)
    if callable(variant):
        variant = variant()
    if variant is not None and manifest.variant != variant:
        why = f"built with the model's '{manifest.variant}' vectors, asked for '{variant}'"
        return IndexStatus(index_dir, manifest, why, writer, version)
    if manifest.documents != (made := recipe()):
        built = manifest.documents
        why = f"built from other documents ('{built}'); this version makes '{made}'"
        return IndexStatus(index_dir, manifest, why, writer, version)
    if callable(fingerprint):
        fingerprint = fingerprint(manifest)
    if manifest.corpus_fingerprint != fingerprint:
        return IndexStatus(
            index_dir, manifest, "the skill files changed since it was built", writer, version
        )
    return IndexStatus(index_dir, manifest, None, writer, version)


def load_index(
    index_dir: Path, status: IndexStatus | None = None, prefetch: Prefetch | None = None
) -> SkillIndex:
    """Read the current version and check it whole: file hashes, counts, dimension.

    ``status``: one just made (``index_status``); its manifest is used when it is the
    current version's, rather than read again. ``prefetch``: the files already read and
    hashed, used when they are the current version's.

    If a rebuild swaps versions and removes the one being read (two rebuilds during one
    read), the read starts again on the new current version.
    """
    for _ in range(3):
        version = _current_version(index_dir)
        known = status.manifest if status is not None and status.version == version else None
        try:
            return _load_version(index_dir, version, known, prefetch)
        except IndexError_:
            if (
                version is not None
                and not (index_dir / version).exists()
                and _current_version(index_dir) != version
            ):
                continue  # replaced and removed while we read it
            raise
    raise IndexError_(f"{index_dir}: the index kept changing while being read; try again")


class Prefetch:
    """The current version's data files read and hashed on a thread of their own.

    Started before the caller imports its native libraries (a quarter of a second of one
    core's work), so that reading and hashing the files, the larger part of opening a large
    index, happen meanwhile. The thread runs the standard library only (see ``api``: two
    threads must never import numpy at once), and ``_checked_data`` still compares every
    hash with the manifest before anything is parsed.
    """

    def __init__(self, index_dir: Path) -> None:
        version = _current_version(index_dir)
        self.folder = None if version is None else index_dir / version
        # per file: its bytes (None for the FAISS file, which its library reads) and sha256
        self.read: dict[str, tuple[bytes | None, str]] = {}
        self._thread = threading.Thread(target=self._run, name="index-prefetch", daemon=True)
        if self.folder is not None:
            self._thread.start()

    def _run(self) -> None:
        assert self.folder is not None
        for name in DATA_FILES:
            try:
                self.read[name] = _read_and_hash(self.folder / name)
            except OSError:
                return  # read again by the caller, which says what is wrong

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()

    def of(self, folder: Path) -> dict[str, tuple[bytes | None, str]]:
        """What was read of ``folder``: nothing when it is not the version prefetched."""
        self.join()
        return self.read if folder == self.folder else {}


def _read_and_hash(path: Path) -> tuple[bytes | None, str]:
    """A data file's bytes and sha256; the FAISS file is hashed only (its library reads it)."""
    if path.name == VECTORS:
        return None, file_sha256(path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _checked_data(
    folder: Path, manifest: Manifest, prefetch: Prefetch | None = None
) -> dict[str, bytes]:
    """Every data file's bytes (but the FAISS file's), each checked against its sha256 in
    the manifest; ``IndexError_`` on any difference."""
    files = manifest.files
    read = prefetch.of(folder) if prefetch is not None else {}
    data = {}
    for name in DATA_FILES:
        path = folder / name
        entry = files.get(name)
        expected = entry.sha256 if entry is not None else None
        if not path.is_file():
            raise IndexError_(f"{path}: missing from the index; rebuild the index")
        try:
            content, got = read[name] if name in read else _read_and_hash(path)
        except OSError as e:
            raise IndexError_(f"{path}: unreadable ({e}); rebuild the index") from e
        if expected is None or got != expected:
            raise IndexError_(
                f"{path}: content does not match the manifest (damaged or "
                "edited); rebuild the index"
            )
        if content is not None:
            data[name] = content
    return data


def _read_documents(data: bytes, skill_ids: Sequence[str]) -> DocumentTable:
    meta, arrays = read_arrays_file(data)
    columns = {k: arrays[k] for k in ("skill", "kind", "item", "field_ends", "text_ends")}
    fields, texts = arrays["fields"].data, arrays["texts"].data
    return DocumentTable(skill_ids, [str(k) for k in meta["kinds"]], columns, fields, texts)


def _read_skills(keys_data: bytes, lines: bytes) -> tuple[SkillTable, list[int]]:
    """The skill table, and where each skill's line ends."""
    data = json.loads(keys_data)
    ends = [int(e) for e in data["ends"]]
    keys, rule_counts = keys_from_json(data)
    return SkillTable.stored(keys, rule_counts, lines, ends), ends


def _load_version(
    index_dir: Path,
    version: str | None,
    manifest: Manifest | None = None,
    prefetch: Prefetch | None = None,
) -> SkillIndex:
    manifest = manifest or read_manifest(index_dir, version)
    if manifest is None:
        raise IndexError_(f"no index in {index_dir}; build it with `retrieve index`")
    folder = index_dir / str(version)
    data = _checked_data(folder, manifest, prefetch)
    try:
        vectors = VectorIndex.load(folder / VECTORS)
        skills, ends = _read_skills(data[SKILL_KEYS], data[SKILLS])
        documents = _read_documents(data[DOCUMENTS], skills.ids)
        rule_vectors = _read_rules(data[RULES])
        problems = tuple(LoadProblem(**p) for p in json.loads(data[PROBLEMS]))
        lexical = LexicalIndex.from_bytes(data[BM25])
    except Exception as e:  # noqa: BLE001 - any damage is reported the same way
        raise IndexError_(f"{folder}: cannot read the index ({e}); rebuild the index") from e

    counts = manifest.counts
    n_rules = sum(skills.rule_counts)
    checks = [
        (
            vectors.ntotal == len(documents),
            f"{vectors.ntotal} vectors for {len(documents)} documents",
        ),
        (counts.documents == len(documents), "document count differs from the manifest"),
        (counts.skills == len(skills), "skill count differs from the manifest"),
        (
            len(ends) == len(skills) and (ends[-1] if ends else 0) == len(data[SKILLS]),
            "the skills are out of step with their keys",
        ),
        (
            vectors.dimension == manifest.dimension,
            f"vector size {vectors.dimension} differs from manifest",
        ),
        (rule_vectors.shape[0] == n_rules, "handoff rule vectors out of step with the rules"),
        (lexical.num_docs == len(skills), "the BM25 index is out of step with the skills"),
    ]
    inconsistent = documents.check()
    checks.append((inconsistent is None, str(inconsistent)))
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


def newer_writer(manifest: Manifest) -> str | None:
    """The version of skill-retriever that wrote the index when it is newer than this one
    (its format is ours, so it is read, but it may hold what this version does not know)."""
    from retriever import __version__

    writer = manifest.package_version
    if _version_tuple(writer) > _version_tuple(__version__):
        return writer
    return None


def _warn_if_newer(manifest: Manifest, folder: Path) -> None:
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
