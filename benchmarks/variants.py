"""Variants of our ranking, tuned on one half of the dev skills, reported on the other half
and on the hand-written held-out sets. Nothing here changes ``retriever/``: every ranking
measured is the library's own, ``retriever.search.rank.candidates`` then
``retriever.search.rank.rank`` under one ``ScoringConfig`` per variant.

Run from the repository root::

    python -m benchmarks.variants                 # everything, ~30 s with warm caches
    python -m benchmarks.variants --no-reembed    # skip the document-text variants (their
                                                  # first run embeds ~10k documents, ~2 min)

What a query needs is computed once: its text as the library cleans it, its vector (batch
encoded, cached, and answered from memory by ``MemoEmbedder``), its nearest documents for
each candidate count (``VectorIndex.search``, as ``retriever.search.searcher`` calls it), its
matched triggers (``retriever.search.rank.Triggers``, as the query path finds them) and every
skill's BM25
score (the index's ``lexical.scores``). A variant is then a loop over the queries. Groups:

- ``dev-A`` / ``dev-B``: the dev queries split by gold skill (a hash of the skill id), so no
  skill is in both halves. Every parameter is chosen on ``dev-A`` only: a change of default
  must win there by more than ``EPS`` MRR@10;
- ``symptoms``, ``situations``: ``benchmarks/queries/*.jsonl``, never used for choosing;
- ``offtopic``: queries with no answer, for the no-match threshold only.

Families: aggregation and candidate count; per-kind weights; keyword triggers and the weak
threshold; the lexical (BM25) term; benchmark-side fusions of two library rankings (RRF,
min-max; reported, never chosen: no ``ScoringConfig`` expresses them); document texts
prefixed with the skill name (re-embedding); no-match thresholds for the library's rule;
where the returned patterns come from. Printed, and written to
``benchmarks/results/variants.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as ``python benchmarks/variants.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    BenchQuery,
    MemoEmbedder,
    cached_encode,
    default_queries,
    fail,
    holdout_skills,
    leak_check,
    open_ours,
    read_queries,
    require_data,
    unknown_labels,
)
from benchmarks.quality import DENSE_ONLY  # noqa: E402
from retriever.authoring.evaluate import mean_metrics, query_metrics  # noqa: E402
from retriever.index.center import center_of  # noqa: E402
from retriever.index.documents import ANTI_PATTERN, KINDS, PATTERN, TRIGGER  # noqa: E402
from retriever.search import rank  # noqa: E402
from retriever.search.query import clean_query  # noqa: E402
from retriever.search.rank import KeywordHit, Ranking, RankingTables, ScoringConfig, Triggers  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

    from retriever import SkillRetriever
    from retriever.present.results import SearchResult

PROG = "variants"
K = 10
EVAL_GROUPS = ("dev-A", "dev-B", "symptoms", "situations")
REPORT_GROUPS = (*EVAL_GROUPS, "dev")
EPS = 0.005  # a change of default must win on dev-A by more than this MRR@10
DEFAULT = ScoringConfig()
# The first end-to-end ranking (dense only: best document + 0.1 x the next two, no kind
# weights, no BM25), the reference the README's early rows were measured against.
FIRST = ScoringConfig(**DENSE_ONLY)

Near = list[tuple["np.ndarray", "np.ndarray"]]  # per query: (cosines, document rows)


# -- what every variant ranks from ------------------------------------------------------------


def dev_half(skill_id: str) -> str:
    return "dev-A" if hashlib.sha256(skill_id.encode()).digest()[0] % 2 == 0 else "dev-B"


@dataclass(frozen=True)
class Query:
    """One benchmark query with the inputs the ranking takes that do not depend on a config."""

    id: str
    raw: str  # as the query file has it
    text: str  # as the library cleans it
    relevant: tuple[str, ...]
    group: str
    keywords: list[KeywordHit]
    bm25: np.ndarray  # every skill's BM25 score, in skill order


class Bench:
    """The opened index and the queries, with the per-query work done once.

    ``run(config)`` is the library's ranking of every query under ``config``: a loop of
    ``rank.candidates`` + ``rank.rank`` over nearest documents read once per candidate count.
    """

    def __init__(
        self,
        retriever: SkillRetriever,
        queries: Sequence[BenchQuery],
        vectors: np.ndarray,
        dev_stem: str,
    ) -> None:
        import numpy as np

        index = retriever.index
        self.retriever = retriever
        self.index = index
        self.ids = [s.id for s in index.skills]
        self.skills = {s.id: s for s in index.skills}
        triggers = Triggers(index.skills)  # the matcher the query path uses
        self.queries: list[Query] = []
        for q in queries:
            text = clean_query(q.query)[0]
            hits = triggers.find(text)
            if q.file == dev_stem:
                group = dev_half(q.relevant[0])
            else:
                group = q.file if q.relevant else "offtopic"
            self.queries.append(
                Query(q.id, q.query, text, q.relevant, group, hits, index.lexical.scores(text))
            )
        self.vectors = vectors
        groups: dict[str, list[int]] = {}
        for qi, q in enumerate(self.queries):
            groups.setdefault(q.group, []).append(qi)
            if q.group.startswith("dev-"):
                groups.setdefault("dev", []).append(qi)
        off = groups.get("offtopic", [])
        if off:
            groups["offtopic-A"], groups["offtopic-B"] = off[0::2], off[1::2]
        self.groups = {g: np.asarray(v, dtype=np.int64) for g, v in groups.items()}
        self._near: dict[int, Near] = {}
        self._tables: dict[ScoringConfig, RankingTables] = {}
        self._runs: dict[tuple[ScoringConfig, int], list[list[str]]] = {}
        self.ranking_seconds = 0.0
        self.rankings_made = 0

    @property
    def ntotal(self) -> int:
        return self.index.vectors.ntotal

    def near(self, n: int) -> Near:
        """Each query's ``n`` nearest documents, as ``Searcher.nearest`` reads them."""
        n = min(n, self.ntotal)
        if n not in self._near:
            self._near[n] = [self.index.vectors.search(v, n)[:2] for v in self.vectors]
        return self._near[n]

    def centers(self) -> list[float]:
        """Each query's cosine with the collection's center, as ``Searcher.nearest`` reads
        it (the confidence's evidence)."""
        if not hasattr(self, "_centers"):
            v = self.index.vectors
            center = center_of(v.vectors, v.ntotal, v.dimension)
            self._centers = [float(center @ q) for q in self.vectors]
        return self._centers

    def tables(self, config: ScoringConfig) -> RankingTables:
        if config not in self._tables:
            self._tables[config] = RankingTables(self.index.documents, self.ids, config)
        return self._tables[config]

    def rankings(
        self, config: ScoringConfig, k: int = K, near: Near | None = None
    ) -> list[Ranking]:
        """The library's ranking of every query (``near``: other nearest documents)."""
        t = time.perf_counter()
        tables = self.tables(config)
        near = self.near(config.candidates) if near is None else near
        centers = self.centers()
        out = [
            rank.rank(
                rank.candidates(scores, rows, tables, config, c),
                q.keywords,
                q.bm25,
                tables,
                config,
                k,
            )
            for q, (scores, rows), c in zip(self.queries, near, centers, strict=True)
        ]
        self.ranking_seconds += time.perf_counter() - t
        self.rankings_made += 1
        return out

    def run(self, config: ScoringConfig, k: int = K) -> list[list[str]]:
        """Ranked skill ids of every query under ``config`` (memoised)."""
        if (config, k) not in self._runs:
            self._runs[config, k] = [
                [r.skill_id for r in ranking.ranked] for ranking in self.rankings(config, k)
            ]
        return self._runs[config, k]

    def bm25_run(self) -> list[list[str]]:
        """BM25 alone: skills with a positive score, best first (equal scores in skill order)."""
        import numpy as np

        out = []
        for q in self.queries:
            order = np.argsort(-q.bm25, kind="stable")[:K]
            out.append([self.ids[i] for i in order if q.bm25[i] > 0])
        return out


