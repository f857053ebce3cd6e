"""Variants of our ranking, tuned on one half of the dev skills, reported on the other half
and on the hand-written held-out sets. Prototypes only: nothing here changes ``retriever/``.

Run from the repository root::

    python -m benchmarks.variants                 # everything, ~2 min with warm caches
    python -m benchmarks.variants --no-reembed    # skip the document-text variants (which
                                                  # re-embed ~10k documents once, ~2 min)

The index our retriever built (documents, their vectors read back with
``index.reconstruct_n``, skills) is re-ranked in numpy, so each variant costs a fraction of a
second. Groups of queries:

- ``dev-A`` / ``dev-B``: the dev queries split by gold skill (a hash of the skill id), so no
  skill is in both halves. Every parameter is chosen on ``dev-A`` only;
- ``symptoms``, ``situations``: ``benchmarks/queries/*.jsonl``, never used for choosing;
- ``offtopic``: queries with no answer, for the no-match threshold only.

Families measured: (1) hybrid with BM25 (reciprocal rank fusion, weighted fusion of
normalised scores); (2) aggregation per skill and candidate counts; (3) per-kind weights;
(4) BM25 at document vs skill level, with/without stemming; (5) document texts prefixed with
the skill name (re-embedding); (6) no-match thresholds; (7) where the returned patterns come
from. Results are printed and written to ``benchmarks/results/variants.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/variants.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    BenchQuery,
    MemoEmbedder,
    cached_encode,
    default_queries,
    default_skills,
    fail,
    open_ours,
    read_queries,
    require_data,
)
from benchmarks.quality import BM25, skill_texts  # noqa: E402

PROG = "variants"
K = 10
EVAL_GROUPS = ("dev-A", "dev-B", "symptoms", "situations")
KINDS = ("card", "trigger", "topics", "pattern", "anti_pattern", "section")


# -- the data every variant re-ranks ----------------------------------------------------------

@dataclass
class Data:
    ids: list[str]  # skill ids, index order of every per-skill array
    names: list[str]
    doc_skill: np.ndarray  # (docs,) skill index of each document
    doc_kind: np.ndarray  # (docs,) index into KINDS
    doc_texts: list[str]
    queries: list[BenchQuery]
    q_vectors: np.ndarray
    sims: np.ndarray  # (queries, docs) cosine
    slots: np.ndarray  # (skills, max docs) document rows of each skill, padded with n_docs
    kw_count: np.ndarray  # (queries, skills) triggers found in the query as whole words
    kw_words: np.ndarray  # (queries, skills) their total word count
    gold: list[np.ndarray]
    groups: dict[str, np.ndarray]  # group name -> query indices
    id_rank: np.ndarray  # alphabetical rank of each skill id (our tie-break)
    bm25: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (queries, skills)

    @property
    def n_skills(self) -> int:
        return len(self.ids)


def dev_half(skill_id: str) -> str:
    return "dev-A" if hashlib.sha256(skill_id.encode()).digest()[0] % 2 == 0 else "dev-B"


def load_data(skills_root: Path, dev: Path, held_out: Sequence[Path], offtopic: Path | None
              ) -> tuple[Data, object, MemoEmbedder]:
    from retriever.embed import SentenceTransformerEmbedder
    from retriever.keywords import PhraseMatcher

    files = [dev, *held_out] + ([offtopic] if offtopic else [])
    queries = read_queries(files)
    embedder = MemoEmbedder(SentenceTransformerEmbedder())
    texts = [q.query for q in queries]
    q_vectors = cached_encode(embedder.inner, texts, "queries")
    embedder.remember(texts, q_vectors)
    from benchmarks.quality import DENSE_ONLY
    from retriever.rank import ScoringConfig

    # the numpy re-ranking's baseline is the first end-to-end ranking (see Config)
    retriever = open_ours(skills_root, embedder, config=ScoringConfig(**DENSE_ONLY))
    stored = retriever._stored  # noqa: SLF001 - re-ranking needs the index's insides
    skills = stored.skills
    ids = [s.id for s in skills]
    index_of = {sid: i for i, sid in enumerate(ids)}
    docs = stored.documents
    doc_skill = np.array([index_of[d.skill_id] for d in docs], dtype=np.int32)
    doc_kind = np.array([KINDS.index(d.kind) for d in docs], dtype=np.int8)
    vectors = stored.index.reconstruct_n(0, stored.index.ntotal)
    sims = q_vectors @ vectors.T

    per_skill: list[list[int]] = [[] for _ in ids]
    for row, s in enumerate(doc_skill):
        per_skill[s].append(row)
    width = max(len(r) for r in per_skill)
    slots = np.full((len(ids), width), len(docs), dtype=np.int32)
    for s, rows in enumerate(per_skill):
        slots[s, :len(rows)] = rows

    matcher = PhraseMatcher((t, (s.id, i)) for s in skills for i, t in enumerate(s.triggers))
    kw_count = np.zeros((len(queries), len(ids)), dtype=np.int16)
    kw_words = np.zeros((len(queries), len(ids)), dtype=np.int16)
    for qi, q in enumerate(queries):
        for (sid, _), gram in matcher.find(q.query).items():
            kw_count[qi, index_of[sid]] += 1
            kw_words[qi, index_of[sid]] += len(gram)

    groups: dict[str, list[int]] = {}
    for qi, q in enumerate(queries):
        if q.file == dev.stem:
            name = dev_half(q.relevant[0])
        elif not q.relevant:
            name = "offtopic"
        else:
            name = q.file
        groups.setdefault(name, []).append(qi)
        if q.file == dev.stem:
            groups.setdefault("dev", []).append(qi)
    gold = [np.array([index_of[r] for r in q.relevant if r in index_of], dtype=np.int32)
            for q in queries]
    id_rank = np.argsort(np.argsort(np.array(ids)))
    data = Data(ids, [s.name for s in skills], doc_skill, doc_kind, [d.text for d in docs],
                queries, q_vectors, sims, slots, kw_count, kw_words, gold,
                {k: np.array(v) for k, v in groups.items()}, id_rank)
    return data, retriever, embedder


# -- our ranking, as a function of its knobs --------------------------------------------------

@dataclass(frozen=True)
class Config:
    """The knobs of our semantic ranking (defaults: the first end-to-end ranking, i.e.
    ``ScoringConfig(aggregation="best+", kind_weights=(), lexical_weight=0)``)."""

    method: str = "best+"  # "max" | "best+" (best + w * next `extra`) | "decay" | "lse"
    w: float = 0.1
    extra: int = 2
    temp: float = 0.05  # for "lse": T * log(sum(exp(s_i / T)))
    candidates: int = 256  # nearest documents read; 0 = all
    kind_w: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # multiplies the cosine, by KINDS
    keyword_bonus: float = 0.04
    max_keywords: int = 2
    weak: float = 0.35  # best cosine under this: keyword matches lead
    size: float = 0.0  # "lse": minus size * temp * log(documents of the skill)

    def label(self) -> str:
        base = Config()
        diff = {k: v for k, v in asdict(self).items() if v != getattr(base, k)}
        return ", ".join(f"{k}={v}" for k, v in diff.items()) or "ours today"


def semantic_scores(data: Data, rows: np.ndarray, cfg: Config,
                    sims: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (queries, skills) with -inf for skills not reached, best cosine per query)``."""
    memo_key = (cfg, id(sims), rows.tobytes())
    if memo_key not in _MEMO:
        if len(_MEMO) > 256:
            _MEMO.clear()
        _MEMO[memo_key] = _semantic_scores(data, rows, cfg, sims)
    scores, best = _MEMO[memo_key]
    return scores.copy(), best


