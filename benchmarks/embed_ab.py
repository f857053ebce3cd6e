"""Embedding throughput of the two precisions, alternating in one run (the ratio is what a
noisy machine can tell).

    python -m benchmarks.embed_ab [--corpus agent-skills] [--texts 1200] [--rounds 3]

A seeded sample of the corpus's texts (as a build makes them), cut in slices; each slice is
embedded with each precision in turn, the order alternating, through the build's own path
(``Embedder.encode_tracked``: runs side by side, one text a run). Prints texts/s per
precision and the int8/fp32 time ratio with a bootstrap interval over slices, and the
cosine of the int8 vectors to the fp32 ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import shared_dir  # noqa: E402


def corpus_texts(root: Path) -> list[str]:
    from retriever.index.build import embedded_texts
    from retriever.index.documents import collection_documents
    from retriever.load import load_collection
    from retriever.rules import compile_rules

    report = load_collection([root])
    return list(
        dict.fromkeys(
            embedded_texts(collection_documents(report.skills), compile_rules(report.skills))
        )
    )


def main(argv: list[str] | None = None) -> int:
    from retriever.index.embed import make_embedder
    from retriever.index.progress import BuildProgress

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="agent-skills", help="a folder of ../shared/corpora")
    p.add_argument("--texts", type=int, default=1200)
    p.add_argument("--slices", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    root = shared_dir() / "corpora" / args.corpus
    if not root.is_dir():
        raise SystemExit(f"embed_ab: no corpus at {root} (set $SKILL_RETRIEVER_SHARED)")
    texts = corpus_texts(root)
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.texts, len(texts)), replace=False)]
    slices = np.array_split(np.arange(len(sample)), args.slices)
    embedders = {p: make_embedder(precision=p) for p in ("fp32", "int8")}
    for e in embedders.values():
        e.encode(sample[:8])  # exports made and sessions loaded before any timing
    took: dict[str, np.ndarray] = {p: np.zeros((args.rounds, args.slices)) for p in embedders}
    vectors: dict[str, np.ndarray] = {}
    load_start = os.getloadavg()
    for r in range(args.rounds):
        for s, rows in enumerate(slices):
            chunk = [sample[i] for i in rows]
            order = ("fp32", "int8") if (r + s) % 2 == 0 else ("int8", "fp32")
            for name in order:
                started = time.perf_counter()
                out = embedders[name].encode_tracked(chunk, BuildProgress())
                took[name][r, s] = time.perf_counter() - started
                if r == 0:
                    vectors.setdefault(name, np.zeros((len(sample), out.shape[1])))[rows] = out
        print(
            f"round {r + 1}: "
            + "  ".join(f"{n} {took[n][r].sum():.1f} s" for n in embedders)
            + f"  load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    ratio = took["int8"].sum(axis=0) / took["fp32"].sum(axis=0)  # per slice, over rounds
    boot = [rng.choice(ratio, len(ratio)).mean() for _ in range(10_000)]
    lo, hi = np.quantile(boot, [0.025, 0.975])
    cos = (vectors["int8"] * vectors["fp32"]).sum(axis=1)
    print(
        f"\n{args.corpus}: {len(sample)} texts in {args.slices} slices, {args.rounds} rounds; "
        f"load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}"
    )
    for n in embedders:
        print(f"  {n:5} {len(sample) * args.rounds / took[n].sum():7.1f} texts/s")
    print(
        f"  int8/fp32 time ratio {ratio.mean():.3f} [{lo:.3f}, {hi:.3f}]; cosine int8 to "
        f"fp32 mean {cos.mean():.4f}, lowest {cos.min():.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
