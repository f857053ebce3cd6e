"""A ranking fitted on the collections' own questions: the numbers of ``ScoringConfig``
fitted by coordinate ascent on what ``retrieve eval --self`` asks (each question asked of an
index that lacks it), checked k-fold by skill, then on the dev sets.

Run from the repository root::

    python -m benchmarks.selffit            # both corpora; ~20 min warm on 2 busy cores

The questions:

- spawner (``../shared/corpora/spawner-skills-holdout``): every validation message and
  ``receives_from`` context (``retriever.authoring.selfeval.self_questions``);
- SKILL.md (``../shared/corpora/agent-skills-holdout``): every "When to Use" line and every
  description's "Use when" clause (``retriever.documents.use_when_texts``), asked without a
  leading "Use when".

Each is asked of an index without its own document (item folds, as ``eval --self``; a
description clause also leaves the card, whose text holds it, for the card without it).
Neither holdout corpus holds a dev query, so the dev sets stay held out from every fit.

Steps: (1) skill folds: the skills split in two by a hash of the id; a fit on one half's
questions is scored on the other half's (no skill's own text grades its fit), both ways;
(2) the fit on every question (shared by both corpora), and one per corpus; (3) each config
on the dev sets: SKILL.md dev-A/dev-B, spawner dev-A/dev-B, the written symptoms and
situations, and off-topic refusal; with paired-bootstrap intervals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    MemoEmbedder,
    default_queries,
    fail,
    holdout_skills,
    read_queries,
)
from benchmarks.skillmd import (  # noqa: E402
    bootstrap_gain,
    cell,
    refusal,
    skillmd_holdout,
    skillmd_queries_path,
    superset_index,
    weights,
)
from benchmarks.skillmd_docs import strip_lead  # noqa: E402
from benchmarks.textvectors import TextVectors  # noqa: E402
from benchmarks.variants import Bench, Report, Row  # noqa: E402
from retriever.index import documents as D  # noqa: E402
from retriever.search import rank  # noqa: E402
from retriever.search.query import clean_query  # noqa: E402
from retriever.search.rank import RankingTables, ScoringConfig, Triggers  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

    from retriever.index.tables import SkillIndex

PROG = "selffit"
ITEM_FOLDS = 5
CANDIDATES = 256
EPS = 0.002  # a coordinate step must gain more than this mean MRR@10

# The fitted numbers and the values each may take (coordinate ascent, two passes).
GRID: dict[str, tuple[float, ...]] = {
    "temperature": (0.05, 0.07, 0.1, 0.13, 0.16),
    "size_discount": (0.0, 0.25, 0.5, 0.75, 1.0, 1.25),
    "lexical_weight": (0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    "lexical_saturation": (5.0, 10.0, 20.0, 30.0),
    "keyword_bonus": (0.0, 0.02, 0.04, 0.06),
    "w:trigger": (0.4, 0.5, 0.6, 0.8, 1.0),
    "w:validation": (0.4, 0.5, 0.6, 0.8, 1.0),
    "w:use_when": (0.6, 0.7, 0.8, 1.0, 1.2),
    "w:section": (0.8, 0.9, 1.0, 1.1),
}


def get(config: ScoringConfig, name: str) -> float:
    return config.kind_weight(name[2:]) if name.startswith("w:") else getattr(config, name)


def put(config: ScoringConfig, name: str, value: float) -> ScoringConfig:
    if name.startswith("w:"):
        return weights(config, **{name[2:]: value})
    return replace(config, **{name: value})


# -- the questions, and what ranking them needs, computed once ---------------------------------


@dataclass(frozen=True)
class Question:
    corpus: str
    skill_id: str
    source: str
    held_by: str  # the field of the document that holds it (left out of its fold)
    text: str


def item_fold(q: Question) -> int:
    key = f"{q.skill_id}\0{q.held_by}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % ITEM_FOLDS


def skill_fold(skill_id: str) -> int:
    return hashlib.sha256(b"fit\0" + skill_id.encode()).digest()[0] % 2


def spawner_questions(skills) -> list[Question]:
    from retriever.authoring.selfeval import self_questions

    return [
        Question("spawner", q.skill_id, q.source, q.held_by, q.text) for q in self_questions(skills)
    ]


def skillmd_questions(index: SkillIndex) -> list[Question]:
    """Every indexed "When to Use" line and "Use when" clause, without its leading "Use
    when" (as a user would not say it)."""
    out = []
    for d in index.documents:
        if d.kind == D.USE_WHEN:
            source = "clause" if d.field.startswith("description") else "when_to_use"
            out.append(Question("skillmd", d.skill_id, source, d.field, strip_lead(d.text)))
    return out


