"""`retrieve tune`: fine-tune the embedding model on the collection's own texts."""

from __future__ import annotations

import argparse
import json

from retriever.cli.options import common_options, load_skills, progress_bar


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="fine-tune the embedding model on the collection's own "
        "texts; writes a model folder for --model",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="new folder for the model")
    p.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help="model to start from (default: $SKILL_RETRIEVER_MODEL, else the "
        "packaged all-MiniLM-L6-v2)",
    )
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the pairs (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="skills per batch (default 64)")
    p.add_argument("--learning-rate", type=float, default=2e-5, help="default 2e-5")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many batches")
    p.add_argument(
        "--texts",
        choices=("problems", "all", "skill"),
        default="problems",
        help="training texts: the problems the collection describes (validation messages, "
        "sharp edges, receives contexts; default), the triggers/whens/whys of skill, or all",
    )
    p.add_argument(
        "--hard-negatives",
        type=int,
        default=2,
        metavar="N",
        help="wrong skills the current index ranks for each text, whose cards join its "
        "softmax (default 2; 0: in-batch negatives only, no index needed)",
    )
    p.add_argument("--json", action="store_true", help="the run's report as JSON")
    common_options(p, index=False)
    p.add_argument("--index", metavar="DIR", help="index folder for the hard negatives")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retriever.authoring.tune import check_numbers, tune

    check_numbers(  # before anything loads: a bad number fails at once, with its name
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        negatives_per_text=args.hard_negatives,
    )
    report = load_skills(args)
    bar = progress_bar(0, "tuning", args.json or args.quiet)

    def progress(step: int, steps: int, loss: float) -> None:
        if bar:
            bar.total = steps
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

    hard = None
    if args.hard_negatives > 0:  # the current index's ranking: the default model's
        from retriever.api import SkillRetriever

        current = SkillRetriever.open(args.skills, index_dir=args.index)
        hard = lambda text: current.rank(text, 10)  # noqa: E731
    result = tune(
        report.skills,
        Path(args.out),
        model=args.model,
        texts=args.texts,
        hard_negatives=hard,
        negatives_per_text=args.hard_negatives,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        progress=progress,
    )
    if bar:
        bar.close()
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(result), indent=2))
        return 0
    print(
        f"tuned {result.base_model} on {result.pairs} texts of {result.skills} skills: "
        f"{result.steps} steps in {result.seconds:.0f} s"
    )
    print(f"model: {result.out}")
    print(
        f"use it: export SKILL_RETRIEVER_MODEL={result.out}  (or --model on each call); "
        "the next search builds its index"
    )
    return 0
