"""Per-prompt cost of the agents' hooks against a running `retrieve serve` (issue 21).

1. `POST /hooks/claude-code` (what a Claude Code `type: "http"` hook sends): a loopback
   client on one kept-alive connection posts Claude Code's UserPromptSubmit event for
   `--prompts` dev queries (cycled) to a server of the corpus, and times each answer.
2. `retrieve hook claude-code` asking that server: a fresh process per prompt (as the agent
   runs it), timed with `python -c pass` alongside, the interpreter's own start, and with
   `--base TREE` the same command run by another tree's code, in turn.
3. The first prompt in a new project, whose index is built then, and the next one.

    python -m benchmarks.hooks [--skills DIR] [--prompts 1000] [--runs 30] [--base TREE]
                               [--json-out F]

Targets: route p50 <= 15 ms and p99 <= 50 ms; command hook p50 <= 80 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import default_queries, default_skills, read_query_file
from benchmarks.speed import retrieve_cmd, running_server, usual_index
from benchmarks.timing import stats

EVENT = {
    "session_id": "bench",
    "transcript_path": "/tmp/bench.jsonl",
    "cwd": "/",
    "permission_mode": "default",
    "hook_event_name": "UserPromptSubmit",
}


def bench_route(url: str, prompts: list[str]) -> dict:
    """Each prompt to `POST /hooks/claude-code`, and, alternating with it, the same search
    as `POST /search` (k 3, the hook's Markdown budget): the hook route's own cost is the
    difference, whatever the machine's load does to both."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    times: dict[str, list[float]] = {"hook": [], "search": []}
    added = failed = 0
    for n, prompt in enumerate([*prompts[:10], *prompts]):  # ten unmeasured first
        calls = [
            ("hook", "/hooks/claude-code", {**EVENT, "prompt": prompt}),
            ("search", "/search", {"query": prompt, "k": 3, "max_chars": 3900}),
        ]
        for name, path, body in calls if n % 2 else calls[::-1]:
            started = time.perf_counter()
            connection.request("POST", path, json.dumps(body), headers)
            response = connection.getresponse()
            raw = response.read()
            elapsed = time.perf_counter() - started
            if n < 10:
                continue
            times[name].append(elapsed)
            if response.status != 200:
                failed += 1
            elif name == "hook" and "hookSpecificOutput" in json.loads(raw):
                added += 1
    connection.close()
    return {
        **stats(times["hook"]),
        "prompts": len(times["hook"]),
        "with_context": added,
        "errors": failed,
        "search_route": stats(times["search"]),
    }


def process_times(
    commands: dict[str, tuple[list[str], Path | None]], runs: int, stdin: bytes
) -> dict[str, dict]:
    """Wall and CPU (user + system) seconds of each command, run ``runs`` times each in
    turn (so the machine's load falls on all alike); on a shared machine the CPU time moves
    far less than the wall time."""
    import os
    import resource

    samples: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in commands}
    for n in range(runs + 1):  # the first round warms the page cache; not counted
        for name, (cmd, tree) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            # `python -m` puts the working folder first on sys.path: the tree's own code runs
            env = {**os.environ, "PYTHONPATH": str(tree)} if tree else None
            subprocess.run(cmd, input=stdin, capture_output=True, check=True, env=env, cwd=tree)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if n:
                samples[name][0].append(wall)
                samples[name][1].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
    return {name: {**stats(w), "cpu": stats(c)} for name, (w, c) in samples.items()}