def load(args: argparse.Namespace) -> Bench:
    retriever, queries, vectors = load_queries_and_vectors(args)
    return Bench(retriever, queries, vectors, args.dev.stem)


def load_queries_and_vectors(
    args: argparse.Namespace,
) -> tuple[SkillRetriever, list[BenchQuery], np.ndarray]:
    """Our retriever over ``args.skills`` (index under benchmarks/results, or ``args.index``),
    the queries of ``args.dev``, ``args.held_out`` and ``args.offtopic``, and their cached
    vectors, which the retriever's embedder answers from memory."""
    from retriever.index.embed import SentenceTransformerEmbedder

    files = [args.dev, *args.held_out] + ([args.offtopic] if args.offtopic else [])
    queries = read_queries(files)
    embedder = MemoEmbedder(SentenceTransformerEmbedder())
    texts = [clean_query(q.query)[0] for q in queries]  # what the library embeds
    vectors = cached_encode(embedder.inner, texts, "queries")
    embedder.remember(texts, vectors)
    retriever = open_ours(args.skills, embedder, index_dir=args.index)
    unknown = unknown_labels(queries, {s.id for s in retriever.skills})
    if unknown:
        print(
            f"  {len(unknown)} labels name no skill of the corpus, e.g. {unknown[0]}",
            file=sys.stderr,
        )
    return retriever, queries, vectors


