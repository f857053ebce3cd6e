"""SKILL.md collections as first-class: what the format says about when a skill applies (the
"When to Use" lines, the description's "Use when" clause, the headings) as document kinds of
their own, and body-section chunking against today's sections; every choice made on dev-A of
the SKILL.md dev set, reported on dev-B.

Run from the repository root::

    python -m benchmarks.skillmd      # ~15 min the first time (embeds ~17k texts), then ~2 min

The dev queries (``../shared/eval/skillmd-dev-queries.jsonl``) are lines removed from the
"When to Use" sections of their gold skills: they are measured against
``../shared/corpora/agent-skills-holdout``, the corpus less exactly those lines, never against
the full corpus (the script refuses it). A "When to Use" document kind indexes the lines that
remain. The queries are split by gold skill (``benchmarks.variants.dev_half``): dev-A chooses,
dev-B reports. Off-topic refusal: the 58 everyday questions of
``benchmarks/queries/offtopic.jsonl`` (the other 23 are topics this corpus has).

Every document any variant may index is made and embedded once (``benchmarks.skillmd_docs``,
vectors kept by text in ``benchmarks.textvectors``); a variant is a subset of them (BM25
rebuilt over the kept text) and a ``ScoringConfig``, ranked by the library's own
``rank.candidates`` + ``rank.rank`` (``benchmarks.variants.Bench``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    BenchQuery,
    MemoEmbedder,
    fail,
    leak_check,
    read_queries,
    require_data,
    skillmd_dev_queries,
    skillmd_holdout_skills,
)
from benchmarks.skillmd_docs import (  # noqa: E402
    CARD_CORE,
    HEADINGS,
    SECTION_CONT,
    USE_WHEN_S,
    superset_documents,
)
from benchmarks.textvectors import TextVectors  # noqa: E402
from benchmarks.variants import Bench, Report, Row  # noqa: E402
from retriever.index import documents as D  # noqa: E402
from retriever.index.documents import Document  # noqa: E402
from retriever.search.query import clean_query  # noqa: E402
from retriever.search.rank import ScoringConfig  # noqa: E402

if TYPE_CHECKING:
    from retriever.index.tables import SkillIndex

PROG = "skillmd"
EPS = 0.005  # a change must win dev-A by more than this MRR@10
GROUPS = ("dev-A", "dev-B", "dev")
EVERYDAY_OFFTOPIC = 58  # off-001..off-058; the rest are topics of the agent-skills corpus


skillmd_queries_path = skillmd_dev_queries
skillmd_holdout = skillmd_holdout_skills


# -- the index of every document, and variants as subsets of it -------------------------------


def superset_index(skills_dir: Path, tv: TextVectors, make_docs=superset_documents) -> SkillIndex:
    """An in-memory index of every document ``make_docs`` makes of the collection."""
    import numpy as np

    from retriever.index.center import center_of_array
    from retriever.index.lexical import build_lexical
    from retriever.index.manifest import Counts, Manifest
    from retriever.index.tables import SkillIndex
    from retriever.index.vectors import VectorIndex
    from retriever.load.collection import load_collection
    from retriever.rules import compile_rules

    report = load_collection([skills_dir])
    docs = make_docs(report.skills)
    vectors = tv.encode([d.text for d in docs])
    rules = compile_rules(report.skills)
    rule_vectors = np.zeros((len(rules), vectors.shape[1]), np.float32)
    semantic = [r.row for r in rules if not r.is_keyword]
    if semantic:
        rule_vectors[semantic] = tv.encode([rules[i].rule.trigger for i in semantic])
    texts: dict[str, list[str]] = {s.id: [] for s in report.skills}
    for d in docs:
        texts[d.skill_id].append(d.text)
    index = VectorIndex.build(vectors)
    manifest = Manifest(
        package_version="benchmark",
        model=tv.embedder.model_id,
        dimension=int(vectors.shape[1]),
        metric="inner_product",
        faiss_index=index.kind,
        corpus_fingerprint="",
        documents="superset",
        roots=(str(skills_dir),),
        counts=Counts(len(report.skills), len(docs), len(rules), len(report.problems)),
        created_at="",
        center=center_of_array(vectors),
    )
    return SkillIndex(
        manifest,
        index,
        tuple(docs),
        tuple(report.skills),
        rule_vectors,
        build_lexical(["\n".join(texts[s.id]) for s in report.skills]),
        tuple(report.problems),
    )


@dataclass(frozen=True)
class Docs:
    """Which documents of the superset a variant indexes (a predicate, named)."""

    name: str
    keep: Callable[[Document], bool]


class Variants:
    """Benches over subsets of one superset index, made once per subset."""

    def __init__(self, full: SkillIndex, queries, vectors, dev_stem: str, embedder) -> None:
        self.full = full
        self.queries = queries
        self.vectors = vectors
        self.dev_stem = dev_stem
        self.embedder = embedder
        self._benches: dict[str, Bench] = {}

    def bench(self, docs: Docs) -> Bench:
        from retriever.index.build import subset_index

        if docs.name not in self._benches:
            rows = [i for i, d in enumerate(self.full.documents) if docs.keep(d)]
            vectors = self._all_vectors()
            sub = subset_index(self.full, rows, vectors)
            stand_in = SimpleNamespace(index=sub, skills=sub.skills, embedder=self.embedder)
            self._benches[docs.name] = Bench(stand_in, self.queries, self.vectors, self.dev_stem)
        return self._benches[docs.name]

    def _all_vectors(self):
        if not hasattr(self, "_vecs"):
            self._vecs = self.full.vectors.all_vectors()
        return self._vecs

    def row(self, docs: Docs, config: ScoringConfig, label: str = "") -> Row:
        bench = self.bench(docs)
        return Report(bench).ours("skillmd", config, variant=label or docs.name, record=False)


def weights(config: ScoringConfig, **kinds: float) -> ScoringConfig:
    """``config`` with these kinds' weights (any kind name), 1.0 left out, sorted."""
    w = dict(config.kind_weights) | kinds
    return replace(config, kind_weights=tuple(sorted((k, v) for k, v in w.items() if v != 1.0)))


