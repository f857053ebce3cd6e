"""Stress benchmark: fresh CLI start-ups while every core is busy, counting bad exits.

Run from the repository root::

    python -m benchmarks.stress                    # 40 runs of each command, bundled skills
    python -m benchmarks.stress -n 300 --commands search,mcp --burners 4
    python -m benchmarks.stress --worst-case       # the inputs that once took minutes

Each counted run is a fresh process of the console script: ``retrieve search`` (plain and
``--json``), ``retrieve index`` (up to date), a ``retrieve mcp`` stdio session (initialize,
notifications/initialized, one ``tools/call search_skills``, then stdin closed) and two error
paths that must exit 2: ``search --no-rebuild`` on a copy of the index with one byte of
``vectors.faiss`` flipped, and ``search --skills`` on a root holding only empty folders.
Meanwhile one busy-loop process per core (``--burners``) competes for the CPU, which is
what exposed start-up races (issue 12). Any exit other than the documented one, a timeout,
or missing output (no JSON for ``--json``, no reply over MCP) counts as bad; the first
stderr tails of each kind of failure are kept.

The collection (``--skills``, default the bundled one) gets its own temporary
``SKILL_RETRIEVER_HOME``: the ONNX export and the index are built there once, before the
burners start and outside the counted runs, so every counted run is a cold process on a
warm index. Standard library only: this process only starts and watches others.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "skills"
QUERY = "my webhook handler processes the same event twice"
MCP_PROTOCOL = "2025-06-18"  # a handshake version the installed SDK serves

# command name -> documented exit code
COMMANDS = {
    "search": 0,
    "search-json": 0,
    "index": 0,
    "mcp": 0,
    "damaged-index": 2,  # search --no-rebuild on an index with a flipped byte
    "empty-root": 2,  # search --skills <root of empty folders>
}

# stderr signatures of the known failure modes, most specific first
SIGNATURES = (
    ("__cpu_features__", "ImportError __cpu_features__"),
    ("_DeadlockError", "_DeadlockError"),
    ("terminate called", "terminate called"),
    ("Segmentation fault", "segfault"),
    ("Fatal Python error", "Fatal Python error"),
)


def fail(message: str) -> None:
    print(f"stress: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def retrieve_argv() -> list[str]:
    """The console script beside this interpreter (what a user runs), else the module."""
    script = Path(sys.executable).parent / "retrieve"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "retriever.cli"]


# -- one run --------------------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    expected: int
    rc: int | None  # None: killed after the timeout
    seconds: float
    stderr: str
    output_ok: bool = True
    note: str = ""

    @property
    def timed_out(self) -> bool:
        return self.rc is None

    @property
    def bad(self) -> bool:
        return self.timed_out or self.rc != self.expected or not self.output_ok

    @property
    def crashed(self) -> bool:
        """A failure mode that is no clean exit at all: a signal, an abort, a traceback."""
        return self.bad and (
            self.timed_out
            or self.rc not in (0, 2)
            or not self.output_ok
            or any(s in self.stderr for s, _ in SIGNATURES)
        )

    def exit_text(self) -> str:
        if self.rc is None:
            return "timeout"
        if self.rc < 0:
            try:
                name = signal.Signals(-self.rc).name
            except ValueError:
                name = f"signal {-self.rc}"
            return f"exit {128 - self.rc}/{name}"
        return f"exit {self.rc}"

    def kind(self) -> str:
        sig = [label for s, label in SIGNATURES if s in self.stderr]
        if self.timed_out:
            return "timeout" + (f" after {sig[0]}" if sig else "")
        if sig:
            return f"{sig[0]} ({self.exit_text()})"
        if self.rc is not None and self.rc < 0:
            return self.exit_text()
        if self.rc != self.expected:
            last = last_line(self.stderr)
            return f"{self.exit_text()}: {last[:70]}" if last else self.exit_text()
        return f"bad output: {self.note}"

    def tail(self, lines: int = 12, chars: int = 1500) -> str:
        return "\n".join(self.stderr.rstrip().splitlines()[-lines:])[-chars:]


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_plain(
    command: str, argv: list[str], env: dict, timeout: float, check_stdout=None
) -> Outcome:
    start = time.perf_counter()
    p = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    o = Outcome(
        command, COMMANDS[command], rc, time.perf_counter() - start, err.decode("utf-8", "replace")
    )
    if rc == o.expected and check_stdout is not None:
        o.note = check_stdout(out.decode("utf-8", "replace"), o.stderr)
        o.output_ok = not o.note
    return o


def check_search_json(out: str, _err: str) -> str:
    try:
        data = json.loads(out)
    except ValueError:
        return "stdout is not JSON"
    return "" if isinstance(data, dict) and "skills" in data else "JSON without 'skills'"


def check_user_error(_out: str, err: str) -> str:
    return "" if "retrieve: error:" in err else "no 'retrieve: error:' line"


def run_mcp(argv: list[str], env: dict, timeout: float) -> Outcome:
    """One MCP stdio session, JSON-RPC written by hand: one JSON object per line each way
    (the framing of the SDK's ``mcp.server.stdio``)."""
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as errfile:
        p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errfile, env=env
        )
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            for line in p.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

        def send(msg: dict) -> bool:
            try:
                p.stdin.write((json.dumps(msg) + "\n").encode())
                p.stdin.flush()
                return True
            except (BrokenPipeError, OSError):
                return False

        def reply(msg_id: int) -> dict | None:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    return None
                if line is None:  # the server closed stdout
                    return None
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("id") == msg_id and "method" not in msg:
                    return msg

        note = ""
        if not send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": MCP_PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "benchmarks.stress", "version": "0"},
                },
            }
        ):
            note = "server gone before initialize"
        elif (init := reply(1)) is None or "result" not in init:
            note = "no initialize result" if init is None else "initialize error"
        elif not (
            send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            and send(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "search_skills", "arguments": {"query": QUERY, "k": 3}},
                }
            )
        ):
            note = "server gone before tools/call"
        elif (call := reply(2)) is None:
            note = "no tools/call reply"
        elif "result" not in call or call["result"].get("isError"):
            note = "tools/call error"
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        errfile.seek(0)
        err = errfile.read().decode("utf-8", "replace")
    o = Outcome(
        "mcp", COMMANDS["mcp"], rc, time.perf_counter() - start, err, output_ok=not note, note=note
    )
    return o