_MEMO: dict = {}


def _semantic_scores(data: Data, rows: np.ndarray, cfg: Config,
                     sims: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = (data.sims if sims is None else sims)[rows]
    best = s.max(axis=1)
    if cfg.candidates and cfg.candidates < s.shape[1]:
        kth = -np.partition(-s, cfg.candidates - 1, axis=1)[:, cfg.candidates - 1:cfg.candidates]
        s = np.where(s >= kth, s, -np.inf)
    s = s * np.asarray(cfg.kind_w, dtype=np.float32)[data.doc_kind]
    s = np.concatenate([s, np.full((len(rows), 1), -np.inf, dtype=s.dtype)], axis=1)
    m = -np.sort(-s[:, data.slots], axis=2)  # (queries, skills, docs) best first
    top = m[:, :, 0]
    rest = np.where(np.isfinite(m[:, :, 1:]), m[:, :, 1:], 0.0)
    if cfg.method == "max":
        agg = top
    elif cfg.method == "best+":
        agg = top + cfg.w * rest[:, :, :cfg.extra].sum(axis=2)
    elif cfg.method == "decay":  # best + w*second + w^2*third ...
        weights = cfg.w ** np.arange(1, cfg.extra + 1)
        agg = top + (rest[:, :, :cfg.extra] * weights).sum(axis=2)
    elif cfg.method == "lse":
        with np.errstate(invalid="ignore"):
            z = np.exp((m - top[:, :, None]) / cfg.temp)
        z = np.where(np.isfinite(m), z, 0.0)
        agg = top + cfg.temp * np.log(np.maximum(z.sum(axis=2), 1e-30))
        if cfg.size:
            counts = (data.slots < len(data.doc_skill)).sum(axis=1)
            agg = agg - cfg.size * cfg.temp * np.log(np.maximum(counts, 1))[None, :]
    else:
        raise ValueError(cfg.method)
    agg = np.where(np.isfinite(top), agg, -np.inf)
    kw = data.kw_count[rows]
    agg = np.where(np.isfinite(agg), agg, np.where(kw > 0, 0.0, -np.inf))
    agg = agg + cfg.keyword_bonus * np.minimum(kw, cfg.max_keywords)
    weak = best < cfg.weak
    if weak.any():  # keyword matches lead, more matched trigger words first
        agg[weak] = np.where(np.isfinite(agg[weak]), agg[weak] + 1000.0 * data.kw_words[rows][weak],
                             -np.inf)
    return agg.astype(np.float64), best


def ranking(data: Data, scores: np.ndarray, depth: int = K) -> list[list[int]]:
    """Skill indices best first (ties by id, as ``rank.rank`` does); -inf/0-score dropped."""
    out = []
    for row in scores:
        ok = np.flatnonzero(np.isfinite(row))
        order = ok[np.lexsort((data.id_rank[ok], -row[ok]))]
        out.append(order[:depth].tolist() if depth else order.tolist())
    return out


def rrf(rankings: Sequence[list[list[int]]], weights: Sequence[float], k: float, n: int
        ) -> np.ndarray:
    """Reciprocal rank fusion: sum of w / (k + rank) over the rankings that hold a skill."""
    out = np.full((len(rankings[0]), n), -np.inf)
    for lists, w in zip(rankings, weights, strict=True):
        for qi, lst in enumerate(lists):
            if not lst:
                continue
            idx = np.asarray(lst)
            cur = out[qi, idx]
            gain = w / (k + 1.0 + np.arange(len(idx)))
            out[qi, idx] = np.where(np.isfinite(cur), cur, 0.0) + gain
    return out


def bm25_ranking(scores: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(r > 0)[np.argsort(-r[r > 0], kind="stable")].tolist() for r in scores]


# -- metrics ----------------------------------------------------------------------------------

def metrics(data: Data, rows: np.ndarray, ranked: list[list[int]]) -> dict[str, float]:
    from retriever.evaluate import mean_metrics, query_metrics

    per = []
    for qi, lst in zip(rows, ranked, strict=True):
        ids = [data.ids[i] for i in lst[:K]]
        per.append(query_metrics(ids, [data.ids[g] for g in data.gold[qi]]))
    return mean_metrics(per)


Ranker = Callable[[np.ndarray], list[list[int]]]  # query rows -> rankings


def evaluate(data: Data, ranker: Ranker, groups: Sequence[str] = (*EVAL_GROUPS, "dev")
             ) -> dict[str, dict[str, float]]:
    return {g: metrics(data, data.groups[g], ranker(data.groups[g])) for g in groups
            if g in data.groups}


def semantic_ranker(data: Data, cfg: Config, sims: np.ndarray | None = None) -> Ranker:
    return lambda rows: ranking(data, semantic_scores(data, rows, cfg, sims)[0])


def hybrid_ranker(data: Data, cfg: Config, how: str, bm25: str = "skill-stem",
                  k: float = 60.0, w_bm25: float = 1.0, sims: np.ndarray | None = None
                  ) -> Ranker:
    """Ours fused with BM25: ``how`` is "rrf" (k), "add" (sem + w * bm25 / max bm25 of the
    query), "sat" (sem + w * bm25 / (bm25 + k): an absolute scale) or "minmax"
    (w * minmax(bm25) + (1 - w) * minmax(sem) over all skills)."""
    def rank_rows(rows: np.ndarray) -> list[list[int]]:
        sem, _ = semantic_scores(data, rows, cfg, sims)
        b = data.bm25[bm25][rows]
        if how == "rrf":
            fused = rrf([ranking(data, sem, 0), bm25_ranking(b)], [1.0, w_bm25], k, data.n_skills)
        elif how == "add":
            top = b.max(axis=1, keepdims=True)
            fused = sem + w_bm25 * np.where(top > 0, b / np.maximum(top, 1e-9), 0.0)
        elif how == "sat":  # an absolute scale: b / (b + c) saturates towards 1
            fused = sem + w_bm25 * b / (b + k)
        elif how == "minmax":
            s = np.where(np.isfinite(sem), sem, np.nan)
            lo, hi = np.nanmin(s, axis=1, keepdims=True), np.nanmax(s, axis=1, keepdims=True)
            s = np.nan_to_num((s - lo) / np.maximum(hi - lo, 1e-9), nan=0.0)
            top = b.max(axis=1, keepdims=True)
            fused = (1 - w_bm25) * s + w_bm25 * np.where(top > 0, b / np.maximum(top, 1e-9), 0)
        else:
            raise ValueError(how)
        return ranking(data, fused)
    return rank_rows


# -- BM25 variants ----------------------------------------------------------------------------

def build_bm25(data: Data, skills) -> None:
    texts = skill_texts(skills)
    q = [x.query for x in data.queries]
    data.bm25["skill-stem"] = BM25(texts, stem=True).scores(q).astype(np.float64)
    data.bm25["skill-nostem"] = BM25(texts, stem=False).scores(q).astype(np.float64)
    for stem in (True, False):
        doc_scores = BM25(data.doc_texts, stem=stem).scores(q)
        best = np.zeros((len(q), data.n_skills))
        for s in range(data.n_skills):  # max over each skill's documents
            rows = data.slots[s][data.slots[s] < len(data.doc_texts)]
            best[:, s] = doc_scores[:, rows].max(axis=1)
        data.bm25[f"doc-max-{'stem' if stem else 'nostem'}"] = best


# -- the experiment ---------------------------------------------------------------------------

@dataclass
class Row:
    family: str
    variant: str
    results: dict[str, dict[str, float]]
    chosen: bool = False
    ranker: Ranker | None = field(default=None, repr=False, compare=False)
    config: Config | None = None
    bm25_weight: float | None = None

    def to_dict(self) -> dict:
        return {"family": self.family, "variant": self.variant, "chosen": self.chosen,
                "config": asdict(self.config) if self.config else None,
                "bm25_weight": self.bm25_weight,
                "results": {g: {k: round(v, 4) if isinstance(v, float) else v
                                for k, v in m.items()} for g, m in self.results.items()}}


class Report:
    def __init__(self, data: Data) -> None:
        self.data = data
        self.rows: list[Row] = []

    def add(self, family: str, variant: str, ranker: Ranker, config: Config | None = None,
            bm25_weight: float | None = None, groups: Sequence[str] | None = None) -> Row:
        results = evaluate(self.data, ranker, groups or (*EVAL_GROUPS, "dev"))
        row = Row(family, variant, results, ranker=ranker, config=config,
                  bm25_weight=bm25_weight)
        if groups is None:
            self.rows.append(row)
        return row

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
    head = f" {'variant (MRR@10/R@5)':<{NAME_WIDTH}}" + "".join(f"{g:>17}" for g in groups)
    lines = [head, "-" * len(head)]
    for r in ([baseline] if baseline else []) + list(rows):
        cells = [f"{r.results[g]['MRR@10']:.3f}/{r.results[g]['R@5']:.3f}" for g in groups]
        mark = "*" if r.chosen else " "
        lines.append(f"{mark}{r.variant[:NAME_WIDTH]:<{NAME_WIDTH}}"
                     + "".join(f"{c:>17}" for c in cells))
    return "\n".join(lines)


def key(results: dict[str, dict[str, float]], group: str = "dev-A") -> tuple[float, float]:
    return (round(results[group]["MRR@10"], 4), round(results[group]["R@5"], 4))


EPS = 0.005  # a change of default must win on dev-A by more than this MRR@10


def pick(rows: Sequence[Row], incumbent: Row | None = None) -> Row:
    """The row with the best dev-A MRR@10 (then R@5), marked as chosen; the incumbent (today's
    value) is kept unless the best beats it by more than ``EPS``: smaller gaps are noise."""
    best = max(rows, key=lambda r: key(r.results))
    if incumbent is not None and key(best.results)[0] - key(incumbent.results)[0] <= EPS:
        best = incumbent
    best.chosen = True
    return best


def trigger_weight(w: float) -> tuple[float, ...]:
    return tuple(w if k == "trigger" else 1.0 for k in KINDS)


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    data, retriever, embedder = load_data(args.skills, args.dev, args.held_out, args.offtopic)
    build_bm25(data, retriever.skills)
    sizes = {g: len(v) for g, v in data.groups.items()}
    print(f"groups: {sizes}  (loaded in {time.perf_counter() - t0:.0f} s)")
    rep = Report(data)
    base = Config()
    sem = lambda c, sims=None: semantic_ranker(data, c, sims)  # noqa: E731
    sat = lambda c, w, sims=None: hybrid_ranker(data, c, "sat", "skill-stem", 10, w, sims)  # noqa: E731

    # 0. our numpy re-ranking must reproduce SkillRetriever.search
    results_by_q = {qi: retriever.search(q.query, k=K) for qi, q in enumerate(data.queries)}
    searched = [[data.ids.index(s) for s in results_by_q[qi].skill_ids[:K]]
                for qi in range(len(data.queries))]
    mine = ranking(data, semantic_scores(data, np.arange(len(data.queries)), base)[0])
    same = sum(a == b for a, b in zip(searched, mine, strict=True))
    print(f"reproduction: the numpy ranking equals SkillRetriever.search on {same}/{len(mine)}"
          " queries")
    for qi, (a, b) in enumerate(zip(searched, mine, strict=True)):
        if a != b:
            j = next(j for j in range(min(len(a), len(b))) if a[j] != b[j])
            print(f"   {data.queries[qi].id} differs from rank {j + 1}: search "
                  f"{data.ids[a[j]]}, numpy {data.ids[b[j]]} (a float near-tie)")
    baseline = rep.add("baseline", "ours today (ScoringConfig defaults)", sem(base), base)
    rep.add("baseline", "bm25 skill-stem (the competitor)",
            lambda rows: bm25_ranking(data.bm25["skill-stem"][rows]))
    rep.print_family("baseline")

    # 2. aggregation per skill, then the candidate count
    fam = "2 aggregation"
    aggs = [("max", replace(base, method="max"))]
    aggs += [(f"best+{w}*next{x}", replace(base, w=w, extra=x))
             for w in (0.05, 0.1, 0.2, 0.3, 0.5) for x in (1, 2, 3, 5)]
    aggs += [(f"decay top-4 (1,w,w^2,w^3) w={w}", replace(base, method="decay", w=w, extra=3))
             for w in (0.3, 0.5, 0.7)]
    aggs += [(f"softmax (log-sum-exp) T={t}", replace(base, method="lse", temp=t))
             for t in (0.01, 0.02, 0.03, 0.05, 0.1)]
    rows = [rep.add(fam, label, sem(c), c) for label, c in aggs]
    best_agg = pick(rows, next(r for r in rows if r.config == base))
    cands = [rep.add(fam, f"{best_agg.variant}, candidates={n or 'all'}",
                     sem(replace(best_agg.config, candidates=n)),
                     replace(best_agg.config, candidates=n))
             for n in (32, 64, 128, 256, 512, 1024, 0)]
    agg = pick(cands, cands[3])  # 256 today
    rep.print_family(fam, baseline)

    # 3. per-kind weights: one kind at a time, then coordinate ascent on dev-A
    fam = "3 per-kind weights"
    for ki, kind in enumerate(KINDS[:5]):
        for wk in (0.6, 0.8, 0.9):
            kw = tuple(wk if i == ki else 1.0 for i in range(len(KINDS)))
            c = replace(agg.config, kind_w=kw)
            rep.add(fam, f"{agg.variant}; {kind} x{wk}", sem(c), c)
    cfg = agg.config
    cur = rep.add(fam, "", sem(cfg), cfg, groups=("dev-A",)).results
    for _ in range(2):  # two sweeps over the kinds
        for ki in range(5):
            for wk in (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1):
                c = replace(cfg, kind_w=tuple(wk if i == ki else w
                                              for i, w in enumerate(cfg.kind_w)))
                r = rep.add(fam, "", sem(c), c, groups=("dev-A",)).results
                if key(r) > key(cur):
                    cfg, cur = c, r
    ascent = rep.add(fam, "coordinate ascent: " + kinds_label(cfg.kind_w), sem(cfg), cfg)
    kinds = pick([ascent], agg)
    rep.print_family(fam, agg)

    fam = "keyword bonus"
    kb = [rep.add(fam, f"{kinds.variant[:40]}; keyword_bonus={b}",
                  sem(replace(kinds.config, keyword_bonus=b)),
                  replace(kinds.config, keyword_bonus=b)) for b in (0.0, 0.02, 0.04, 0.06, 0.08)]
    tuned = pick(kb, kb[2]).config  # 0.04 today
    rep.print_family(fam)

    # 4. BM25 alone: skill vs document level, with and without stemming
    fam = "4 bm25 alone"
    for name in data.bm25:
        rep.add(fam, f"bm25 {name}", lambda rows, n=name: bm25_ranking(data.bm25[n][rows]))
    rep.print_family(fam)

    # 1. hybrid with BM25, over today's semantic ranking and over the tuned one
    fam = "1 hybrid"
    for sem_label, c in (("today", base), ("tuned", tuned)):
        for bm in ("skill-stem", "doc-max-stem"):
            for k in (5, 10, 30, 60, 100):
                for w in (0.5, 0.75, 1.0):
                    rep.add(fam, f"rrf k={k} w_bm25={w}; sem={sem_label}; {bm}",
                            hybrid_ranker(data, c, "rrf", bm, k, w), c, w)
            for w in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7):
                rep.add(fam, f"sem+{w}*bm25/max(bm25); sem={sem_label}; {bm}",
                        hybrid_ranker(data, c, "add", bm, w_bm25=w), c, w)
            for w in (0.2, 0.3, 0.4, 0.5, 0.6):
                rep.add(fam, f"minmax, w_bm25={w}; sem={sem_label}; {bm}",
                        hybrid_ranker(data, c, "minmax", bm, w_bm25=w), c, w)
            for k in (5, 10, 20):
                for w in (0.2, 0.3, 0.5):
                    rep.add(fam, f"sem+{w}*bm25/(bm25+{k}); sem={sem_label}; {bm}",
                            hybrid_ranker(data, c, "sat", bm, k, w), c, w)
    full = pick(rep.family(fam))
    rep.print_family(fam, baseline, top=15)
    for how in ("rrf", "/max", "minmax", "/(bm25+"):
        b = max((r for r in rep.family(fam) if how in r.variant), key=lambda r: key(r.results))
        print(f"   best of its kind: {b.variant}")

    # a simple family (few knobs): aggregation x trigger weight x BM25 weight
    fam = "simple hybrid: aggregation x trigger weight x bm25/(bm25+10) weight"
    for agg_label, a in (("best+0.1*next2", base),
                         ("best+0.2*next3", replace(base, w=0.2, extra=3)),
                         ("lse T=0.1", replace(base, method="lse", temp=0.1))):
        for tw in (1.0, 0.8, 0.6):
            for w in (0.3, 0.5):
                c = replace(a, kind_w=trigger_weight(tw))
                rep.add(fam, f"{agg_label}, trigger x{tw}, sem+{w}*bm25/(bm25+10)", sat(c, w),
                        c, w)
    simple = pick(rep.family(fam))
    rep.print_family(fam, baseline)

    # the soft-max sums over a skill's documents, so it favours skills with many: discount
    # size * T * log(documents), with the BM25 weight re-chosen beside it
    fam = "size discount x bm25/(bm25+10) weight, over the simple hybrid"
    for a in (0.0, 0.25, 0.5, 1.0):
        for w in (0.5, 0.7, 1.0):
            c = replace(simple.config, size=a)
            rep.add(fam, f"{simple.variant.split(', sem+')[0]}, size discount {a}, "
                    f"sem+{w}*bm25/(bm25+10)", sat(c, w), c, w)
    simple = pick(rep.family(fam), simple)
    rep.print_family(fam, baseline)
    rec_cfg, rec_w = simple.config, simple.bm25_weight

    # The library's default ScoringConfig implements the recommendation: check it.
    library = open_ours(args.skills, embedder)
    lib_rank = [[data.ids.index(s) for s in library.search(q.query, k=K).skill_ids[:K]]
                for q in data.queries]
    rec_rank = sat(rec_cfg, rec_w)(np.arange(len(data.queries)))
    agree = sum(a == b for a, b in zip(lib_rank, rec_rank, strict=True))
    print(f"the library's default ScoringConfig ranks like '{simple.variant}' on "
          f"{agree}/{len(rec_rank)} queries")

    # 4 (cont.): BM25 at document level, added to each document's cosine before aggregation
    fam = "4 bm25 at document level, in fusion"
    doc_bm = BM25(data.doc_texts, stem=True).scores([q.query for q in data.queries])
    doc_sims = data.sims + 0.2 * doc_bm / (doc_bm + 5.0)
    rep.add(fam, "recommended semantic, each document += 0.2*bm25/(bm25+5)",
            sem(rec_cfg, doc_sims), rec_cfg)
    rep.add(fam, "recommended (skill-level fusion) and document-level too",
            sat(rec_cfg, rec_w, doc_sims), rec_cfg, rec_w)
    rep.add(fam, "recommended (skill-level fusion only)", sat(rec_cfg, rec_w), rec_cfg, rec_w)
    rep.print_family(fam, baseline)

    # 5. document texts prefixed with the skill name (re-embedding, cached)
    if not args.no_reembed:
        fam = "5 document text"
        texts = [f"{data.names[s]}: {t}" if KINDS[k] in ("trigger", "pattern", "anti_pattern")
                 else t
                 for t, s, k in zip(data.doc_texts, data.doc_skill, data.doc_kind, strict=True)]
        t = time.perf_counter()
        vectors = cached_encode(embedder.inner, texts, "docs-name-prefix")
        print(f"\n(embedded {len(texts)} prefixed documents in {time.perf_counter() - t:.0f} s)")
        prefixed = data.q_vectors @ vectors.T
        for label, kinds_ in (("trigger", ("trigger",)),
                              ("pattern+anti", ("pattern", "anti_pattern")),
                              ("trigger+pattern+anti", ("trigger", "pattern", "anti_pattern"))):
            use = np.isin(data.doc_kind, [KINDS.index(k) for k in kinds_])
            mixed = np.where(use[None, :], prefixed, data.sims)
            rep.add(fam, f"name prefix on {label}; semantic today", sem(base, mixed), base)
            rep.add(fam, f"name prefix on {label}; recommended", sat(rec_cfg, rec_w, mixed),
                    rec_cfg, rec_w)
        rep.add(fam, "no prefix; recommended", sat(rec_cfg, rec_w), rec_cfg, rec_w)
        rep.print_family(fam, baseline)

    # the final comparison, with paired bootstrap intervals of the MRR@10 gain
    fam = "final"
    finals = [
        rep.add(fam, "ours today", sem(base), base),
        rep.add(fam, "bm25 (the competitor)",
                lambda rows: bm25_ranking(data.bm25["skill-stem"][rows])),
        rep.add(fam, f"best of the full search: {full.variant}", full.ranker, full.config,
                full.bm25_weight),
        rep.add(fam, f"recommended: {simple.variant}", simple.ranker, rec_cfg, rec_w),
    ]
    rep.print_family(fam)
    print("  on the whole dev set (MRR@10/R@5):")
    for r in finals:
        print(f"    {r.variant[:60]:<60} dev {r.results['dev']['MRR@10']:.3f}/"
              f"{r.results['dev']['R@5']:.3f}")
    boot = bootstrap(data, finals[3], finals[:2])

    nomatch = no_match(data, rec_cfg, rec_w, base)  # 6
    pats = pattern_report(data, results_by_q, finals[3].ranker(np.arange(len(data.queries))))  # 7

    return {
        "groups": sizes,
        "reproduction_equal": same,
        "full_search_best": full.to_dict(),
        "recommended": simple.to_dict(),
        "bootstrap": boot,
        "rows": [r.to_dict() for r in rep.rows],
        "no_match": nomatch,
        "patterns": pats,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def kinds_label(kind_w: Sequence[float]) -> str:
    return " ".join(f"{k}={w}" for k, w in zip(KINDS[:5], kind_w, strict=False))


def bootstrap(data: Data, target: Row, others: Sequence[Row], n: int = 2000) -> dict:
    """Paired bootstrap of the MRR@10 gain of ``target`` over each of ``others``: the mean gain
    and its 2.5-97.5% interval per group (the group's queries resampled)."""
    from retriever.evaluate import query_metrics

    rng = np.random.default_rng(0)
    out: dict = {}
    print(f"\n  MRR@10 gain of the recommended configuration, paired bootstrap ({n} resamples):")
    for g in ("dev-A", "dev-B", "dev", "symptoms", "situations"):
        rows = data.groups[g]

        def reciprocal_ranks(row: Row, rows: np.ndarray = rows) -> np.ndarray:
            lists = row.ranker(rows)
            return np.array([query_metrics([data.ids[i] for i in lst[:K]],
                                           [data.ids[x] for x in data.gold[qi]])["MRR@10"]
                             for qi, lst in zip(rows, lists, strict=True)])

        mine = reciprocal_ranks(target)
        idx = rng.integers(0, len(rows), size=(n, len(rows)))
        for other in others:
            d = mine - reciprocal_ranks(other)
            lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
            out[f"{g} vs {other.variant}"] = {"gain": round(float(d.mean()), 4),
                                              "ci95": [round(float(lo), 4), round(float(hi), 4)]}
            print(f"    {g:<11} vs {other.variant:<22} {d.mean():+.3f}  95% CI "
                  f"[{lo:+.3f}, {hi:+.3f}]")
    return out


# -- 6. no-match ------------------------------------------------------------------------------

def no_match(data: Data, rec_cfg: Config, rec_w: float, base: Config) -> dict:
    """Refuse when a feature is under a threshold; answered/refused rates per group.

    The threshold is the highest that still answers >= 95% of dev-A; the off-topic queries
    are split in two halves (by position): a mixing weight is chosen on ``offtopic-A`` only.
    """
    if "offtopic" not in data.groups:
        print("\n(no off-topic queries: no-match thresholds skipped)")
        return {}
    off = data.groups["offtopic"]
    data.groups["offtopic-A"], data.groups["offtopic-B"] = off[0::2], off[1::2]
    rows = np.arange(len(data.queries))
    today, best_cos = semantic_scores(data, rows, replace(base, keyword_bonus=0.0))
    tuned, _ = semantic_scores(data, rows, replace(rec_cfg, keyword_bonus=0.0))
    bm_top = data.bm25["skill-stem"].max(axis=1)
    srt = -np.sort(-np.where(np.isfinite(today), today, -9), axis=1)
    features = {
        "best document cosine": best_cos,
        "top skill score, today's aggregation": srt[:, 0],
        "top skill score, recommended semantic":
            np.where(np.isfinite(tuned), tuned, -9).max(axis=1),
        "top-1 minus top-2 skill score (today)": srt[:, 0] - srt[:, 1],
    }
    b = data.bm25["skill-stem"]
    fused = np.where(np.isfinite(tuned), tuned, -9) + rec_w * b / (b + 10.0)
    features["top fused score of the recommended config"] = fused.max(axis=1)
    mixes = {g: best_cos + g * bm_top for g in (0.002, 0.005, 0.01, 0.02, 0.04)}

    def rates(f: np.ndarray, t: float) -> dict[str, float]:
        out = {}
        for g in ("dev-A", "dev-B", "symptoms", "situations", "offtopic-A", "offtopic-B"):
            v = f[data.groups[g]]
            out[g] = float((v < t).mean()) if g.startswith("offtopic") else float((v >= t).mean())
        return out

    def threshold(f: np.ndarray) -> float:
        return float(np.quantile(f[data.groups["dev-A"]], 0.05))

    best_g = max(mixes, key=lambda g: rates(mixes[g], threshold(mixes[g]))["offtopic-A"])
    features[f"best cosine + {best_g} * max bm25 (weight chosen on offtopic-A)"] = mixes[best_g]
    out = {}
    cols = ("dev-A", "dev-B", "symptoms", "situations", "offtopic-A", "offtopic-B")
    print("\n== 6 no-match: refuse when feature < threshold; the threshold answers 95% of dev-A")
    print(f"  {'feature':<58}{'threshold':>10}" + "".join(f"{c:>12}" for c in cols))
    print("  " + " " * 68 + "".join(f"{('refused' if c.startswith('off') else 'answered'):>12}"
                                    for c in cols))
    for name, f in features.items():
        t = threshold(f)
        r = rates(f, t)
        out[name] = {"threshold": round(t, 4), **{k: round(v, 3) for k, v in r.items()}}
        print(f"  {name[:57]:<58}{t:>10.3f}" + "".join(f"{r[c]:>12.1%}" for c in cols))
    print("\n  sweep of the best document cosine (today's weak threshold is 0.35):")
    sweep = []
    for t in (0.30, 0.35, 0.38, 0.40, 0.42, 0.45):
        r = rates(best_cos, t)
        sweep.append({"threshold": t, **{k: round(v, 3) for k, v in r.items()}})
        print(f"  {'best document cosine':<58}{t:>10.2f}" + "".join(f"{r[c]:>12.1%}" for c in cols))
    out["sweep_best_cosine"] = sweep
    return out


# -- 7. patterns ------------------------------------------------------------------------------

def pattern_report(data: Data, results_by_q: dict, recommended: list[list[int]]) -> dict:
    """Where the returned patterns come from, for queries whose gold skill is in the top 5.

    For ours today (``SkillRetriever.search``): does the gold skill's ``SkillHit.patterns[0]``
    belong to it, and does the top-level ``SearchResult.patterns[0]`` (the best pattern among
    the 256 nearest documents, any skill) belong to a gold skill. For both today's and the
    recommended ranking: would the best pattern among the top-1 / top-3 ranked skills only.
    """
    from retriever.documents import ANTI_PATTERN, PATTERN

    is_pattern = np.isin(data.doc_kind, [KINDS.index(PATTERN), KINDS.index(ANTI_PATTERN)])
    pattern_rows = np.flatnonzero(is_pattern)
    today = {qi: [data.ids.index(h.id) for h in res.skills[:K]] for qi, res in results_by_q.items()}
    out: dict = {}
    print("\n== 7 patterns (over the queries whose gold skill is in that ranking's top 5)")
    head = (f"  {'ranking':<13}{'group':<12}{'n':>5}{'gold hit p[0]':>15}{'global #1':>11}"
            f"{'any of 5':>10}{'#1 of top-1':>13}{'#1 of top-3':>13}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, ranked in (("today", today), ("recommended", dict(enumerate(recommended)))):
        for g in ("dev", "symptoms", "situations"):
            if g not in data.groups:
                continue
            c = dict.fromkeys(("n", "own", "glob", "any5", "top1", "top3"), 0)
            for qi in data.groups[g]:
                gold = set(data.gold[qi].tolist())
                top = ranked[qi][:5]
                if not gold & set(top):
                    continue
                c["n"] += 1
                row = data.sims[qi]
                if name == "today":
                    res = results_by_q[qi]
                    h = next(h for h in res.skills[:5] if data.ids.index(h.id) in gold)
                    c["own"] += bool(h.patterns) and h.patterns[0].skill_id == h.id
                    ids = [data.ids.index(p.skill_id) for p in res.patterns]
                else:
                    ids = data.doc_skill[pattern_rows[np.argsort(-row[pattern_rows])[:5]]].tolist()
                c["glob"] += bool(ids) and ids[0] in gold
                c["any5"] += bool(gold & set(ids[:5]))
                for depth, counter in ((1, "top1"), (3, "top3")):
                    mask = is_pattern & np.isin(data.doc_skill, top[:depth])
                    if mask.any():
                        best = np.flatnonzero(mask)[np.argmax(row[mask])]
                        c[counter] += int(data.doc_skill[best]) in gold
            n = c["n"]
            if not n:
                continue
            r = {"n": n, "gold_hit_patterns0_is_gold": c["own"] / n if name == "today" else None,
                 "global_pattern1_in_gold": c["glob"] / n, "any_global_top5_in_gold": c["any5"] / n,
                 "best_pattern_of_top1_skill_in_gold": c["top1"] / n,
                 "best_pattern_of_top3_skills_in_gold": c["top3"] / n}
            out[f"{name}/{g}"] = {k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in r.items()}
            own = f"{c['own'] / n:.1%}" if name == "today" else "-"
            print(f"  {name:<13}{g:<12}{n:>5}{own:>15}{c['glob'] / n:>11.1%}{c['any5'] / n:>10.1%}"
                  f"{c['top1'] / n:>13.1%}{c['top3'] / n:>13.1%}")
    print("  gold hit p[0]: the gold skill's SkillHit.patterns[0] belongs to it (by construction);"
          "\n  global #1 / any of 5: the top-level best pattern(s) over all skills belong to a gold"
          " skill;\n  #1 of top-N: the best pattern among the top-N ranked skills' patterns does")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--skills", type=Path, default=None)
    p.add_argument("--dev", type=Path, default=None, help="dev query file (split by skill)")
    p.add_argument("--held-out", type=Path, action="append", default=None, metavar="FILE",
                   help="labelled held-out query file, repeatable (default: "
                        "benchmarks/queries/symptoms.jsonl and situations.jsonl)")
    p.add_argument("--offtopic", type=Path, default=HELD_OUT / "offtopic.jsonl")
    p.add_argument("--json-out", type=Path, default=RESULTS / "variants.json")
    p.add_argument("--no-reembed", action="store_true",
                   help="skip the document-text variants (they embed ~10k texts once)")
    args = p.parse_args(argv)
    args.skills = (args.skills or default_skills()).expanduser()
    args.dev = (args.dev or default_queries()).expanduser()
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