# -- rows, tables and the choosing rule -------------------------------------------------------


def label(config: ScoringConfig, base: ScoringConfig = DEFAULT) -> str:
    """What ``config`` changes from ``base``, e.g. ``aggregation=best+, second_weight=0.2``."""
    parts = []
    for f in fields(config):
        value = getattr(config, f.name)
        if value == getattr(base, f.name):
            continue
        if f.name == "kind_weights":
            value = "{" + ", ".join(f"{k}: {w:g}" for k, w in value) + "}"
        parts.append(f"{f.name}={value}")
    return ", ".join(parts) or "defaults"


def with_kind_weight(config: ScoringConfig, kind: str, weight: float) -> ScoringConfig:
    """``config`` with ``kind``'s weight set; weights in ``KINDS`` order, 1.0 left out (so
    equal weightings are equal configs)."""
    weights = dict(config.kind_weights) | {kind: weight}
    return replace(
        config, kind_weights=tuple((k, weights[k]) for k in KINDS if weights.get(k, 1.0) != 1.0)
    )


@dataclass
class Row:
    family: str
    variant: str
    ranked: list[list[str]] = field(repr=False)
    per_query: list[dict[str, float] | None] = field(repr=False)  # None: no answer
    results: dict[str, dict[str, float]]
    config: ScoringConfig | None = None  # None: not a library configuration
    chosen: bool = False

    def mrr(self, rows: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.array([self.per_query[i]["MRR@10"] for i in rows])

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "variant": self.variant,
            "chosen": self.chosen,
            "config": asdict(self.config) if self.config else None,
            "results": {
                g: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
                for g, m in self.results.items()
            },
        }


class Report:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.rows: list[Row] = []

    def add(
        self,
        family: str,
        variant: str,
        ranked: list[list[str]],
        config: ScoringConfig | None = None,
        record: bool = True,
    ) -> Row:
        per = [
            query_metrics(r[:K], q.relevant) if q.relevant else None
            for q, r in zip(self.bench.queries, ranked, strict=True)
        ]
        results = {
            g: mean_metrics([per[i] for i in self.bench.groups[g]])
            for g in REPORT_GROUPS
            if g in self.bench.groups
        }
        row = Row(family, variant, ranked, per, results, config)
        if record:
            self.rows.append(row)
        return row

    def ours(
        self, family: str, config: ScoringConfig, variant: str | None = None, record: bool = True
    ) -> Row:
        return self.add(family, variant or label(config), self.bench.run(config), config, record)

    def family(self, family: str) -> list[Row]:
        return [r for r in self.rows if r.family == family]

    def print_family(self, family: str, baseline: Row | None = None, top: int = 0) -> None:
        rows = self.family(family)
        note = ""
        if top and len(rows) > top:
            rows = sorted(rows, key=lambda r: key(r.results), reverse=True)[:top]
            note = f" (top {top} of {len(self.family(family))} by dev-A; all in the JSON)"
        print(f"\n== {family}{note}")
        print(table(rows, baseline))


NAME_WIDTH = 66