# -- set-up ---------------------------------------------------------------------------------


@dataclass
class Setup:
    env: dict
    skills: Path
    damaged_index: Path
    empty_root: Path
    index_dir: Path
    setup_s: float
    source: str  # the source tree of the retriever the children import
    retrieve: list[str] = field(default_factory=retrieve_argv)


def prepare(skills: Path, work: Path, timeout: float) -> Setup:
    """Build the export and the index once (no burners), then the damaged copy and the
    empty root."""
    t0 = time.perf_counter()
    home = work / "home"
    home.mkdir()
    env = {**os.environ, "SKILL_RETRIEVER_HOME": str(home)}
    env.pop("SKILL_RETRIEVER_MODEL", None)  # the default model, as a new user has it
    env.pop("SKILL_RETRIEVER_BACKEND", None)
    cmd = retrieve_argv()
    where = subprocess.run(
        [sys.executable, "-c", "import retriever; print(retriever.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    source = str(Path(where.stdout.strip()).parent.parent) if where.returncode == 0 else "?"
    print(f"set-up: exercising the retriever of {source}", file=sys.stderr)
    print(
        f"set-up: building the ONNX export and the index of {skills} in {home}",
        file=sys.stderr,
        flush=True,
    )
    built = subprocess.run(
        [*cmd, "index", "--skills", str(skills), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=max(timeout, 1800),
    )
    if built.returncode != 0:
        fail(f"`retrieve index` failed during set-up ({built.returncode}):\n{built.stderr[-2000:]}")
    index_dir = Path(json.loads(built.stdout)["index"])
    for _ in range(3):  # warm the page cache; the same race may hit here, so retry
        warm = subprocess.run(
            [*cmd, "search", "--skills", str(skills), "--no-rebuild", QUERY],
            env=env,
            capture_output=True,
            text=True,
            timeout=max(timeout, 300),
        )
        if warm.returncode == 0:
            break
        print(
            f"set-up: warm-up search failed ({warm.returncode}), "
            f"retrying: {last_line(warm.stderr)}",
            file=sys.stderr,
        )
    else:
        fail(f"the warm-up search failed three times:\n{warm.stderr[-2000:]}")

    damaged = work / "damaged-index"
    shutil.copytree(index_dir, damaged, symlinks=True)
    vectors = (damaged / "current" / "vectors.faiss").resolve()
    if not vectors.is_file() or damaged not in vectors.parents:
        fail(f"no vectors.faiss inside the copied index {damaged}")
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vectors.write_bytes(bytes(data))

    empty = work / "empty-root"
    for name in ("alpha", "beta", "gamma"):
        (empty / name).mkdir(parents=True)
    return Setup(env, skills, damaged, empty, index_dir, time.perf_counter() - t0, source)


def run_one(command: str, s: Setup, timeout: float) -> Outcome:
    skills = ["--skills", str(s.skills)]
    if command == "search":
        return run_plain(command, [*s.retrieve, "search", *skills, QUERY], s.env, timeout)
    if command == "search-json":
        return run_plain(
            command,
            [*s.retrieve, "search", *skills, "--json", QUERY],
            s.env,
            timeout,
            check_search_json,
        )
    if command == "index":
        return run_plain(command, [*s.retrieve, "index", *skills], s.env, timeout)
    if command == "mcp":
        return run_mcp([*s.retrieve, "mcp", *skills], s.env, timeout)
    if command == "damaged-index":
        return run_plain(
            command,
            [
                *s.retrieve,
                "search",
                "--no-rebuild",
                *skills,
                "--index",
                str(s.damaged_index),
                QUERY,
            ],
            s.env,
            timeout,
            check_user_error,
        )
    if command == "empty-root":
        return run_plain(
            command,
            [*s.retrieve, "search", "--skills", str(s.empty_root), QUERY],
            s.env,
            timeout,
            check_user_error,
        )
    raise ValueError(command)


# -- inputs that blew up in time (no burners: a timing of the worst case tried) --------------

WORST_SKILL = """id: contracts
name: Contracts
description: Reviewing commercial contracts, clauses and obligations
triggers: ["{trigger}", contract law]
handoffs:
  - trigger: "contract{spaces}review"
    to: webhooks
  - trigger: "nda|{phrase}"
    to: caching
"""


def worst_case(work: Path, timeout: float) -> dict:
    """Build and search a collection holding the inputs that once took minutes: a handoff
    rule with 40,000 spaces inside (a quadratic split: 82 s to build, 45 s a search), a
    3,000-word trigger and a 3,000-word rule phrase matched against a 5,000-word query
    (n-gram matching: 245 s), and a 1,400-word query (4.5 s)."""
    code = f"""
import json, shutil, sys, time
from pathlib import Path
root = Path({str(work / "worst")!r})
shutil.copytree({str(BUNDLED)!r}, root)
(root / "legal" / "contracts").mkdir(parents=True)
(root / "legal" / "contracts" / "skill.yaml").write_text({WORST_SKILL!r}.format(
    trigger=" ".join(["clause"] * 3000), spaces=" " * 40_000,
    phrase=" ".join(["term"] * 3000)))
from retriever import SkillRetriever
t = time.perf_counter()
r = SkillRetriever.open(root, index_dir={str(work / "worst-index")!r})
out = {{"build_s": time.perf_counter() - t, "problems": len(r.problems)}}
for name, words in (("query_5000_words", 5000), ("query_1400_words", 1400)):
    q = "contract review nda " + " ".join((["clause"] * 2 + ["term"]) * (words // 3))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        res = r.search(q)
        times.append(time.perf_counter() - t)
    out[name + "_ms"] = sorted(times)[2] * 1000
    out[name + "_handoffs"] = len(res.handoffs)
print(json.dumps(out))
"""
    # the usual home: the ONNX export is made once there, not timed as part of the build
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=max(timeout, 600)
    )
    if p.returncode != 0:
        fail(f"the worst-case run failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def print_worst_case(w: dict) -> None:
    print("\nWorst case tried (bundled skills + one adversarial skill; median of 5 searches)")
    print(
        f"  build, with a 40,000-space rule, a 3,000-word trigger and rule phrase: "
        f"{w['build_s']:.1f} s (was 82 s)"
    )
    print(
        f"  search, 5,000-word query: {w['query_5000_words_ms']:.1f} ms (was 245 s); "
        f"1,400-word query: {w['query_1400_words_ms']:.1f} ms (was 4.5 s)"
    )


# -- burners --------------------------------------------------------------------------------


def start_burners(k: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", "while 1: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(k)
    ]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for b in burners:
        if b.poll() is None:
            b.kill()
    for b in burners:
        b.wait()


# -- the report -----------------------------------------------------------------------------


def summarise(outcomes: dict[str, list[Outcome]], keep: int) -> dict:
    rows = {}
    for command, runs in outcomes.items():
        bad = [o for o in runs if o.bad]
        kinds = Counter(o.kind() for o in bad)
        tails: list[dict] = []
        seen: Counter = Counter()
        for o in bad:  # the first `keep` tails, at most one per kind until all kinds show
            if len(tails) < keep and seen[o.kind()] == 0:
                tails.append({"kind": o.kind(), "exit": o.exit_text(), "tail": o.tail()})
                seen[o.kind()] += 1
        secs = [o.seconds for o in runs]
        rows[command] = {
            "expected_exit": COMMANDS[command],
            "runs": len(runs),
            "bad": len(bad),
            "crashes": sum(o.crashed for o in runs),
            "kinds": dict(kinds.most_common()),
            "exits": dict(Counter(o.exit_text() for o in runs).most_common()),
            "median_s": round(statistics.median(secs), 2) if secs else None,
            "max_s": round(max(secs), 2) if secs else None,
            "tails": tails,
        }
    return rows


def print_report(report: dict) -> None:
    rows = report["commands"]
    print(
        f"\nStress: {report['burners']} burners on {report['machine']['cpus']} cores, "
        f"timeout {report['timeout_s']:.0f} s, collection {report['skills']}, "
        f"retriever {report.get('retriever', '?')}"
    )
    head = (
        f"{'command':<15}{'expect':>7}{'runs':>6}{'bad':>5}{'crashes/N':>11}"
        f"{'median s':>10}{'max s':>8}  failure kinds"
    )
    print(head)
    print("-" * len(head))
    for command, r in rows.items():
        kinds = "; ".join(f"{n}x {k}" for k, n in r["kinds"].items()) or "-"
        print(
            f"{command:<15}{r['expected_exit']:>7}{r['runs']:>6}{r['bad']:>5}"
            f"{r['crashes']:>6}/{r['runs']:<4}{r['median_s']:>10.2f}{r['max_s']:>8.2f}  "
            f"{kinds}"
        )
    total_runs = sum(r["runs"] for r in rows.values())
    total_bad = sum(r["bad"] for r in rows.values())
    print(f"{'all':<15}{'':>7}{total_runs:>6}{total_bad:>5}")
    shown = set()
    for command, r in rows.items():
        for t in r["tails"]:
            if t["kind"] in shown:
                continue
            shown.add(t["kind"])
            print(f"\n--- {command}: {t['kind']} ---")
            print(t["tail"])
    print(
        f"\nset-up {report['setup_s']:.0f} s, counted runs {report['runs_s']:.0f} s, "
        f"wall {report['wall_s']:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=40, help="fresh runs per command (default 40)")
    p.add_argument(
        "--commands",
        default=",".join(COMMANDS),
        help=f"comma-separated subset of {','.join(COMMANDS)}",
    )
    p.add_argument(
        "--burners",
        type=int,
        default=os.cpu_count() or 1,
        help="busy-loop processes during the runs (default: one per core)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per run (default 60)")
    p.add_argument(
        "--skills",
        type=Path,
        default=BUNDLED,
        help="skills root to use (default: the bundled collection)",
    )
    p.add_argument(
        "--keep-tails", type=int, default=3, help="stderr tails kept per command (default 3)"
    )
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the home, index and damaged copy here (default: a temporary "
        "folder, removed afterwards)",
    )
    p.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/stress.json")
    p.add_argument(
        "--worst-case",
        action="store_true",
        help="only time the inputs that once blew up in time (no burners)",
    )
    args = p.parse_args(argv)
    if args.worst_case:
        with tempfile.TemporaryDirectory(prefix="stress-worst-") as tmp:
            w = worst_case(Path(tmp), args.timeout)
        print_worst_case(w)
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.with_name("stress-worst-case.json").write_text(json.dumps(w, indent=1))
        return 0
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown or not commands:
        fail(
            f"unknown command(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(COMMANDS)}"
        )
    if args.n < 1 or args.burners < 0 or args.timeout <= 0:
        fail("-n must be >= 1, --burners >= 0 and --timeout > 0")
    skills = args.skills.expanduser().resolve()
    if not skills.is_dir():
        fail(f"skills root not found: {skills}")
    if "mcp" in commands:
        try:
            import mcp  # noqa: F401  (only to say early that the extra is missing)
        except ImportError:
            fail("the mcp command needs the mcp extra: pip install -e '.[mcp]'")

    wall0 = time.perf_counter()
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "skills": str(skills),
        "n": args.n,
        "burners": args.burners,
        "timeout_s": args.timeout,
        "commands": {},
    }

    def save() -> None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1))

    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        work_ctx = None
        work = Path(tempfile.mkdtemp(prefix="stress-", dir=args.work))
    else:
        work_ctx = tempfile.TemporaryDirectory(prefix="stress-")
        work = Path(work_ctx.name)
    outcomes: dict[str, list[Outcome]] = {c: [] for c in commands}
    burners: list[subprocess.Popen] = []
    runs0 = time.perf_counter()
    try:
        setup = prepare(skills, work, args.timeout)
        report["setup_s"] = setup.setup_s
        report["index"] = str(setup.index_dir)
        report["retriever"] = setup.source
        burners = start_burners(args.burners)
        time.sleep(0.5)  # let them reach full speed
        runs0 = time.perf_counter()
        for i in range(args.n):  # interleaved, so every command sees the same conditions
            for command in commands:
                o = run_one(command, setup, args.timeout)
                outcomes[command].append(o)
                if o.bad:
                    print(
                        f"  run {i + 1}/{args.n} {command}: {o.kind()}", file=sys.stderr, flush=True
                    )
            bad = sum(o.bad for runs in outcomes.values() for o in runs)
            print(f"round {i + 1}/{args.n}: {bad} bad so far", file=sys.stderr, flush=True)
            report["commands"] = summarise(outcomes, args.keep_tails)
            report["runs_s"] = time.perf_counter() - runs0
            report["wall_s"] = time.perf_counter() - wall0
            save()
    except KeyboardInterrupt:
        print("interrupted: reporting the runs so far", file=sys.stderr)
    finally:
        stop_burners(burners)
        if work_ctx is not None:
            work_ctx.cleanup()
    report["commands"] = summarise(outcomes, args.keep_tails)
    report["runs_s"] = time.perf_counter() - runs0
    report["wall_s"] = time.perf_counter() - wall0
    save()
    if any(outcomes.values()):
        print_report(report)
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
