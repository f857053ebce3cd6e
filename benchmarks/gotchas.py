"""Sharp edges: do users who describe a gotcha get the skill that documents it, and the
gotcha itself?

Run from the repository root::

    python -m benchmarks.gotchas

The shared corpus has no ``sharp-edges.yaml``; the bundled collection (``skills/``) does.
``queries/gotchas.jsonl`` holds 53 symptoms written from the bundled skills' sharp edges in a
user's words (no summary copied). Each is searched twice through the library's own
``Searcher``: over the bundled index as built (sharp edges indexed), and over the same index
with the sharp-edge documents left out (``indexer.subset_index``: their vectors dropped,
BM25 rebuilt over the kept text). Printed: R@1 / R@5 / MRR@10, how
often the first answer of the result (``SearchResult.answers``) is the very gotcha the query
was written from (``"edge"``, a sharp edge's ``id``), a sharp edge of the gold skill, or
none; and how many of the 81 off-topic queries get an answer at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/gotchas.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HELD_OUT, REPO, RESULTS  # noqa: E402
from benchmarks.confidence import BEFORE  # noqa: E402

BEFORE_ANSWERS = {
    **BEFORE,
    "answers_by_rank": False,
    "answer_word_weight": 0.0,
    "answer_skills": 1000,
}


def edge_ids(skills: Path) -> dict[tuple[str, str], str]:
    """``{(skill id, summary): edge id}`` from the collection's sharp-edges.yaml files (the
    library keeps no edge ids)."""
    import yaml

    out = {}
    for path in skills.glob("**/sharp-edges.yaml"):
        skill = yaml.safe_load((path.parent / "skill.yaml").read_text(encoding="utf-8"))["id"]
        for edge in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("sharp_edges", []):
            out[skill, str(edge.get("summary", "")).strip()] = str(edge.get("id"))
    return out


def measure(skills: Path, queries_file: Path, offtopic_file: Path, index_dir: Path) -> dict:
    from retriever import SkillRetriever
    from retriever.authoring.evaluate import mean_metrics, query_metrics
    from retriever.index.build import subset_index
    from retriever.index.documents import SHARP_EDGE
    from retriever.search.rank import ScoringConfig
    from retriever.search.searcher import Searcher

    full = SkillRetriever.open(skills, index_dir=index_dir)
    index = full.index
    keep = [i for i, d in enumerate(index.documents) if d.kind != SHARP_EDGE]
    without = Searcher(subset_index(index, keep), full.embedder, ScoringConfig())
    queries = [json.loads(line) for line in queries_file.read_text().splitlines() if line]
    offtopic = [json.loads(line) for line in offtopic_file.read_text().splitlines() if line]
    ids = edge_ids(skills)
    # the answers before they were ordered by skill rank and own words, and before graded
    # confidence (no match under 0.41 on the best listed score): ordered by cosine alone
    before = SkillRetriever.open(
        skills, index_dir=index_dir, rebuild="never", config=ScoringConfig(**BEFORE_ANSWERS)
    )
    systems = (
        ("without sharp edges", without.search),
        ("with sharp edges, before", before.search),
        ("with sharp edges", full.search),
    )
    out = {}
    for name, search in systems:
        per, first = [], {"the gotcha": 0, "another of the skill": 0, "other": 0, "none": 0}
        for q in queries:
            result = search(q["query"], k=10)
            per.append(query_metrics(result.skill_ids, q["relevant"]))
            a = result.answers[0] if result.answers else None
            if a is None:
                first["none"] += 1
            elif a.kind == SHARP_EDGE and a.skill_id in q["relevant"]:
                exact = ids.get((a.skill_id, a.summary.strip())) == q.get("edge")
                first["the gotcha" if exact else "another of the skill"] += 1
            else:
                first["other"] += 1
        m = mean_metrics(per)
        answered_offtopic = sum(1 for q in offtopic if search(q["query"], k=10).answers)
        out[name] = {
            "n": int(m["n"]),
            "R@1": m["R@1"],
            "R@5": m["R@5"],
            "MRR@10": m["MRR@10"],
            "first answer": {k: v / len(queries) for k, v in first.items()},
            "offtopic with an answer": answered_offtopic,
            "offtopic": len(offtopic),
        }
    return {"skills": str(skills), "queries": str(queries_file), "documents": len(index.documents),
            "sharp_edge_documents": len(index.documents) - len(keep), "results": out}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skills", type=Path, default=REPO / "skills")
    p.add_argument("--queries", type=Path, default=HELD_OUT / "gotchas.jsonl")
    p.add_argument("--offtopic", type=Path, default=HELD_OUT / "offtopic.jsonl")
    p.add_argument("--index", type=Path, default=RESULTS / "index-bundled")
    p.add_argument("--json-out", type=Path, default=RESULTS / "gotchas.json")
    args = p.parse_args(argv)
    report = measure(args.skills, args.queries, args.offtopic, args.index)
    print(f"{report['queries']}: {report['sharp_edge_documents']} of {report['documents']} "
          "documents are sharp edges")  # fmt: skip
    print(f"{'':<26} {'n':>4} {'R@1':>6} {'R@5':>6} {'MRR@10':>7}   first answer: the gotcha / "
          "another of the skill / other / none   off-topic with an answer")  # fmt: skip
    for name, m in report["results"].items():
        f = m["first answer"]
        print(f"{name:<26} {m['n']:>4} {m['R@1']:>6.3f} {m['R@5']:>6.3f} {m['MRR@10']:>7.3f}   "
              f"{f['the gotcha']:.1%} / {f['another of the skill']:.1%} / {f['other']:.1%} / "
              f"{f['none']:.1%}   {m['offtopic with an answer']} of {m['offtopic']}")  # fmt: skip
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