def table(rows: Sequence[Row], baseline: Row | None = None) -> str:
    groups = [g for g in EVAL_GROUPS if rows and g in rows[0].results]
    head = f" {'variant (MRR@10/R@5)':<{NAME_WIDTH}}" + "".join(f"{g:>14}" for g in groups)
    lines = [head, "-" * len(head)]
    for r in ([baseline] if baseline else []) + list(rows):
        cells = [f"{r.results[g]['MRR@10']:.3f}/{r.results[g]['R@5']:.3f}" for g in groups]
        mark = "*" if r.chosen else " "
        lines.append(
            f"{mark}{r.variant[:NAME_WIDTH]:<{NAME_WIDTH}}" + "".join(f"{c:>14}" for c in cells)
        )
    return "\n".join(lines)


def key(results: dict[str, dict[str, float]], group: str = "dev-A") -> tuple[float, float]:
    return (round(results[group]["MRR@10"], 4), round(results[group]["R@5"], 4))


def pick(rows: Sequence[Row], incumbent: Row) -> Row:
    """The row with the best dev-A MRR@10 (then R@5), marked as chosen; the incumbent (today's
    value) is kept unless the best beats it by more than ``EPS``: smaller gaps are noise."""
    best = max(rows, key=lambda r: key(r.results))
    if key(best.results)[0] - key(incumbent.results)[0] <= EPS:
        best = incumbent
    best.chosen = True
    return best


def sweep(
    rep: Report, family: str, configs: Sequence[ScoringConfig], incumbent: Row, top: int = 0
) -> Row:
    """Measure ``configs`` (the incumbent's among them), choose by ``pick``, print."""
    rows, seen = [], set()
    for c in [incumbent.config, *configs]:
        if c not in seen:
            seen.add(c)
            rows.append(rep.ours(family, c))
    chosen = pick(rows, rows[0])
    rep.print_family(family, top=top)
    return chosen


# -- the experiment ---------------------------------------------------------------------------


def sanity(bench: Bench, searched: list[SearchResult]) -> dict:
    """With the default config, our loop must rank like ``SkillRetriever.search``."""
    mine = bench.rankings(DEFAULT)
    out: dict = {}
    print()
    for name, labelled in (("labelled (dev, symptoms, situations)", True), ("offtopic", False)):
        rows = [qi for qi, q in enumerate(bench.queries) if bool(q.relevant) == labelled]
        if not rows:
            continue
        same = [
            qi for qi in rows if searched[qi].skill_ids[:K] == [r.skill_id for r in mine[qi].ranked]
        ]
        flags = [
            qi
            for qi in rows
            if (searched[qi].no_match, searched[qi].weak) == (mine[qi].no_match, mine[qi].weak)
        ]
        differ = [bench.queries[qi].id for qi in sorted(set(rows) - set(same))]
        out[name] = {
            "queries": len(rows),
            "same_top10": len(same),
            "same_no_match_and_weak": len(flags),
            "differ": differ,
        }
        print(
            f"sanity, {name}: the library loop ranks like SkillRetriever.search on "
            f"{len(same)}/{len(rows)} queries (no-match and weak flags: {len(flags)}/"
            f"{len(rows)})"
        )
        for qid in differ[:10]:
            print(f"   differs: {qid}")
    return out


