"""First run: what a new user (and a new project) waits for before the first answer.

    python -m benchmarks.first_run [--corpus agent-skills] [--busy] [--precisions int8,fp32]

Each figure comes from fresh `retrieve` processes in a fresh index home (the ONNX exports
linked from the usual home, so that exporting the model, once per machine, is not counted;
its own line says how long that takes):

- **first build** of the corpus with an empty embedding cache, per precision, the
  precisions alternating when several are asked for (ratios are what to read on a shared
  machine); the estimate the build printed first against the embedding time it measured;
- **both corpora** built together after each was built alone (the shared cache answers);
- **a project of 20 new skills** added to the built user collection (its own texts only);
- **MCP initialize** on a first start with no index, over stdio, `--runs` times.

``--busy`` runs one busy-loop process beside every measurement (the issue's "one other
process busy"). Writes ``benchmarks/results/first_run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, shared_dir  # noqa: E402
from benchmarks.timing import stats  # noqa: E402

PROJECT_SKILLS = 20


def retrieve(home: Path, *args: str, env: dict | None = None) -> tuple[float, dict]:
    """Wall seconds of `retrieve index --json ARGS` in ``home``, and its JSON."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "-q", "index", "--json", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SKILL_RETRIEVER_HOME": str(home), **(env or {})},
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"first_run: retrieve index {' '.join(args)} failed:\n{done.stderr}")
    return took, json.loads(done.stdout)


def manifest_of(index: str) -> dict:
    return json.loads((Path(index) / "current" / "manifest.json").read_text())


def fresh_home(models: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="first-run-"))
    (home / "models").symlink_to(models)
    return home


def ensure_exports(models: Path) -> dict:
    """Make (or find) the fp32 export and its int8 variant in ``models``; how long each took."""
    from retriever.index.embed import make_embedder

    out = {}
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        embedder = make_embedder(precision=precision, models_home=models)
        embedder.encode(["warm"])
        out[precision] = {"seconds": round(time.perf_counter() - started, 1)}
        out[precision]["variant"] = embedder.variant
    return out


def first_builds(corpus: Path, models: Path, precisions: list[str], rounds: int) -> dict:
    rows: dict[str, list[dict]] = {p: [] for p in precisions}
    for r in range(rounds):
        order = precisions if r % 2 == 0 else precisions[::-1]
        for precision in order:
            home = fresh_home(models)
            try:
                took, out = retrieve(
                    home, "--skills", str(corpus), env={"SKILL_RETRIEVER_PRECISION": precision}
                )
                m = manifest_of(out["index"])
            finally:
                shutil.rmtree(home, ignore_errors=True)
            row = {
                "wall_s": round(took, 1),
                "texts": m["counts"]["embedded"],
                "embed_s": m.get("embed_seconds"),
                "estimated_s": m.get("estimated_seconds"),
                "load_before": os.getloadavg()[0],
            }
            if row["embed_s"] and row["estimated_s"]:
                row["estimate_over_actual"] = round(row["estimated_s"] / row["embed_s"], 3)
            rows[precision].append(row)
            print(f"  round {r + 1} {precision}: {json.dumps(row)}", flush=True)
    return {
        p: {
            "runs": runs,
            "wall_s": stats([x["wall_s"] for x in runs]),
            "texts_per_s": round(runs[0]["texts"] / stats([x["embed_s"] for x in runs])["median"]),
        }
        for p, runs in rows.items()
    }


def shared_cache_builds(models: Path) -> dict:
    corpora = shared_dir() / "corpora"
    spawner, agent = corpora / "spawner-skills", corpora / "agent-skills"
    home = fresh_home(models)
    try:
        alone = {}
        for name, root in (("spawner", spawner), ("agent-skills", agent)):
            took, out = retrieve(home, "--skills", str(root))
            alone[name] = {"wall_s": round(took, 1), "embedded": out["embedded"]}
            print(f"  {name} alone: {alone[name]}", flush=True)
        took, both = retrieve(home, "--skills", str(spawner), "--skills", str(agent))
        print(f"  both together: {took:.1f} s, {both['embedded']} embedded", flush=True)
        # a project's own skills beside the user's collection: only its texts are new
        project = home / "project-skills"
        spawner_ids = {p.name for p in spawner.iterdir()}
        picked = [p for p in sorted(agent.iterdir()) if p.is_dir() and p.name not in spawner_ids]
        for source in picked[:: max(1, len(picked) // PROJECT_SKILLS)][:PROJECT_SKILLS]:
            shutil.copytree(source, project / (source.name + "-project"))
        took_p, with_project = retrieve(home, "--skills", str(spawner), "--skills", str(project))
        print(
            f"  spawner + a project of {PROJECT_SKILLS} new skills: {took_p:.1f} s, "
            f"{with_project['embedded']} embedded",
            flush=True,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "alone": alone,
        "both_s": round(took, 1),
        "both_embedded": both["embedded"],
        "both_cached": both["cached"],
        "project_s": round(took_p, 1),
        "project_embedded": with_project["embedded"],
    }


def mcp_initialize(corpus: Path, models: Path, runs: int) -> dict:
    times = []
    for _ in range(runs):
        home = fresh_home(models)
        try:
            started = time.perf_counter()
            server = subprocess.Popen(
                [sys.executable, "-m", "retriever.cli", "-q", "mcp", "--skills", str(corpus)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "SKILL_RETRIEVER_HOME": str(home)},
            )
            assert server.stdin is not None and server.stdout is not None
            hello = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            }
            server.stdin.write(json.dumps(hello) + "\n")
            server.stdin.flush()
            selector = selectors.DefaultSelector()
            selector.register(server.stdout, selectors.EVENT_READ)
            if not selector.select(60):
                raise SystemExit("first_run: no initialize reply within 60 s")
            reply = json.loads(server.stdout.readline())
            times.append(time.perf_counter() - started)
            assert reply["result"]["serverInfo"]["name"] == "skill-retriever"
            server.kill()
            server.wait()
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return stats(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="agent-skills", help="a folder of ../shared/corpora")
    p.add_argument("--precisions", default="int8", help="comma-separated: int8,fp32")
    p.add_argument("--rounds", type=int, default=1, help="first builds per precision")
    p.add_argument("--runs", type=int, default=5, help="MCP first starts timed")
    p.add_argument("--busy", action="store_true", help="one busy-loop process beside")
    p.add_argument("--skip-shared-cache", action="store_true")
    p.add_argument("--json-out", type=Path, default=RESULTS / "first_run.json")
    args = p.parse_args(argv)

    corpus = shared_dir() / "corpora" / args.corpus
    if not corpus.is_dir():
        raise SystemExit(f"first_run: no corpus at {corpus} (set $SKILL_RETRIEVER_SHARED)")
    from retriever.paths import index_home

    models = index_home() / "models"
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    report: dict = {"corpus": str(corpus), "busy": args.busy, "cores": os.cpu_count()}
    try:
        print("exports (once per machine):", flush=True)
        report["exports"] = ensure_exports(models)
        print(f"  {report['exports']}", flush=True)
        print(f"first build of {corpus.name}, empty cache:", flush=True)
        report["first_build"] = first_builds(
            corpus, models, args.precisions.split(","), args.rounds
        )
        if not args.skip_shared_cache:
            print("the shared cache:", flush=True)
            report["shared_cache"] = shared_cache_builds(models)
        print("MCP initialize on a first start with no index:", flush=True)
        report["mcp_initialize_s"] = mcp_initialize(corpus, models, args.runs)
        print(f"  {report['mcp_initialize_s']}", flush=True)
    finally:
        if busy is not None:
            busy.kill()
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