def key(row: Row, group: str = "dev-A") -> tuple[float, float]:
    return (round(row.results[group]["MRR@10"], 4), round(row.results[group]["R@5"], 4))


def cell(row: Row, group: str) -> str:
    m = row.results.get(group)
    return f"{m['MRR@10']:.3f}/{m['R@5']:.3f}" if m else "-"


def bootstrap_gain(bench: Bench, a: Row, b: Row, groups: Sequence[str], n: int = 2000) -> dict:
    """Paired bootstrap of the MRR@10 (and R@5) gain of ``a`` over ``b`` per group."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for g in groups:
        rows = bench.groups[g]
        idx = rng.integers(0, len(rows), size=(n, len(rows)))
        res = {}
        for metric in ("MRR@10", "R@5"):
            d = np.array([a.per_query[i][metric] - b.per_query[i][metric] for i in rows])
            lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
            res[metric] = {"gain": round(float(d.mean()), 4), "ci95": [round(lo, 4), round(hi, 4)]}
        out[g] = res
    return out


def refusal(bench: Bench, config: ScoringConfig) -> dict[str, float]:
    """Share of each group answered (labelled groups) or refused (off-topic), by the
    library's no-match rule at ``config.no_match_threshold``."""
    import numpy as np

    rankings = bench.rankings(config)
    flags = np.array([r.no_match for r in rankings])
    out = {}
    for g, rows in bench.groups.items():
        if g in ("offtopic-A", "offtopic-B"):
            continue
        share = float(flags[rows].mean())
        out[g] = round(share if g == "offtopic" else 1 - share, 3)
    return out


def description_rows(full: SkillIndex, bench: Bench, tv: TextVectors) -> list[list[str]]:
    """The description-vector competitor: cosine with one vector per skill description."""
    import numpy as np

    ids = [s.id for s in full.skills]
    dv = tv.encode([s.description for s in full.skills])
    sims = bench.vectors @ dv.T
    return [[ids[i] for i in np.argsort(-row, kind="stable")[:10]] for row in sims]


# -- the experiment -------------------------------------------------------------------------


