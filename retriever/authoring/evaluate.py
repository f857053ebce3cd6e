"""Ranking metrics over labelled queries (the ``dev-queries.jsonl`` format).

Query file: one JSON object a line, ``{"id", "query", "relevant": [skill ids], "source"}``.
Metrics, averaged over queries: ``R@k`` the share of a query's relevant skills in its top k;
``MRR@10`` the reciprocal rank of the first relevant skill (0 past rank 10); ``nDCG@10`` with
binary gains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retriever.errors import QueryError

METRICS = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")


@dataclass(frozen=True)
class LabelledQuery:
    id: str
    query: str
    relevant: tuple[str, ...]
    source: str = ""


def read_queries(path: str | Path, *, allow_unlabelled: bool = False) -> list[LabelledQuery]:
    """Read a query file; ``QueryError`` names the file and line of the first bad entry.

    ``allow_unlabelled`` accepts ``"relevant": []`` (queries nothing should answer, for
    measuring refusals).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        raise QueryError(f"query file not found: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise QueryError(f"cannot read query file {path}: {e}") from e
    queries, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise QueryError(f"{path}:{n}: not valid JSON ({e})") from e
        if not isinstance(obj, dict):
            raise QueryError(f"{path}:{n}: expected a JSON object")
        q, rel = obj.get("query"), obj.get("relevant")
        if not isinstance(q, str) or not q.strip():
            raise QueryError(f"{path}:{n}: 'query' must be a non-empty string")
        if (
            not isinstance(rel, list)
            or not (rel or allow_unlabelled)
            or not all(isinstance(r, str) for r in rel)
        ):
            what = "a list" if allow_unlabelled else "a non-empty list"
            raise QueryError(f"{path}:{n}: 'relevant' must be {what} of skill ids")
        qid = str(obj.get("id", f"line-{n}"))
        if qid in seen:
            raise QueryError(f"{path}:{n}: duplicate query id '{qid}'")
        seen.add(qid)
        queries.append(LabelledQuery(qid, q.strip(), tuple(rel), str(obj.get("source", ""))))
    if not queries:
        raise QueryError(f"{path}: no queries in the file")
    return queries


def query_metrics(ranked: Sequence[str], relevant: Sequence[str]) -> dict[str, float]:
    rel = set(relevant)
    out = {f"R@{k}": len(rel & set(ranked[:k])) / len(rel) for k in (1, 5, 10)}
    first = next((i for i, s in enumerate(ranked[:10]) if s in rel), None)
    out["MRR@10"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(1.0 / math.log2(i + 2) for i, s in enumerate(ranked[:10]) if s in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), 10)))
    out["nDCG@10"] = dcg / ideal
    return out


def mean_metrics(per_query: Sequence[dict[str, float]]) -> dict[str, float]:
    n = len(per_query)
    out: dict[str, float] = {"n": n}
    for m in METRICS:
        out[m] = sum(q[m] for q in per_query) / n if n else 0.0
    return out


@dataclass(frozen=True)
class EvalReport:
    metrics: dict[str, float]
    by_source: dict[str, dict[str, float]]
    run: dict[str, list[str]]  # query id -> ranked skill ids

    def to_dict(self) -> dict:
        return {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in self.metrics.items()},
            "by_source": {
                s: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
                for s, m in self.by_source.items()
            },
        }


def evaluate(
    queries: Sequence[LabelledQuery],
    rank_fn: Callable[[str], list[str]],
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Run ``rank_fn`` (query text -> ranked skill ids) on each query and average the metrics."""
    run: dict[str, list[str]] = {}
    per_query: list[dict[str, float]] = []
    by_source: dict[str, list[dict[str, float]]] = {}
    for i, q in enumerate(queries):
        ranked = rank_fn(q.query)
        run[q.id] = ranked
        m = query_metrics(ranked, q.relevant)
        per_query.append(m)
        by_source.setdefault(q.source or "-", []).append(m)
        if progress:
            progress(i + 1)
    return EvalReport(
        mean_metrics(per_query),
        {s: mean_metrics(ms) for s, ms in sorted(by_source.items())},
        run,
    )
