"""The before/after table of quality round 3: both dev sets (SKILL.md and spawner, each split
by skill into dev-A and dev-B), the written symptoms and situations, and off-topic refusal,
for ours today, ours with the SKILL.md document kinds, and ours with a fitted ranking; BM25 and
the description vector beside them; paired-bootstrap intervals of every gain.

Run from the repository root, after ``python -m benchmarks.skillmd`` and
``python -m benchmarks.selffit`` (it reads the configs ``selffit`` wrote)::

    python -m benchmarks.round3

"Today" is the documents and ``ScoringConfig`` of the commit before this round: the
library's documents less the ``use_when`` kind, with the "When to Use" and "Do not use"
sections indexed as sections, and the defaults without a ``use_when`` weight.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    default_queries,
    holdout_skills,
    skillmd_dev_queries,
    skillmd_holdout_skills,
)
from benchmarks.selffit import dev_bench, threshold_for  # noqa: E402
from benchmarks.skillmd import (  # noqa: E402
    bootstrap_gain,
    cell,
    description_rows,
    refusal,
    superset_index,
)
from benchmarks.skillmd_docs import library_documents  # noqa: E402
from benchmarks.textvectors import TextVectors  # noqa: E402
from benchmarks.variants import Report  # noqa: E402
from retriever.index import documents as D  # noqa: E402
from retriever.search.rank import ScoringConfig  # noqa: E402

TODAY = ScoringConfig(kind_weights=(("trigger", 0.6), ("validation", 0.6)))


def today_documents(skills):
    """The documents of the commit before this round: no ``use_when`` kind, and the first
    12 sections whatever their heading."""
    docs = [d for d in library_documents(skills) if d.kind not in (D.USE_WHEN, D.SECTION)]
    for s in skills:
        for h, lines in D._section_lines(s.body)[: D.MAX_SECTIONS]:
            text = " ".join(" ".join(lines).split())
            whole = D._join(f"{h}:" if h else "", text)[: D.SECTION_CHARS]
            docs.append(D.Document(s.id, D.SECTION, f"body#{h}" if h else "body", whole))
    return docs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--selffit", type=Path, default=RESULTS / "selffit.json")
    p.add_argument("--json-out", type=Path, default=RESULTS / "round3.json")
    args = p.parse_args(argv)
    import numpy as np

    from retriever.index.embed import make_embedder

    tv = TextVectors(make_embedder())
    fitted = json.loads(args.selffit.read_text()) if args.selffit.is_file() else {}
    configs = {"today": TODAY, "+ SKILL.md kinds (defaults)": ScoringConfig()}
    for key, name in (("shared_fit", "+ fitted (shared)"),):
        if key in fitted:
            c = dict(fitted[key]["config"])
            c["kind_weights"] = tuple(tuple(x) for x in c["kind_weights"])
            configs[name] = ScoringConfig(**c)
    sp_files = [
        default_queries(),
        HELD_OUT / "symptoms.jsonl",
        HELD_OUT / "situations.jsonl",
        HELD_OUT / "offtopic.jsonl",
    ]
    md_files = [skillmd_dev_queries(), HELD_OUT / "offtopic.jsonl"]
    benches = {}
    for corpus, path, files, stem in (
        ("spawner", holdout_skills(), sp_files, default_queries().stem),
        ("skillmd", skillmd_holdout_skills(), md_files, skillmd_dev_queries().stem),
    ):
        for docs in ("today", "new"):
            make = today_documents if docs == "today" else D.collection_documents
            full = superset_index(path, tv, make)
            bench = dev_bench(full, files, tv, stem)
            if corpus == "skillmd":  # off-topic: the 58 everyday questions only
                off = [
                    i
                    for i in bench.groups["offtopic"]
                    if int(bench.queries[i].id.split("-")[-1]) <= 58
                ]
                bench.groups["offtopic"] = np.asarray(off, dtype=np.int64)
            benches[corpus, docs] = (full, bench)
    groups = {
        "skillmd": ("dev-A", "dev-B", "dev"),
        "spawner": ("dev-A", "dev-B", "dev", "symptoms", "situations"),
    }
    rows = {}
    out: dict = {"rows": {}, "bootstrap": {}, "refusal": {}, "documents": {}}
    for name, cfg in configs.items():
        docs = "today" if name == "today" else "new"
        for corpus in ("skillmd", "spawner"):
            full, bench = benches[corpus, docs]
            rows[name, corpus] = Report(bench).ours("r3", cfg, variant=name, record=False)
            out["refusal"].setdefault(name, {})[corpus] = refusal(bench, cfg)
            out["documents"][f"{corpus} {docs}"] = len(full.documents)
        t95 = threshold_for(benches["spawner", docs][1], cfg)
        out["refusal"][name]["spawner_threshold_95_dev_A"] = t95
        out["refusal"][name]["spawner_at_t95"] = refusal(
            benches["spawner", docs][1], replace(cfg, no_match_threshold=t95)
        )
    for docs in ("today", "new"):
        for corpus in ("skillmd", "spawner"):
            full, bench = benches[corpus, docs]
            rep = Report(bench)
            rows[f"BM25 ({docs} text)", corpus] = rep.add("bm25", "bm25", bench.bm25_run())
            if docs == "today":
                rows["description vector", corpus] = rep.add(
                    "desc", "desc", description_rows(full, bench, tv)
                )
    names = [*configs, "BM25 (today text)", "BM25 (new text)", "description vector"]
    head = (
        f"{'system (MRR@10/R@5)':<30}"
        + "".join(f"{'md ' + g:>14}" for g in groups["skillmd"])
        + "".join(f"{'sp ' + g:>14}" for g in groups["spawner"])
    )
    print(head)
    for name in names:
        line = f"{name:<30}"
        for corpus in ("skillmd", "spawner"):
            r = rows[name, corpus]
            line += "".join(f"{cell(r, g):>14}" for g in groups[corpus])
            out["rows"].setdefault(name, {})[corpus] = r.results
        print(line)
    print("\nno match (answered share of labelled groups, refused share of off-topic):")
    for name, ref in out["refusal"].items():
        print(f"  {name:<30} {json.dumps(ref)}")
    print("\npaired bootstrap, MRR@10 and R@5 gains (95% interval):")
    recommended = "+ SKILL.md kinds (defaults)"
    pairs = [(n, "today") for n in configs if n != "today"]
    pairs += [(n, recommended) for n in list(configs)[2:]]
    pairs += [
        (recommended, "BM25 (today text)"),
        (recommended, "BM25 (new text)"),
        (recommended, "description vector"),
    ]
    for a, b in pairs:
        for corpus in ("skillmd", "spawner"):
            bench = benches[corpus, "new"][1]
            res = bootstrap_gain(bench, rows[a, corpus], rows[b, corpus], groups[corpus])
            out["bootstrap"][f"{a} vs {b} ({corpus})"] = res
            for g, m in res.items():
                print(
                    f"  {a[:26]:<26} vs {b[:26]:<26} {corpus:<8} {g:<11}"
                    f" MRR@10 {m['MRR@10']['gain']:+.3f} [{m['MRR@10']['ci95'][0]:+.3f},"
                    f" {m['MRR@10']['ci95'][1]:+.3f}]  R@5 {m['R@5']['gain']:+.3f}"
                    f" [{m['R@5']['ci95'][0]:+.3f}, {m['R@5']['ci95'][1]:+.3f}]"
                )
    print(f"\ndocuments: {out['documents']}")
    args.json_out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