def bench_project(url: str, skills: Path) -> dict:
    """The first prompt in a new project (a repository with one skill in .claude/skills):
    its set's index is built (the project's texts embedded, the rest from the cache), then
    a second prompt there. The project and its index folder are removed after."""
    import shutil
    import tempfile

    from retriever.index.embed import resolve_model
    from retriever.paths import default_index_dir

    root = Path(tempfile.mkdtemp(prefix="bench-project-"))
    (root / ".git").mkdir()
    skill = root / ".claude" / "skills" / "zephyr-ledger"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: zephyr-ledger\ndescription: Reconcile the Zephyr ledger's nightly batch "
        "against the bank statement export\n---\n# Zephyr ledger\n\nCompare settlement dates "
        "first, then the ledger's rounding rules.\n"
    )
    prompt = "the nightly zephyr ledger batch disagrees with the bank statement export"
    host, port = url.removeprefix("http://").split(":")
    out: dict = {}
    try:
        for name in ("first_prompt_s", "second_prompt_s"):
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            body = json.dumps({**EVENT, "cwd": str(root), "prompt": prompt})
            started = time.perf_counter()
            connection.request("POST", "/hooks/claude-code?wait=60", body)  # the most
            response = connection.getresponse()
            raw = response.read()
            if response.status != 200:
                raise SystemExit(f"the hook route answered {response.status}: {raw[:200]!r}")
            out[name] = time.perf_counter() - started
            out[name.replace("_s", "_found")] = b"zephyr-ledger" in raw
            connection.close()
    finally:
        shutil.rmtree(root)
        model_id, _ = resolve_model(None)
        roots = [skills.resolve(), (skill.parent).resolve()]
        shutil.rmtree(default_index_dir(roots, model_id), ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hooks")
    parser.add_argument("--skills", type=Path, default=None)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        help="a source tree (e.g. a `git worktree` of an older commit) whose command hook is "
        "timed in turn with this one's, against the same server",
    )
    args = parser.parse_args(argv)
    # As `pip install` leaves it: the package compiled. A checkout run with
    # PYTHONDONTWRITEBYTECODE set compiles every module the hook imports on every prompt.
    import compileall

    import retriever

    compileall.compile_dir(Path(retriever.__file__).parent, quiet=1)
    if args.base:
        compileall.compile_dir(args.base / "retriever", quiet=1)
    skills = args.skills or default_skills()
    queries = [q.query for q in read_query_file(default_queries())]
    prompts = [queries[i % len(queries)] for i in range(args.prompts)]
    index = usual_index(skills)
    with running_server(skills, index) as url:
        route = bench_route(url, prompts)
        project = bench_project(url, skills)
        event = json.dumps({**EVENT, "prompt": queries[0]}).encode()
        hook = retrieve_cmd("hook", "claude-code", "--skills", str(skills), "--index", str(index))
        check = subprocess.run(hook, input=event, capture_output=True, check=True)
        if b"additionalContext" not in check.stdout:
            raise SystemExit(f"the hook added nothing: {check.stderr.decode()}")
        here = Path(retriever.__file__).resolve().parent.parent
        commands = {"hook": (hook, here), "python": ([sys.executable, "-c", "pass"], None)}
        if args.base:  # the same hook command run by another tree's code
            commands["base"] = (hook, args.base.resolve())
        times = process_times(commands, args.runs, event)
        command, interpreter = times["hook"], times["python"]
    result = {
        "skills": str(skills),
        "route_s": route,
        "project": project,
        "command_hook_via_server_s": command,
        "python_c_pass_s": interpreter,
        "base_command_hook_s": times.get("base"),
    }
    print(
        f"POST /hooks/claude-code, {route['prompts']} prompts ({route['with_context']} with "
        f"context, {route['errors']} errors): p50 {route['median'] * 1000:.2f} ms, "
        f"p99 {route['p99'] * 1000:.2f} ms (targets 15 / 50 ms); POST /search of the same "
        f"prompts, alternating: p50 {route['search_route']['median'] * 1000:.2f} ms, "
        f"p99 {route['search_route']['p99'] * 1000:.2f} ms"
    )
    print(
        f"retrieve hook claude-code via the server, {args.runs} prompts: median "
        f"{command['median'] * 1000:.0f} ms, p99 {command['p99'] * 1000:.0f} ms (target 80 ms), "
        f"CPU {command['cpu']['median'] * 1000:.0f} ms; python -c pass: median "
        f"{interpreter['median'] * 1000:.0f} ms, CPU {interpreter['cpu']['median'] * 1000:.0f} ms"
    )
    if "base" in times:
        base = times["base"]
        print(
            f"the same hook run by {args.base}: median {base['median'] * 1000:.0f} ms, "
            f"CPU {base['cpu']['median'] * 1000:.0f} ms"
        )
    print(
        f"POST /hooks/claude-code, the first prompt in a new project (one skill of its own): "
        f"{project['first_prompt_s']:.1f} s (its skill found: {project['first_prompt_found']}), "
        f"the next {project['second_prompt_s'] * 1000:.0f} ms"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