@dataclass
class Asked:
    """One question with its inputs to the ranking (nearest rows of the global document
    list, matched triggers, BM25 of its fold's index)."""

    q: Question
    scores: np.ndarray
    rows: np.ndarray
    keywords: list
    bm25: np.ndarray


class Corpus:
    """One collection: its index, its questions asked fold by fold."""

    def __init__(
        self,
        name: str,
        full: SkillIndex,
        questions: list[Question],
        tv: TextVectors,
        card_without_clause: Callable[[str], str] | None = None,
    ) -> None:
        import numpy as np

        from retriever.index.documents import Document
        from retriever.index.lexical import build_lexical
        from retriever.index.vectors import VectorIndex

        t0 = time.perf_counter()
        self.name = name
        self.full = full
        self.ids = [s.id for s in full.skills]
        docs = list(full.documents)
        vectors = full.vectors.all_vectors()
        row_of = {(d.skill_id, d.field): i for i, d in enumerate(docs)}
        card_row = {d.skill_id: i for i, d in enumerate(docs) if d.field == "card"}
        # cards without their clause, appended: a fold asking a clause swaps them in
        swap: dict[str, int] = {}
        if card_without_clause is not None:
            for q in questions:
                if q.source == "clause" and q.skill_id in card_row and q.skill_id not in swap:
                    old = docs[card_row[q.skill_id]]
                    text = card_without_clause(q.skill_id)
                    if text != old.text:
                        swap[q.skill_id] = len(docs)
                        docs.append(Document(old.skill_id, old.kind, old.field, text))
            if swap:
                extra = tv.encode([docs[i].text for i in swap.values()])
                vectors = np.concatenate([vectors, extra])
        self.documents = docs
        n_full = len(full.documents)
        texts = [clean_query(q.text)[0] for q in questions]
        qvecs = tv.encode(texts)
        triggers = Triggers(full.skills)
        self.asked: list[Asked] = []
        for f in range(ITEM_FOLDS):
            idx = [i for i, q in enumerate(questions) if item_fold(q) == f]
            held = {
                row_of[(questions[i].skill_id, questions[i].held_by)]
                for i in idx
                if (questions[i].skill_id, questions[i].held_by) in row_of
            }
            swapped = {
                questions[i].skill_id
                for i in idx
                if questions[i].source == "clause" and questions[i].skill_id in swap
            }
            held |= {card_row[s] for s in swapped}
            keep = [r for r in range(n_full) if r not in held] + [swap[s] for s in sorted(swapped)]
            keep_arr = np.asarray(keep, dtype=np.int64)
            sub_vectors = VectorIndex.build(np.ascontiguousarray(vectors[keep_arr]))
            per_skill: dict[str, list[str]] = {s: [] for s in self.ids}
            for r in keep:
                per_skill[docs[r].skill_id].append(docs[r].text)
            lexical = build_lexical(["\n".join(per_skill[s]) for s in self.ids])
            for i in idx:
                scores, rows = sub_vectors.search(qvecs[i], min(CANDIDATES, len(keep)))[:2]
                self.asked.append(
                    Asked(
                        questions[i],
                        scores,
                        keep_arr[rows],
                        triggers.find(texts[i]),
                        lexical.scores(texts[i]),
                    )
                )
        self._tables: dict[ScoringConfig, RankingTables] = {}
        print(
            f"  {name}: {len(questions)} questions of {len({q.skill_id for q in questions})} "
            f"skills asked in {ITEM_FOLDS} item folds ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in ("name", "ids", "documents", "asked")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._tables = {}

    def tables(self, config: ScoringConfig) -> RankingTables:
        key = replace(config, no_match_threshold=0.0)
        if key not in self._tables:
            if len(self._tables) > 64:
                self._tables.clear()
            self._tables[key] = RankingTables(self.documents, self.ids, config)
        return self._tables[key]

    def mrr(self, config: ScoringConfig, which: Sequence[int]) -> np.ndarray:
        """MRR@10 of the questions ``which`` under ``config``."""
        import numpy as np

        tables = self.tables(config)
        out = np.zeros(len(which))
        for j, i in enumerate(which):
            a = self.asked[i]
            r = rank.rank(
                rank.candidates(a.scores, a.rows, tables, config),
                a.keywords,
                a.bm25,
                tables,
                config,
                10,
            )
            for place, x in enumerate(r.ranked[:10]):
                if x.skill_id == a.q.skill_id:
                    out[j] = 1.0 / (place + 1)
                    break
        return out


def cached_corpus(name: str, full: SkillIndex, make: Callable[[], Corpus]) -> Corpus:
    """``make()``, kept under ``benchmarks/results`` by the index's documents."""
    import pickle

    h = hashlib.sha256()
    for d in full.documents:
        h.update(f"{d.skill_id}\0{d.kind}\0{d.field}\0{d.text}\0".encode())
    path = RESULTS / f"selffit-{name}-{h.hexdigest()[:16]}.pickle"
    if path.is_file():
        with path.open("rb") as f:
            return pickle.load(f)
    corpus = make()
    with path.open("wb") as f:
        pickle.dump(corpus, f)
    return corpus


def sampled(corpus: Corpus, n: int) -> list[int]:
    """At most ``n`` of the corpus's questions, picked by a hash of their text."""
    order = sorted(
        range(len(corpus.asked)),
        key=lambda i: hashlib.sha256(corpus.asked[i].q.text.encode()).digest(),
    )
    return sorted(order[:n])


BY_SKILL = False  # --by-skill: every skill weighs the same, whatever its number of questions


def _mean(corpus: Corpus, config, which: Sequence[int]) -> float:
    import numpy as np

    m = corpus.mrr(config, which)
    if not BY_SKILL:
        return float(m.mean())
    skills = np.array([corpus.asked[i].q.skill_id for i in which])
    _, inverse, counts = np.unique(skills, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return float((m * w).sum() / w.sum())


def objective(corpora: Sequence[Corpus], subsets: dict[str, list[int]], config) -> float:
    """Mean over the corpora of their questions' mean MRR@10 (``BY_SKILL``: of their skills'
    means)."""
    return float(sum(_mean(c, config, subsets[c.name]) for c in corpora) / len(corpora))


def fit(
    corpora: Sequence[Corpus],
    subsets: dict[str, list[int]],
    start: ScoringConfig,
    params: Sequence[str],
    log: Callable[[str], None] = print,
) -> tuple[ScoringConfig, float, list]:
    """Coordinate ascent over ``params`` (``GRID``), two passes, from ``start``."""
    config = start
    best = objective(corpora, subsets, config)
    trace = [("start", None, round(best, 4))]
    for pass_ in range(2):
        changed = False
        for name in params:
            for value in GRID[name]:
                if value == get(config, name):
                    continue
                c = put(config, name, value)
                score = objective(corpora, subsets, c)
                if score > best + EPS:
                    config, best, changed = c, score, True
                    trace.append((name, value, round(best, 4)))
                    log(f"    pass {pass_ + 1}: {name} = {value:g} -> {best:.4f}")
        if not changed:
            break
    return config, best, trace


def params_for(corpora: Sequence[Corpus]) -> list[str]:
    """The grid's numbers that matter to these corpora (a kind weight only where the kind is)."""
    kinds = {d.kind for c in corpora for d in c.documents}
    out = [p for p in GRID if not p.startswith("w:") or p[2:] in kinds]
    if not any(c.name == "spawner" for c in corpora):
        out = [p for p in out if p != "keyword_bonus"]
    return out


# -- the dev sets ------------------------------------------------------------------------------


def dev_bench(full: SkillIndex, query_files: Sequence[Path], tv: TextVectors, dev_stem: str):
    queries = read_queries(query_files)
    texts = [clean_query(q.query)[0] for q in queries]
    qvecs = tv.encode(texts)

    emb = MemoEmbedder(tv.embedder)
    emb.remember(texts, qvecs)
    stand_in = SimpleNamespace(index=full, skills=full.skills, embedder=emb)
    return Bench(stand_in, queries, qvecs, dev_stem)


def threshold_for(bench: Bench, config: ScoringConfig, group: str = "dev-A") -> float:
    """The highest no-match threshold (0.01 grid) that still answers 95% of ``group``."""
    import numpy as np

    rankings = bench.rankings(config)
    rows = bench.groups[group]
    top = np.array([rankings[i].top_score for i in rows])
    vouched = np.array([any(h.n_words > 1 for h in bench.queries[i].keywords) for i in rows])
    best = 0.0
    for t in np.arange(0.0, 1.0, 0.01):
        if ((top < t) & ~vouched).mean() <= 0.05:
            best = round(float(t), 2)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--json-out", type=Path, default=RESULTS / "selffit.json")
    p.add_argument("--quick", action="store_true", help="no skill folds")
    p.add_argument("--fit-questions", type=int, default=2500, metavar="N")
    p.add_argument(
        "--by-skill",
        action="store_true",
        help="weigh every skill the same in the fit (the dev sets have one query a skill)",
    )
    args = p.parse_args(argv)
    global BY_SKILL
    BY_SKILL = args.by_skill
    try:
        out = run(args)
    except BenchError as e:
        fail(PROG, str(e))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {args.json_out} ({out['seconds']:.0f} s)")
    return 0


def run(args) -> dict:
    from retriever.index.embed import make_embedder

    started = time.perf_counter()
    tv = TextVectors(make_embedder(args.model))
    print("indexes and questions", flush=True)
    sp_full = superset_index(holdout_skills(), tv, D.collection_documents)
    md_full = superset_index(skillmd_holdout(), tv, D.collection_documents)
    md_skills = {s.id: s for s in md_full.skills}

    def card_without_clause(sid: str) -> str:
        s = md_skills[sid]
        clause = D.use_when_clause(s.description)
        core = s.description[: len(s.description) - len(clause)].strip()
        return D.card_text(replace(s, description=core))

    spawner = cached_corpus(
        "spawner",
        sp_full,
        lambda: Corpus("spawner", sp_full, spawner_questions(sp_full.skills), tv),
    )
    skillmd = cached_corpus(
        "skillmd",
        md_full,
        lambda: Corpus("skillmd", md_full, skillmd_questions(md_full), tv, card_without_clause),
    )
    corpora = [spawner, skillmd]
    default = ScoringConfig()
    every = {c.name: list(range(len(c.asked))) for c in corpora}
    # the fits read at most ``--fit-questions`` questions of a corpus (a hash of the text
    # picks them), to keep a coordinate step to about a second; scores use every question
    sample = {c.name: sampled(c, args.fit_questions) for c in corpora}
    half = {
        h: {
            c.name: [i for i, a in enumerate(c.asked) if skill_fold(a.q.skill_id) == h]
            for c in corpora
        }
        for h in (0, 1)
    }
    half_sample = {
        h: {n: [i for i in sample[n] if i in set(half[h][n])] for n in sample} for h in (0, 1)
    }
    out: dict = {"questions": {c.name: len(c.asked) for c in corpora}}
    t = time.perf_counter()
    base = {c.name: float(c.mrr(default, every[c.name]).mean()) for c in corpora}
    per_config = time.perf_counter() - t
    print(
        f"defaults, self MRR@10: {base} ({per_config:.1f} s a config over "
        f"{sum(len(v) for v in every.values())} questions)",
        flush=True,
    )
    out["self_defaults"] = base

    # (1) skill folds: fit on one half of the skills, score on the other
    if not args.quick:
        folds = []
        for h in (0, 1):
            print(f"skill fold {h}: fit on half {h}, score on half {1 - h}", flush=True)
            cfg, _, _ = fit(corpora, half_sample[h], default, params_for(corpora))
            row = {"fit_on": h, "config": label(cfg)}
            for c in corpora:
                other = half[1 - h][c.name]
                d0 = c.mrr(default, other)
                d1 = c.mrr(cfg, other)
                row[c.name] = {
                    "defaults": round(float(d0.mean()), 4),
                    "fitted": round(float(d1.mean()), 4),
                    "gain_ci95": _boot(d1 - d0),
                }
                print(
                    f"  {c.name}: held-out half {d0.mean():.4f} -> {d1.mean():.4f} {_boot(d1 - d0)}"
                )
            # per-collection fits, same split
            for c in corpora:
                own, _, _ = fit([c], half_sample[h], default, params_for([c]), log=lambda s: None)
                other = half[1 - h][c.name]
                d0, d1 = c.mrr(default, other), c.mrr(own, other)
                row[c.name]["own_fit"] = round(float(d1.mean()), 4)
                row[c.name]["own_fit_config"] = label(own)
                print(
                    f"  {c.name} fitted on itself: held-out half {d0.mean():.4f} -> {d1.mean():.4f}"
                )
            folds.append(row)
        out["skill_folds"] = folds

    # (2) the fits on every question
    print("fit on every question of both corpora", flush=True)
    shared, shared_score, trace = fit(corpora, sample, default, params_for(corpora))
    out["shared_fit"] = {"config": asdict(shared), "label": label(shared), "trace": trace}
    own = {}
    for c in corpora:
        print(f"fit on {c.name}'s questions only", flush=True)
        own[c.name], _, tr = fit([c], sample, default, params_for([c]))
        out[f"own_fit_{c.name}"] = {
            "config": asdict(own[c.name]),
            "label": label(own[c.name]),
            "trace": tr,
        }
    for name, cfg in (
        ("defaults", default),
        ("shared", shared),
        *((f"own {k}", v) for k, v in own.items()),
    ):
        print(
            f"  self MRR@10 {name:<14} "
            + "  ".join(f"{c.name} {c.mrr(cfg, every[c.name]).mean():.4f}" for c in corpora)
        )

    # (3) the dev sets
    print("dev sets", flush=True)
    sp_bench = dev_bench(
        sp_full,
        [
            default_queries(),
            HELD_OUT / "symptoms.jsonl",
            HELD_OUT / "situations.jsonl",
            HELD_OUT / "offtopic.jsonl",
        ],
        tv,
        default_queries().stem,
    )
    md_bench = dev_bench(md_full, [skillmd_queries_path()], tv, skillmd_queries_path().stem)
    configs = {"defaults": default, "shared fit": shared}
    configs |= {"spawner's own fit": own["spawner"], "skillmd's own fit": own["skillmd"]}
    dev: dict = {}
    rows: dict[str, tuple[Row, Row]] = {}
    groups_sp = ("dev-A", "dev-B", "dev", "symptoms", "situations")
    groups_md = ("dev-A", "dev-B", "dev")
    print(
        f"{'config (MRR@10/R@5)':<22}"
        + "".join(f"{'md ' + g:>14}" for g in groups_md)
        + "".join(f"{'sp ' + g:>14}" for g in groups_sp)
        + f"{'off-topic':>11}{'off@t95':>9}"
    )
    for name, cfg in configs.items():
        r_sp = Report(sp_bench).ours("fit", cfg, variant=name, record=False)
        r_md = Report(md_bench).ours("fit", cfg, variant=name, record=False)
        rows[name] = (r_md, r_sp)
        ref = refusal(sp_bench, cfg)
        t95 = threshold_for(sp_bench, cfg)
        ref95 = refusal(sp_bench, replace(cfg, no_match_threshold=t95))
        dev[name] = {
            "skillmd": r_md.results,
            "spawner": r_sp.results,
            "refusal_at_0.41": ref,
            "threshold_95_dev_A": t95,
            "refusal_at_t95": ref95,
        }
        print(
            f"{name:<22}"
            + "".join(f"{cell(r_md, g):>14}" for g in groups_md)
            + "".join(f"{cell(r_sp, g):>14}" for g in groups_sp)
            + f"{ref.get('offtopic', 0):>11.3f}{ref95.get('offtopic', 0):>9.3f}"
            + f"  (t95={t95})"
        )
    boot = {}
    for name in configs:
        if name == "defaults":
            continue
        boot[name] = {
            "skillmd": bootstrap_gain(md_bench, rows[name][0], rows["defaults"][0], groups_md),
            "spawner": bootstrap_gain(sp_bench, rows[name][1], rows["defaults"][1], groups_sp),
        }
        for corpus, res in boot[name].items():
            for g, m in res.items():
                mrr, r5 = m["MRR@10"], m["R@5"]
                print(
                    f"  {name:<18} {corpus:<8} {g:<11} MRR@10 {mrr['gain']:+.3f} "
                    f"[{mrr['ci95'][0]:+.3f}, {mrr['ci95'][1]:+.3f}]  R@5 "
                    f"{r5['gain']:+.3f} [{r5['ci95'][0]:+.3f}, {r5['ci95'][1]:+.3f}]"
                )
    out["dev"] = dev
    out["bootstrap"] = boot
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _boot(d, n: int = 2000) -> list[float]:
    import numpy as np

    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(d), size=(n, len(d)))
    lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    return [round(float(d.mean()), 4), round(float(lo), 4), round(float(hi), 4)]


def label(config: ScoringConfig) -> str:
    from benchmarks.variants import label as vlabel

    return vlabel(config)


if __name__ == "__main__":
    raise SystemExit(main())