def fusions(rep: Report, bench: Bench, current: Row) -> None:
    """Reciprocal-rank and min-max fusion of two library rankings: the semantic one (the
    current config without its lexical term, every candidate skill) and BM25 alone."""
    import numpy as np

    fam = "fusions of two library rankings (benchmark side; not choosable)"
    sem_cfg = replace(current.config, lexical_weight=0.0)
    semantic = bench.rankings(sem_cfg, k=len(bench.ids))
    n = len(bench.ids)
    number = {sid: i for i, sid in enumerate(bench.ids)}
    id_rank = np.argsort(np.argsort(np.array(bench.ids)))  # equal fused scores rank by id

    def ordered(fused: np.ndarray, present: np.ndarray) -> list[str]:
        idx = np.flatnonzero(present)
        order = idx[np.lexsort((id_rank[idx], -fused[idx]))]
        return [bench.ids[i] for i in order[:K]]

    sem_lists = [np.array([number[r.skill_id] for r in s.ranked], dtype=np.int64) for s in semantic]
    bm_lists = [
        np.flatnonzero(q.bm25 > 0)[np.argsort(-q.bm25[q.bm25 > 0], kind="stable")]
        for q in bench.queries
    ]
    rep.add(
        fam, f"library ranking: {label(current.config)}", bench.run(current.config), current.config
    )
    rep.add(fam, f"library ranking without BM25: {label(sem_cfg)}", bench.run(sem_cfg), sem_cfg)
    for k in (10, 30, 60):
        for w in (0.5, 1.0):
            ranked = []
            for s, b in zip(sem_lists, bm_lists, strict=True):
                fused, present = np.zeros(n), np.zeros(n, dtype=bool)
                fused[s] += 1.0 / (k + 1.0 + np.arange(len(s)))
                fused[b] += w / (k + 1.0 + np.arange(len(b)))
                present[s] = present[b] = True
                ranked.append(ordered(fused, present))
            rep.add(fam, f"rrf k={k} w_bm25={w} (semantic ranking, bm25 ranking)", ranked)
    for w in (0.2, 0.4, 0.6):
        ranked = []
        for s, q in zip(semantic, bench.queries, strict=True):
            sem, present = np.zeros(n), q.bm25 > 0
            if s.ranked:
                idx = np.array([number[r.skill_id] for r in s.ranked])
                vals = np.array([r.score for r in s.ranked])
                sem[idx] = (vals - vals.min()) / max(vals.max() - vals.min(), 1e-9)
                present[idx] = True
            top = float(q.bm25.max())
            lex = q.bm25 / top if top > 0 else np.zeros(n)
            ranked.append(ordered((1 - w) * sem + w * lex, present))
        rep.add(fam, f"min-max: {1 - w:.1f} x semantic + {w} x bm25/max", ranked)
    rep.print_family(fam)


def reembedded(rep: Report, bench: Bench, current: Row) -> None:
    """Documents re-embedded with the skill name in front (``name: text``) for some kinds;
    the nearest documents then come from those vectors, the ranking is the library's."""
    import numpy as np

    fam = "document text: the skill name prefixed (re-embedding)"
    docs = bench.index.documents
    texts = [
        f"{bench.skills[d.skill_id].name}: {d.text}"
        if d.kind in (TRIGGER, PATTERN, ANTI_PATTERN)
        else d.text
        for d in docs
    ]
    t = time.perf_counter()
    prefixed = cached_encode(bench.retriever.embedder.inner, texts, "docs-name-prefix")
    print(
        f"\n(embedded or read {len(texts)} prefixed documents in {time.perf_counter() - t:.0f} s)"
    )
    plain = bench.index.vectors.all_vectors()
    kinds = np.array([d.kind for d in docs])
    cfg = current.config
    n = min(cfg.candidates, bench.ntotal)
    rep.add(fam, f"no prefix: {label(cfg)}", bench.run(cfg), cfg)
    for name, which in (
        ("trigger", (TRIGGER,)),
        ("pattern+anti", (PATTERN, ANTI_PATTERN)),
        ("trigger+pattern+anti", (TRIGGER, PATTERN, ANTI_PATTERN)),
    ):
        sims = bench.vectors @ np.where(np.isin(kinds, which)[:, None], prefixed, plain).T
        near = []
        for every in sims:
            rows = np.argpartition(-every, n - 1)[:n] if n < len(every) else np.arange(n)
            near.append((every[rows], rows))
        ranked = [[r.skill_id for r in x.ranked] for x in bench.rankings(cfg, near=near)]
        rep.add(fam, f"name prefix on {name}", ranked)
    rep.print_family(fam)


def bootstrap(bench: Bench, pairs: Sequence[tuple[Row, Row]], n: int = 2000) -> dict:
    """Paired bootstrap of the MRR@10 gain of each pair's first row over its second: the mean
    gain and its 2.5-97.5% interval per group (the group's queries resampled)."""
    import numpy as np

    rng = np.random.default_rng(0)
    out: dict = {}
    print(f"\n  MRR@10 gain, paired bootstrap ({n} resamples):")
    for g in ("dev-A", "dev-B", "dev", "symptoms", "situations"):
        rows = bench.groups[g]
        idx = rng.integers(0, len(rows), size=(n, len(rows)))
        for target, other in pairs:
            d = target.mrr(rows) - other.mrr(rows)
            lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
            name = f"{target.variant} vs {other.variant}"
            out.setdefault(name, {})[g] = {
                "gain": round(float(d.mean()), 4),
                "ci95": [round(float(lo), 4), round(float(hi), 4)],
            }
            print(f"    {g:<11} {name[:60]:<60} {d.mean():+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]")
    return out


