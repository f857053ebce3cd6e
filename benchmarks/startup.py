"""Cold start-up against collection size: does a fresh ``retrieve search`` cost more on a
bigger collection?

    python -m benchmarks.startup [--runs 9] [--json-out FILE]

Times ``retrieve search --no-rebuild --skills ROOT... QUERY`` (the console script, a fresh
process, an existing index) on the bundled collection, the 462 spawner skills and both
shared corpora together (spawner + agent skills). The three alternate, one run of each per
round with the order rotating, so that this machine's drift from one minute to the next
falls on all three alike; each line prints the median and its ratio to the bundled
collection's median in the same run. Indexes are built first where missing or stale (not
timed; both corpora take a few minutes the first time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, shared_dir  # noqa: E402
from benchmarks.timing import stats  # noqa: E402

QUERY = "my webhook handler processes the same event twice"


def corpora() -> dict[str, list[Path]]:
    corpora_dir = shared_dir() / "corpora"
    spawner, agent = corpora_dir / "spawner-skills", corpora_dir / "agent-skills"
    return {
        "bundled": [REPO / "skills"],
        "spawner 462": [spawner],
        "both corpora": [spawner, agent],
    }


def console_script() -> str:
    """The ``retrieve`` beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "retrieve"
    found = str(beside) if beside.exists() else shutil.which("retrieve")
    if not found:
        raise SystemExit("startup: error: no `retrieve` console script (pip install -e .)")
    return found


def skills_args(roots: list[Path]) -> list[str]:
    return [arg for root in roots for arg in ("--skills", str(root))]


def prepare(retrieve: str, roots: list[Path]) -> dict:
    """Build the index if needed (untimed); its counts."""
    done = subprocess.run(
        [retrieve, "index", "--json", *skills_args(roots)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"startup: error: indexing {roots} failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return {"skills": report["skills"], "documents": report["documents"]}


def cold_search(retrieve: str, roots: list[Path]) -> float:
    """Wall seconds of one fresh ``retrieve search`` process."""
    cmd = [retrieve, "search", "--no-rebuild", *skills_args(roots), QUERY]
    started = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"startup: error: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return seconds


def measure(runs: int) -> dict:
    retrieve = console_script()
    sets = corpora()
    missing = [r for roots in sets.values() for r in roots if not r.is_dir()]
    if missing:
        raise SystemExit(f"startup: error: {missing[0]} not found (set SKILL_RETRIEVER_SHARED)")
    counts = {name: prepare(retrieve, roots) for name, roots in sets.items()}
    names = list(sets)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # one unmeasured run each: the page cache holds every index
        cold_search(retrieve, sets[name])
    for round_ in range(runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(cold_search(retrieve, sets[name]))
    base = stats(times["bundled"])["median"]
    return {
        "query": QUERY,
        "runs": runs,
        "corpora": {
            name: {
                **counts[name],
                **stats(times[name]),
                "ratio_to_bundled": stats(times[name])["median"] / base,
                "seconds": times[name],
            }
            for name in names
        },
    }


def print_table(report: dict) -> None:
    print(f"cold `retrieve search`, {report['runs']} alternating runs each")
    print(f"{'collection':<14} {'skills':>7} {'documents':>10} {'median s':>9} {'min s':>7}  ratio")
    for name, row in report["corpora"].items():
        print(
            f"{name:<14} {row['skills']:>7,} {row['documents']:>10,} {row['median']:>9.3f} "
            f"{row['min']:>7.3f}  {row['ratio_to_bundled']:.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9, help="alternating rounds (default 9)")
    p.add_argument("--json-out", type=Path, help="also write the report, every run included")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    report = measure(args.runs)
    print_table(report)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