def load(args) -> tuple[Variants, TextVectors, list[BenchQuery]]:
    from retriever.index.embed import make_embedder

    queries = read_queries([args.dev, args.offtopic])
    queries = [q for q in queries if q.relevant or int(q.id.split("-")[-1]) <= EVERYDAY_OFFTOPIC]
    tv = TextVectors(make_embedder(args.model))
    texts = [clean_query(q.query)[0] for q in queries]
    qvecs = tv.encode(texts)
    full = superset_index(args.skills, tv)
    known = {s.id for s in full.skills}
    bad = [q.id for q in queries if any(r not in known for r in q.relevant)]
    if bad:
        raise BenchError(f"{len(bad)} queries name skills the corpus lacks, e.g. {bad[0]}")
    emb = MemoEmbedder(tv.embedder)
    emb.remember(texts, qvecs)
    return Variants(full, queries, qvecs, args.dev.stem, emb), tv, queries


def section_filters(full: SkillIndex) -> dict[str, Callable[[Document], bool]]:
    """Predicates over section documents: today's (the first 12 of a body), every section,
    and either less the "When to Use" sections (their lines have documents of their own),
    the "Do not use" ones, and the boilerplate ones (the same text in 3+ skills)."""
    shared: Counter[str] = Counter()
    seen = set()
    for d in full.documents:
        if d.kind == D.SECTION and (d.skill_id, d.text) not in seen:
            seen.add((d.skill_id, d.text))
            shared[d.text] += 1
    boiler = {t for t, n in shared.items() if n >= 3}

    def heading(d: Document) -> str:
        return d.field.split("#", 1)[1] if "#" in d.field else ""

    def first12(d: Document) -> bool:
        return d.item is not None and d.item < D.MAX_SECTIONS

    def is_when(d: Document) -> bool:
        return D.is_when_heading(heading(d))

    def is_not(d: Document) -> bool:
        return D.is_not_when_heading(heading(d))

    def dropped(d: Document) -> bool:
        return is_when(d) or is_not(d) or d.text in boiler

    # refilled: the first 12 of the sections left after the drops
    refill_rank: dict[int, int] = {}
    per_skill: Counter[str] = Counter()
    for d in full.documents:
        if d.kind == D.SECTION and not dropped(d):
            refill_rank[id(d)] = per_skill[d.skill_id]
            per_skill[d.skill_id] += 1
    return {
        "today (first 12 sections)": first12,
        "first 12 less 'When to Use'": lambda d: first12(d) and not is_when(d),
        "first 12 less 'Do not use'": lambda d: first12(d) and not is_not(d),
        "first 12 less boilerplate (same text in 3+ skills)": lambda d: (
            first12(d) and d.text not in boiler
        ),
        "first 12 less both headings": lambda d: first12(d) and not is_when(d) and not is_not(d),
        "first 12 less all three": lambda d: first12(d) and not dropped(d),
        "12 after dropping all three (refilled)": lambda d: (
            refill_rank.get(id(d), 99) < D.MAX_SECTIONS
        ),
        "every section": lambda d: True,
        "every section less both headings": lambda d: not is_when(d) and not is_not(d),
        "every section less all three": lambda d: not dropped(d),
    }


def boilerplate_lines(full: SkillIndex) -> set[str]:
    """``use_when`` texts written alike in ``SHARED_USE_WHEN`` or more skills."""
    per_text: Counter[str] = Counter(
        t for _, t in {(d.skill_id, d.text) for d in full.documents if d.kind == D.USE_WHEN}
    )
    return {t for t, n in per_text.items() if n >= D.SHARED_USE_WHEN}