def no_match(bench: Bench, configs: dict[str, ScoringConfig]) -> dict:
    """The library's no-match rule, ``evidence < no_match_threshold`` and no trigger phrase
    of two or more words (the evidence: see ``retriever.rank``): answered/refused rates per
    group by threshold.

    The threshold chosen is the highest that still answers >= 95% of dev-A; off-topic
    queries are split in two halves (by position) and only reported.
    """
    import numpy as np

    if "offtopic" not in bench.groups:
        print("\n(no off-topic queries: no-match thresholds skipped)")
        return {}
    cols = ("dev-A", "dev-B", "symptoms", "situations", "offtopic-A", "offtopic-B")
    vouched = np.array([any(h.n_words > 1 for h in q.keywords) for q in bench.queries])

    def rates(refused: np.ndarray) -> dict[str, float]:
        return {
            g: float(
                refused[bench.groups[g]].mean()
                if g.startswith("offtopic")
                else 1 - refused[bench.groups[g]].mean()
            )
            for g in cols
        }

    def highest(feature: np.ndarray, override: np.ndarray) -> float:
        """The highest threshold (a dev-A value) under which <= 5% of dev-A is refused."""
        dev_a = bench.groups["dev-A"]
        best = float(feature[dev_a].min())
        for t in np.unique(feature[dev_a]):
            if ((feature[dev_a] < t) & ~override[dev_a]).mean() <= 0.05:
                best = float(t)
        return best

    out: dict = {}
    print(
        "\n== no match: refuse when the feature < threshold; a chosen threshold answers 95% "
        "of dev-A"
    )
    print(f"  {'feature':<58}{'threshold':>10}" + "".join(f"{c:>12}" for c in cols))
    print(
        "  "
        + " " * 68
        + "".join(f"{('refused' if c.startswith('off') else 'answered'):>12}" for c in cols)
    )

    def line(name: str, t: float, refused: np.ndarray) -> dict:
        r = rates(refused)
        print(f"  {name[:57]:<58}{t:>10.4f}" + "".join(f"{r[c]:>12.1%}" for c in cols))
        return {"threshold": round(t, 4), **{k: round(v, 3) for k, v in r.items()}}

    for cname, cfg in configs.items():
        rankings = bench.rankings(cfg)
        top = np.array([r.top_score for r in rankings])
        best = np.array([r.best for r in rankings])
        evidence = np.array([r.evidence for r in rankings])
        flags = np.array([r.no_match for r in rankings])
        mine = (evidence < cfg.no_match_threshold) & ~vouched
        agree = int((mine == flags).sum())
        print(
            f"  [{cname}] the rule recomputed here equals Ranking.no_match on "
            f"{agree}/{len(flags)} queries"
        )
        res: dict = {"rule_reproduced": agree, "queries": len(flags)}
        nothing = np.zeros(len(top), dtype=bool)
        for fname, feature, override in (
            ("library rule: evidence, 2+-word trigger vouches", evidence, vouched),
            ("top score alone", top, nothing),
            ("best document cosine (Ranking.best)", best, nothing),
        ):
            t = highest(feature, override)
            res[fname] = line(f"[{cname}] {fname}", t, (feature < t) & ~override)
        res["library rule at its threshold"] = line(
            f"[{cname}] library rule, no_match_threshold", cfg.no_match_threshold, flags
        )
        res["sweep"] = [
            line(f"[{cname}] library rule", t, (evidence < t) & ~vouched)
            for t in (0.74, 0.78, 0.80, 0.82, 0.84, 0.86, 0.90)
        ]
        out[cname] = res
    return out


