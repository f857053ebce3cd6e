"""Query latency of two source trees, interleaved: is a change to the query path faster?

Run from the repository root, with the older code checked out beside it::

    git worktree add /tmp/base 226aba9           # the commit to compare against
    python -m benchmarks.query_ab --base /tmp/base # this tree is the "new" side

This machine's timings drift by 20-40% from one minute to the next, so two benchmark runs
minutes apart cannot tell a 10% change from the weather. Here each side runs in its own
fresh process (nothing of the other side loaded), on the same index and the same dev
queries, and the sides alternate for ``--rounds`` rounds (which goes first swaps each
round); medians and p99 are over every query of every round, and each round's are kept in
the JSON. Both trees read the index given (default: the corpus's usual index, opened by this
tree), or, when the index format changed between them, the base tree reads
``--base-index`` (an index of the same corpus that the base tree built).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    BenchError,
    default_queries,
    default_skills,
    fail,
    require_data,
    run_in_tree,
)
from benchmarks.speed import REPO, usual_index, write_report  # noqa: E402
from benchmarks.timing import stats  # noqa: E402

# One side's measurement, run as ``python -c`` in a fresh process with the tree first on
# sys.path. It prints the per-query seconds as one JSON line.
_SIDE = r"""
import importlib.util, json, sys
tree, repo, corpus, index, queries = sys.argv[1:6]
# this repository's measuring loop, loaded by path: importing the benchmarks package would
# load this repository's retriever (and the other tree has a benchmarks package of its own)
spec = importlib.util.spec_from_file_location("timing", f"{repo}/benchmarks/timing.py")
timing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(timing)
sys.path.insert(0, tree)
from pathlib import Path
import retriever
if not Path(retriever.__file__).resolve().is_relative_to(tree):
    raise SystemExit(f"imported retriever from {retriever.__file__}, not from {tree}")
from retriever import SkillRetriever
qs = [json.loads(line)["query"] for line in open(queries) if line.strip()]
r = SkillRetriever.open(corpus, index_dir=index, backend="onnx", rebuild="never")
print(json.dumps(timing.query_times(r, qs)))
"""


def run_side(tree: Path, corpus: Path, index: Path, queries: Path) -> list[float]:
    return run_in_tree(
        _SIDE,
        [str(tree), str(REPO), str(corpus), str(index), str(queries)],
        f"query_ab: the side {tree}",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, required=True, help="the older source tree")
    p.add_argument("--new", type=Path, default=REPO, help="the newer tree (default: this one)")
    p.add_argument("--skills", type=Path, default=default_skills())
    p.add_argument("--queries", type=Path, default=default_queries())
    p.add_argument("--index", type=Path, default=None)
    p.add_argument(
        "--base-index",
        type=Path,
        default=None,
        help="the base tree's own index of the same corpus (when the index format "
        "differs between the trees)",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/query-ab.json")
    args = p.parse_args(argv)
    try:
        require_data(args.skills, [args.queries])
    except BenchError as e:
        fail("query_ab", str(e))
    for tree in (args.base, args.new):
        if not (tree / "retriever" / "__init__.py").is_file():
            fail("query_ab", f"{tree} is not a skill-retriever source tree")
    index = args.index or usual_index(args.skills)
    indexes = {"base": args.base_index or index, "new": index}

    sides = {"base": args.base.resolve(), "new": args.new.resolve()}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    rounds: list[dict] = []
    for round_no in range(args.rounds):
        order = list(sides.items())
        for name, tree in order if round_no % 2 == 0 else order[::-1]:  # neither always first
            seconds = run_side(tree, args.skills, indexes[name], args.queries)
            samples[name] += seconds
            s = stats(seconds)
            rounds.append({"round": round_no + 1, "side": name, **s})
            print(
                f"round {round_no + 1} {name:<5} median {s['median'] * 1e3:6.2f} ms   "
                f"p99 {s['p99'] * 1e3:6.2f} ms",
                flush=True,
            )
    report: dict = {
        name: {"tree": str(tree), **stats(samples[name])} for name, tree in sides.items()
    }
    report["rounds"] = rounds
    for name in sides:
        r = report[name]
        print(
            f"all   {name:<5} median {r['median'] * 1e3:6.2f} ms   p99 {r['p99'] * 1e3:6.2f} ms"
            f"   ({r['runs']} queries, {r['tree']})"
        )
    write_report(args.json_out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