def run(args) -> dict:
    started = time.perf_counter()
    var, tv, queries = load(args)
    full = var.full
    n_dev = sum(1 for q in queries if q.relevant)
    print(
        f"{len(full.skills)} skills, {len(full.documents)} documents in the superset; "
        f"{n_dev} dev queries, {len(queries) - n_dev} off-topic "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    sections = section_filters(full)
    boiler = boilerplate_lines(full)
    base_kinds = {D.CARD, D.TRIGGER, D.TOPICS}

    def docs(
        name: str,
        sec: Callable[[Document], bool],
        when: str | None = None,
        card: str = D.CARD,
        extra: Sequence[str] = (),
        keep_boilerplate: bool = False,
    ) -> Docs:
        kinds = (base_kinds - {D.CARD}) | {card} | set(extra)

        def keep(d: Document) -> bool:
            if d.kind == D.SECTION:
                return sec(d)
            if d.kind == SECTION_CONT:  # the windows of the sections kept
                return SECTION_CONT in extra and sec(section_of[d.skill_id, d.item])
            if when and d.kind == when:
                strip = D.USE_WHEN if when == USE_WHEN_S else when
                return keep_boilerplate or _unstripped(d, strip) not in boiler
            return d.kind in kinds

        return Docs(name, keep)

    # the stripped kind's texts differ from the library's: boilerplate is told by the
    # original line of the same skill and field
    original = {(d.skill_id, d.field): d.text for d in full.documents if d.kind == D.USE_WHEN}

    def _unstripped(d: Document, kind: str) -> str:
        return original.get((d.skill_id, d.field), d.text) if kind != d.kind else d.text

    section_of = {(d.skill_id, d.item): d for d in full.documents if d.kind == D.SECTION}
    default = ScoringConfig()
    today_cfg = replace(default, kind_weights=(("trigger", 0.6), ("validation", 0.6)))
    table: list[tuple[str, Row, str, int]] = []

    def measure(family: str, d: Docs, config: ScoringConfig, label: str) -> Row:
        row = var.row(d, config, label)
        n = len(var.bench(d).index.documents)
        table.append((family, row, d.name, n))
        print(
            f"  {label[:64]:<64} {cell(row, 'dev-A'):>12} {cell(row, 'dev-B'):>12}"
            f" {cell(row, 'dev'):>12} {n:>7}",
            flush=True,
        )
        return row

    print(f"\n  {'variant (MRR@10/R@5)':<64}{'dev-A':>13}{'dev-B':>13}{'dev':>13}{'docs':>8}")
    today_docs = docs("today", sections["today (first 12 sections)"])
    today = measure("today", today_docs, today_cfg, "today: card, triggers, topics, 12 sections")

    # Family 1, the decision: which sections, and the "When to Use" lines (boilerplate
    # lines left out) at which weight; chosen on dev-A, a change must win by more than EPS.
    print("family 1: sections x 'When to Use' lines (the decision, on dev-A)")
    treatments = {
        "12 sections": sections["today (first 12 sections)"],
        "12 less 'Do not use'": sections["first 12 less 'Do not use'"],
        "12 less 'When to Use' and 'Do not use'": sections["first 12 less both headings"],
        "12 less those and boilerplate": sections["first 12 less all three"],
    }
    family1 = []
    for sname, pred in treatments.items():
        for w in (None, 0.6, 0.8, 1.0):
            d = docs(f"{sname}|{w}", pred, D.USE_WHEN if w else None)
            cfg = weights(today_cfg, use_when=w) if w else today_cfg
            label = f"{sname}, " + (f"+use_when x{w:g}" if w else "no use_when")
            family1.append((measure("1 sections x use_when", d, cfg, label), d, cfg))
    best = max(family1, key=lambda x: key(x[0]))
    chosen_row, chosen_docs, chosen_cfg = (today, today_docs, today_cfg)
    if key(best[0])[0] - key(today)[0] > EPS:
        chosen_row, chosen_docs, chosen_cfg = best
    print(f"  -> chosen: {chosen_row.variant}")

    # Family 2, reported: alternatives to the choice. Each adds documents (a slower scan)
    # or changes their text; adopted only when it wins dev-A by more than EPS and does not
    # lose dev-B.
    print("family 2: alternatives to the choice (adopted only on a win on dev-A and dev-B)")
    chosen_sec = treatments["12 less 'When to Use' and 'Do not use'"]
    alts = [
        (
            "every section less 'When to Use' and 'Do not use'",
            docs("every-less", sections["every section less both headings"], D.USE_WHEN),
            chosen_cfg,
        ),
        (
            "refilled: 12 after dropping those and boilerplate",
            docs("refill", sections["12 after dropping all three (refilled)"], D.USE_WHEN),
            chosen_cfg,
        ),
        (
            "'When to Use' lines without a leading 'Use when'",
            docs("stripped", chosen_sec, USE_WHEN_S),
            weights(today_cfg, use_when_s=chosen_cfg.kind_weight(D.USE_WHEN)),
        ),
        (
            "card without its 'Use when' clause",
            docs("card-core", chosen_sec, D.USE_WHEN, card=CARD_CORE),
            chosen_cfg,
        ),
        (
            "boilerplate 'When to Use' lines kept",
            docs("boiler-kept", chosen_sec, D.USE_WHEN, keep_boilerplate=True),
            chosen_cfg,
        ),
    ]
    for w in (0.6, 0.8, 1.0):
        alts.append(
            (
                f"+ continuation windows of long sections x{w:g}",
                docs("cont", chosen_sec, D.USE_WHEN, extra=(SECTION_CONT,)),
                weights(chosen_cfg, **{SECTION_CONT: w}),
            )
        )
        alts.append(
            (
                f"+ a headings document x{w:g}",
                docs("headings", chosen_sec, D.USE_WHEN, extra=(HEADINGS,)),
                weights(chosen_cfg, **{HEADINGS: w}),
            )
        )
    adopted = []
    for label, d, cfg in alts:
        row = measure("2 alternatives", d, cfg, label)
        if (
            key(row)[0] - key(chosen_row)[0] > EPS
            and row.results["dev-B"]["MRR@10"] >= chosen_row.results["dev-B"]["MRR@10"]
        ):
            adopted.append(label)
    print(f"  -> alternatives that would be adopted: {adopted or 'none'}")

    # competitors, over today's text and over the chosen text
    tb = var.bench(today_docs)
    cb = var.bench(chosen_docs)
    rep_t, rep_c = Report(tb), Report(cb)
    bm25_today = rep_t.add("bm25", "BM25 over today's text", tb.bm25_run())
    bm25_chosen = rep_c.add("bm25", "BM25 over the chosen text", cb.bm25_run())
    desc = rep_t.add("desc", "description vector", description_rows(full, tb, tv))
    final = [
        ("ours today", today),
        ("ours chosen", chosen_row),
        ("BM25 (today's text)", bm25_today),
        ("BM25 (chosen text)", bm25_chosen),
        ("description vector", desc),
    ]
    print(f"\n{'system (MRR@10/R@5)':<30}" + "".join(f"{g:>14}" for g in GROUPS))
    for name, row in final:
        print(f"{name:<30}" + "".join(f"{cell(row, g):>14}" for g in GROUPS))
    boot = {
        "chosen vs today": bootstrap_gain(cb, chosen_row, today, GROUPS),
        "chosen vs BM25 (today's text)": bootstrap_gain(cb, chosen_row, bm25_today, GROUPS),
        "chosen vs description vector": bootstrap_gain(cb, chosen_row, desc, GROUPS),
    }
    for name, res in boot.items():
        for g, m in res.items():
            mrr, r5 = m["MRR@10"], m["R@5"]
            print(
                f"  {name:<32} {g:<6} MRR@10 {mrr['gain']:+.3f} "
                f"[{mrr['ci95'][0]:+.3f}, {mrr['ci95'][1]:+.3f}]  "
                f"R@5 {r5['gain']:+.3f} [{r5['ci95'][0]:+.3f}, {r5['ci95'][1]:+.3f}]"
            )
    ref = {"today": refusal(tb, today_cfg), "chosen": refusal(cb, chosen_cfg)}
    print(f"no match at {default.no_match_threshold}: today {ref['today']}; chosen {ref['chosen']}")
    counts = {"today": len(tb.index.documents), "chosen": len(cb.index.documents)}
    print(f"documents: today {counts['today']}, chosen {counts['chosen']}")
    return {
        "rows": [
            {"family": f, "variant": r.variant, "docs": dn, "documents": n, "results": r.results}
            for f, r, dn, n in table
        ],
        "chosen": {"docs": chosen_docs.name, "kind_weights": chosen_cfg.kind_weights},
        "adopted_alternatives": adopted,
        "final": {name: r.results for name, r in final},
        "bootstrap": boot,
        "refusal": ref,
        "documents": counts,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--skills", type=Path, default=None)
    p.add_argument("--dev", type=Path, default=None)
    p.add_argument("--offtopic", type=Path, default=HELD_OUT / "offtopic.jsonl")
    p.add_argument("--model", default=None)
    p.add_argument("--json-out", type=Path, default=RESULTS / "skillmd.json")
    args = p.parse_args(argv)
    args.skills = (args.skills or skillmd_holdout()).expanduser()
    args.dev = (args.dev or skillmd_queries_path()).expanduser()
    leak = leak_check(args.skills, [args.dev])
    if leak:
        fail(PROG, leak)
    try:
        require_data(args.skills, [args.dev, args.offtopic])
        out = run(args)
    except BenchError as e:
        fail(PROG, str(e))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {args.json_out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