def pattern_report(bench: Bench, searched: list[SearchResult]) -> dict:
    """Where the returned patterns come from (``SkillRetriever.search``, default config), for
    queries whose gold skill is in the top 5: the top-level ``SearchResult.patterns`` (the
    best pattern of each returned skill, best first) and the best pattern of the top 1 / top 3
    skills."""
    out: dict = {}
    print("\n== patterns of SkillRetriever.search (queries whose gold skill is in the top 5)")
    head = (
        f"  {'group':<12}{'n':>5}{'gold has any':>14}{'patterns[0]':>13}{'any of 5':>10}"
        f"{'#1 of top-1':>13}{'#1 of top-3':>13}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for g in ("dev", "symptoms", "situations"):
        if g not in bench.groups:
            continue
        c = dict.fromkeys(("n", "has", "first", "any5", "top1", "top3"), 0)
        for qi in bench.groups[g]:
            res, gold = searched[qi], set(bench.queries[qi].relevant)
            top = res.skills[:5]
            if not gold & {h.id for h in top}:
                continue
            c["n"] += 1
            c["has"] += any(h.patterns for h in top if h.id in gold)
            c["first"] += bool(res.patterns) and res.patterns[0].skill_id in gold
            c["any5"] += bool(gold & {p.skill_id for p in res.patterns[:5]})
            for depth, counter in ((1, "top1"), (3, "top3")):
                firsts = [h.patterns[0] for h in res.skills[:depth] if h.patterns]
                if firsts:
                    c[counter] += max(firsts, key=lambda p: p.score).skill_id in gold
        n = c["n"]
        if not n:
            continue
        out[g] = {"n": n, **{k: round(v / n, 3) for k, v in c.items() if k != "n"}}
        print(
            f"  {g:<12}{n:>5}{c['has'] / n:>14.1%}{c['first'] / n:>13.1%}"
            f"{c['any5'] / n:>10.1%}{c['top1'] / n:>13.1%}{c['top3'] / n:>13.1%}"
        )
    print(
        "  gold has any: the gold skill's hit lists patterns; patterns[0] / any of 5: the "
        "top-level best\n  pattern(s) belong to a gold skill; #1 of top-N: the best pattern "
        "of the top-N skills does"
    )
    return out


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    bench = load(args)
    rep = Report(bench)
    sizes = {g: len(v) for g, v in bench.groups.items()}
    print(
        f"groups: {sizes}  ({len(bench.ids)} skills, {bench.ntotal} documents; loaded in "
        f"{time.perf_counter() - t0:.0f} s)"
    )

    searched = [bench.retriever.search(q.raw, k=K) for q in bench.queries]
    checked = sanity(bench, searched)

    baseline = rep.ours("baseline", DEFAULT, "ours today (ScoringConfig defaults)")
    rep.ours("baseline", FIRST, "first end-to-end ranking (dense only)")
    bm25 = rep.add("baseline", "bm25 alone (the index's BM25: the competitor)", bench.bm25_run())
    rep.print_family("baseline")

    # aggregation per skill, then the candidate count; each family starts from the choice
    # so far and keeps it unless a variant wins dev-A by more than EPS
    base = baseline.config
    aggs = [replace(base, aggregation="max")]
    aggs += [
        replace(base, aggregation="best+", second_weight=w, extra_hits=x)
        for w in (0.05, 0.1, 0.2, 0.3, 0.5)
        for x in (1, 2, 3, 5)
    ]
    aggs += [
        replace(base, aggregation="softmax", temperature=t, size_discount=s)
        for t in (0.03, 0.05, 0.1, 0.15, 0.2)
        for s in (0.0, 0.5, 1.0, 1.5)
    ]
    current = sweep(rep, "aggregation", aggs, baseline, top=15)
    current = sweep(
        rep,
        "candidates",
        [
            replace(current.config, candidates=n)
            for n in (32, 64, 128, 256, 512, 1024, bench.ntotal)
        ],
        current,
    )

    # per-kind weights: one kind at a time, then a coordinate ascent on dev-A
    kinds = [k for k in KINDS if any(d.kind == k for d in bench.index.documents)]
    weights = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
    fam = "per-kind weights"
    singles = [with_kind_weight(current.config, k, w) for k in kinds for w in weights]
    cfg = current.config
    best = key(current.results)
    for _ in range(2):  # two sweeps over the kinds
        for kind in kinds:
            for w in weights:
                c = with_kind_weight(cfg, kind, w)
                found = key(rep.ours(fam, c, record=False).results)
                if found > best:
                    cfg, best = c, found
    current = sweep(rep, fam, [*singles, cfg], current, top=15)
    print(f"   coordinate ascent ended at: {label(cfg)}")

    current = sweep(
        rep,
        "keyword triggers",
        [
            replace(current.config, keyword_bonus=b, max_keyword_bonuses=m)
            for b in (0.0, 0.02, 0.04, 0.06, 0.08)
            for m in (1, 2, 3)
        ],
        current,
    )
    current = sweep(
        rep,
        "weak threshold",
        [replace(current.config, weak_threshold=t) for t in (0.0, 0.25, 0.3, 0.35, 0.4, 0.45)],
        current,
    )
    current = sweep(
        rep,
        "lexical: + w * bm25 / (bm25 + s)",
        [
            replace(current.config, lexical_weight=w, lexical_saturation=s)
            for w in (0.0, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
            for s in (5.0, 10.0, 20.0, 40.0)
        ],
        current,
        top=15,
    )

    fusions(rep, bench, current)
    if not args.no_reembed:
        reembedded(rep, bench, current)

    # the final comparison, with paired bootstrap intervals of the MRR@10 gain
    fam = "final"
    chosen = current.config
    finals = [
        rep.ours(fam, DEFAULT, "ours today (defaults)"),
        rep.add(fam, "bm25 alone", bm25.ranked),
        rep.ours(fam, FIRST, "dense only (first ranking)"),
    ]
    if chosen != DEFAULT:
        finals.append(rep.ours(fam, chosen, f"chosen: {label(chosen)}"))
    rep.print_family(fam)
    print("  on the whole dev set (MRR@10/R@5):")
    for r in finals:
        print(
            f"    {r.variant[:60]:<60} dev {r.results['dev']['MRR@10']:.3f}/"
            f"{r.results['dev']['R@5']:.3f}"
        )
    pairs = [(finals[0], finals[1]), (finals[0], finals[2])]
    if chosen != DEFAULT:
        pairs.insert(0, (finals[3], finals[0]))
    boot = bootstrap(bench, pairs)

    configs = {"defaults": DEFAULT} | ({"chosen": chosen} if chosen != DEFAULT else {})
    nomatch = no_match(bench, configs)
    patterns = pattern_report(bench, searched)
    seconds = time.perf_counter() - t0
    print(
        f"\n{bench.rankings_made} library rankings of {len(bench.queries)} queries in "
        f"{bench.ranking_seconds:.0f} s"
    )
    return {
        "groups": sizes,
        "sanity": checked,
        "chosen": {
            "config": asdict(chosen),
            "label": label(chosen),
            "is_default": chosen == DEFAULT,
        },
        "bootstrap": boot,
        "rows": [r.to_dict() for r in rep.rows],
        "no_match": nomatch,
        "patterns": patterns,
        "seconds": round(seconds, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--skills", type=Path, default=None)
    p.add_argument("--dev", type=Path, default=None, help="dev query file (split by skill)")
    p.add_argument(
        "--held-out",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="labelled held-out query file, repeatable (default: "
        "benchmarks/queries/symptoms.jsonl and situations.jsonl)",
    )
    p.add_argument("--offtopic", type=Path, default=HELD_OUT / "offtopic.jsonl")
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        metavar="DIR",
        help="our index folder (default: benchmarks/results/index-<corpus name>)",
    )
    p.add_argument("--json-out", type=Path, default=RESULTS / "variants.json")
    p.add_argument(
        "--allow-leak",
        action="store_true",
        help="measure the dev queries against a corpus that holds them",
    )
    p.add_argument(
        "--no-reembed",
        action="store_true",
        help="skip the document-text variants (they embed ~10k texts once)",
    )
    args = p.parse_args(argv)
    args.skills = (args.skills or holdout_skills()).expanduser()
    args.dev = (args.dev or default_queries()).expanduser()
    leak = leak_check(args.skills, [args.dev])
    if leak and not args.allow_leak:
        fail(PROG, leak)
    args.held_out = args.held_out or [HELD_OUT / "symptoms.jsonl", HELD_OUT / "situations.jsonl"]
    if args.offtopic and not args.offtopic.is_file():
        args.offtopic = None
    try:
        require_data(args.skills, [args.dev, *args.held_out])
        out = run(args)
    except BenchError as e:
        fail(PROG, str(e))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json_out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
