"""What the quality benchmark and the variant experiments share.

Paths to the shared data, a query-file reader that also accepts queries with no answer
(``"relevant": []``, the off-topic set), an on-disk cache of embeddings keyed by model and
text, opening our retriever on a benchmark index, and metric tables.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.authoring.evaluate import METRICS, mean_metrics, query_metrics
from retriever.index.embed import Embedder

if TYPE_CHECKING:
    import numpy as np

    from retriever import SkillRetriever
    from retriever.index.embed import SentenceTransformerEmbedder

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"  # git-ignored: caches, indexes and JSON outputs
CACHE = RESULTS / "cache"
HELD_OUT = BENCH / "queries"


def shared_dir() -> Path:
    """``$SKILL_RETRIEVER_SHARED`` if set, else ``../shared`` beside the repository."""
    env = os.environ.get("SKILL_RETRIEVER_SHARED")
    return Path(env).expanduser() if env else REPO.parent / "shared"


def default_skills() -> Path:
    return shared_dir() / "corpora" / "spawner-skills"


def holdout_skills() -> Path:
    """The spawner corpus less exactly the entries the dev queries were taken from."""
    return shared_dir() / "corpora" / "spawner-skills-holdout"


def leak_check(skills: Path, query_files: Sequence[Path]) -> str | None:
    """Why measuring ``query_files`` against ``skills`` would read the answers, or ``None``.

    The dev queries are validation messages and ``receives_from`` contexts of their gold
    skills; the index holds validation checks, so against the full corpus each such query
    finds itself. The holdout corpus lacks exactly those entries.
    """
    dev = default_queries().resolve()
    if skills.resolve() == default_skills().resolve() and any(
        Path(f).resolve() == dev for f in query_files
    ):
        return (
            f"the dev queries were taken from {skills}'s validations and receives contexts, "
            f"which the index holds: measure them against {holdout_skills()} (the default), "
            "or pass --allow-leak to see the size of the leak"
        )
    skillmd = skillmd_dev_queries().resolve()
    full = shared_dir() / "corpora" / "agent-skills"
    if skills.resolve() == full.resolve() and any(
        Path(f).resolve() == skillmd for f in query_files
    ):
        return (
            f'the SKILL.md dev queries are lines of {skills}\'s "When to Use" sections, which '
            f"the index holds: measure them against {skillmd_holdout_skills()}"
        )
    return None


def skillmd_dev_queries() -> Path:
    """ "When to Use" lines of 283 SKILL.md skills, removed from the holdout corpus."""
    return shared_dir() / "eval" / "skillmd-dev-queries.jsonl"


def skillmd_holdout_skills() -> Path:
    """The Agent Skills corpus less exactly the lines the SKILL.md dev queries are."""
    return shared_dir() / "corpora" / "agent-skills-holdout"


def default_queries() -> Path:
    return shared_dir() / "eval" / "dev-queries.jsonl"


class BenchError(Exception):
    """A problem the user can fix (missing data, a bad query file); printed as one line."""


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def require_data(skills: Path, query_files: Sequence[Path]) -> None:
    """``BenchError`` naming the first missing input; the shared data is often absent."""
    if not skills.is_dir():
        raise BenchError(
            f"skills corpus not found at {skills} (the shared data lives at ../shared, or "
            "$SKILL_RETRIEVER_SHARED; pass --skills PATH)"
        )
    for q in query_files:
        if not q.is_file():
            raise BenchError(f"query file not found: {q}")


# -- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchQuery:
    id: str
    query: str
    relevant: tuple[str, ...]  # empty: the corpus has no answer (off-topic)
    source: str
    file: str  # the query file's stem, e.g. "dev-queries"


def read_query_file(path: Path) -> list[BenchQuery]:
    """Read ``{"id", "query", "relevant", "source"}`` lines; ``relevant`` may be empty.

    ``retriever.authoring.evaluate.read_queries`` does the checking; this adds the file's stem.
    """
    from retriever.authoring.evaluate import read_queries as read_labelled
    from retriever.errors import QueryError

    try:
        labelled = read_labelled(path, allow_unlabelled=True)
    except QueryError as e:
        raise BenchError(str(e)) from e
    return [BenchQuery(q.id, q.query, q.relevant, q.source or "-", path.stem) for q in labelled]


def read_queries(paths: Sequence[Path]) -> list[BenchQuery]:
    queries: list[BenchQuery] = []
    ids: set[str] = set()
    for p in paths:
        for q in read_query_file(p):
            if q.id in ids:
                raise BenchError(f"{p}: query id '{q.id}' is also in an earlier query file")
            ids.add(q.id)
            queries.append(q)
    return queries


def unknown_labels(queries: Iterable[BenchQuery], known: set[str]) -> list[tuple[str, str]]:
    """``(query id, skill id)`` for every label that names no skill of the corpus."""
    return [(q.id, r) for q in queries for r in q.relevant if r not in known]


# -- embeddings -----------------------------------------------------------------------------


def _cache_key(model_id: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(model_id.encode() + b"\0")
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def cached_encode(embedder, texts: Sequence[str], label: str) -> np.ndarray:
    """``embedder.encode(texts)``, cached under ``benchmarks/results/cache`` by model and text."""
    import numpy as np

    key = _cache_key(embedder.model_id, texts)
    path = CACHE / f"{label}-{key}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(texts):
            return vectors
    vectors = embedder.encode(list(texts)) if texts else np.zeros((0, 384), np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


class MemoEmbedder(Embedder):
    """An embedder that answers known texts (the benchmark's queries, encoded once in a
    batch) from memory and passes anything else to the real model.

    Our retriever encodes one query per ``search``; with this wrapper the query vectors are
    the same batch-encoded (and cached) vectors the competitors use.
    """

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self._memo: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._memo.update(zip(texts, vectors, strict=True))

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        import numpy as np

        if texts and all(t in self._memo for t in texts):
            return np.stack([self._memo[t] for t in texts])
        return self.inner.encode(texts, progress=progress)


def index_dir_for(skills: Path) -> Path:
    return RESULTS / f"index-{skills.name}"


def open_ours(skills: Path, embedder, config=None, index_dir: Path | None = None) -> SkillRetriever:
    """Our retriever over ``skills`` with its index under ``benchmarks/results``.

    The index is rebuilt when its document table is not what the current
    ``retriever.index.documents`` makes of the corpus: the retriever only checks the corpus files
    and the model, and this benchmark must measure the code as it is now.
    """
    from retriever import SkillRetriever
    from retriever.index.documents import collection_documents

    folder = index_dir or index_dir_for(skills)
    r = SkillRetriever.open(skills, index_dir=folder, embedder=embedder, config=config)
    expected = collection_documents(r.skills)
    if list(r.documents) != expected:
        print(f"  index {folder} was built from other documents; rebuilding", file=sys.stderr)
        r = SkillRetriever.open(
            skills, index_dir=folder, embedder=embedder, config=config, rebuild="always"
        )
    return r


# -- metrics and tables ---------------------------------------------------------------------

Run = dict[str, list[str]]  # query id -> ranked skill ids


def score_run(
    queries: Sequence[BenchQuery], run: Run, by: str | None = None
) -> dict[str, dict[str, float]]:
    """Mean metrics over the answerable queries: ``{"all": ..., group: ...}``.

    ``by`` is ``"source"`` or ``"file"`` to add one row per group.
    """
    groups: dict[str, list[dict[str, float]]] = {"all": []}
    for q in queries:
        if not q.relevant:
            continue
        m = query_metrics(run.get(q.id, []), q.relevant)
        groups["all"].append(m)
        if by:
            groups.setdefault(getattr(q, by), []).append(m)
    return {g: mean_metrics(ms) for g, ms in groups.items()}


def format_table(
    rows: Sequence[tuple[str, dict[str, float]]], title: str = "", first: str = "system"
) -> str:
    width = max([len(first)] + [len(name) for name, _ in rows]) + 2
    head = f"{first:<{width}}{'n':>6}" + "".join(f"{m:>9}" for m in METRICS)
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for name, m in rows:
        lines.append(f"{name:<{width}}{int(m['n']):>6}" + "".join(f"{m[k]:>9.3f}" for k in METRICS))
    return "\n".join(lines)


def rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def run_in_tree(script: str, args: list[str], who: str) -> Any:
    """The JSON that ``script`` (Python run with ``python -c``, its ``sys.argv[1:]`` being
    ``args``) prints on its last line: a fresh process from ``/``, so that it imports the
    ``retriever`` of the tree it is given, not this one. ``who`` names it in the error."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd="/"
    )
    if done.returncode != 0:
        raise SystemExit(f"{who} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
