"""Does ``retrieve tune`` pay? Fine-tuning on the collection's own problem texts, measured on
splits that share nothing with the training.

Run from the repository root::

    python -m benchmarks.tune_eval            # ~45 minutes on 2 cores (two trainings)

- **Item-disjoint**: train on every skill of ``../shared/corpora/spawner-skills-holdout``
  (its validation messages, ``receives_from`` contexts, incoming handoff contexts, sharp
  edges where there are any), then rank the dev queries against that corpus: they are
  exactly the 580 entries the holdout lacks, so no query was trained on.
- **Skill-disjoint**: train only on the skills of the dev-A half (dev queries split by gold
  skill, sha256 of the id, as ``variants.py`` does), those skills' cards being the only
  candidates of the loss; rank the dev-B queries, whose skills the training never saw.

Each side is compared with the untuned model on the same queries, both through
``SkillRetriever.search`` with the default configuration; the symptoms and situations sets
are reported too. Trained models and their indexes are kept under
``benchmarks/results/tune/`` (``--fresh`` trains again).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/tune_eval.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    HELD_OUT,
    RESULTS,
    BenchError,
    default_queries,
    fail,
    read_queries,
    require_data,
    shared_dir,
)
from benchmarks.variants import dev_half  # noqa: E402
from retriever.authoring.evaluate import mean_metrics, query_metrics  # noqa: E402

PROG = "tune_eval"
K = 10


def evaluate(retriever, queries, groups_of) -> dict[str, dict[str, float]]:
    """MRR@10 / R@5 / R@1 per group of queries, ranked by ``retriever.search.searcher``."""
    groups: dict[str, list[dict[str, float]]] = {}
    for q in queries:
        if not q.relevant:
            continue
        m = query_metrics(retriever.rank(q.query, K), q.relevant)
        for g in groups_of[q.id]:
            groups.setdefault(g, []).append(m)
    return {g: mean_metrics(ms) for g, ms in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--skills",
        type=Path,
        default=None,
        help="corpus (default: ../shared/corpora/spawner-skills-holdout)",
    )
    p.add_argument("--texts", default="problems", help="training texts (retriever.authoring.tune)")
    p.add_argument("--negatives", type=int, default=2, help="hard negatives per text")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--fresh", action="store_true", help="train again even if a model exists")
    p.add_argument("--json-out", type=Path, default=RESULTS / "tune_eval.json")
    args = p.parse_args(argv)
    skills_root = args.skills or shared_dir() / "corpora" / "spawner-skills-holdout"
    files = [default_queries(), HELD_OUT / "symptoms.jsonl", HELD_OUT / "situations.jsonl"]
    try:
        require_data(skills_root, files)
    except BenchError as e:
        fail(PROG, str(e))

    import shutil

    from retriever import SkillRetriever
    from retriever.authoring.tune import tune
    from retriever.index.embed import make_embedder
    from retriever.load import load_collection

    work = RESULTS / "tune"
    work.mkdir(parents=True, exist_ok=True)
    queries = read_queries(files)
    groups_of = {  # the groups a query counts in
        q.id: [q.file] if q.file != files[0].stem else ["dev", dev_half(q.relevant[0])]
        for q in queries
    }
    report = load_collection([skills_root])
    skills = report.skills
    dev_a = [s for s in skills if dev_half(s.id) == "dev-A"]

    def open_with(model: str | None, name: str):
        return SkillRetriever.open(
            skills_root, index_dir=work / f"index-{name}", embedder=make_embedder(model)
        )

    out: dict = {"corpus": str(skills_root), "settings": vars(args) | {"skills": None}}
    started = time.perf_counter()
    base = open_with(None, "base")
    out["base"] = evaluate(base, queries, groups_of)
    print(f"base model: {json.dumps(_short(out['base']))}", flush=True)

    def rank(text: str) -> list[str]:  # the current index's ranking, for hard negatives
        return base.rank(text, K)

    for side, train_on in (("item-disjoint", skills), ("skill-disjoint", dev_a)):
        folder = work / f"model-{side}"
        if args.fresh and folder.exists():
            shutil.rmtree(folder)
        if not folder.exists():
            t = time.perf_counter()
            r = tune(
                train_on,
                folder,
                texts=args.texts,
                hard_negatives=rank,
                negatives_per_text=args.negatives,
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                progress=lambda step, steps, loss, side=side: (
                    print(f"  {side}: step {step}/{steps} loss {loss:.3f}", flush=True)
                    if step % 20 == 0 or step == steps
                    else None
                ),
            )
            out[f"{side}_train"] = {
                "skills": r.skills,
                "pairs": r.pairs,
                "steps": r.steps,
                "minutes": round((time.perf_counter() - t) / 60, 1),
                "mining_seconds": r.mining_seconds,
            }
            print(
                f"{side}: trained on {r.pairs} texts of {r.skills} skills, {r.steps} steps, "
                f"{out[f'{side}_train']['minutes']} min",
                flush=True,
            )
        tuned = open_with(str(folder), side)
        out[side] = evaluate(tuned, queries, groups_of)
        print(f"{side} model: {json.dumps(_short(out[side]))}", flush=True)

    print(
        f"\n{'model (MRR@10/R@5)':<22}"
        + "".join(f"{g:>14}" for g in ("dev", "dev-A", "dev-B", "symptoms", "situations"))
    )
    for name in ("base", "item-disjoint", "skill-disjoint"):
        cells = [
            f"{out[name][g]['MRR@10']:.3f}/{out[name][g]['R@5']:.3f}"
            for g in ("dev", "dev-A", "dev-B", "symptoms", "situations")
        ]
        print(f"{name:<22}" + "".join(f"{c:>14}" for c in cells))
    item_gain = out["item-disjoint"]["dev"]["MRR@10"] - out["base"]["dev"]["MRR@10"]
    skill_gain = out["skill-disjoint"]["dev-B"]["MRR@10"] - out["base"]["dev-B"]["MRR@10"]
    wins = item_gain > 0.005 and skill_gain > 0.005
    out["verdict"] = {
        "item_disjoint_dev_gain": round(item_gain, 4),
        "skill_disjoint_dev_B_gain": round(skill_gain, 4),
        "adopt": wins,
    }
    print(
        f"\nitem-disjoint (dev) MRR@10 {item_gain:+.3f}; skill-disjoint (dev-B) "
        f"{skill_gain:+.3f}: {'wins on both splits' if wins else 'does not win on both'}"
    )
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {args.json_out} ({out['seconds'] / 60:.0f} min)")
    return 0


def _short(results: dict[str, dict[str, float]]) -> dict[str, str]:
    return {g: f"{m['MRR@10']:.3f}/{m['R@5']:.3f}" for g, m in results.items()}


if __name__ == "__main__":
    sys.exit(main())
