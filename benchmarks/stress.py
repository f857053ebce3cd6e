"""Stress benchmark: fresh CLI start-ups while every core is busy, counting bad exits.

Run from the repository root::

    python -m benchmarks.stress                    # 40 runs of each command, bundled skills
    python -m benchmarks.stress -n 300 --commands search,mcp --burners 4
    python -m benchmarks.stress --worst-case       # the inputs that once took minutes
    python -m benchmarks.stress --serving --connections 100,500,1100 --fd-limit 1024
    python -m benchmarks.stress --watch -n 5     # roots replaced under serve --watch

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

``--serving`` stresses ``retrieve serve`` instead: for each N of ``--connections`` it starts
a server on a free loopback port (its open-file limit set to ``--fd-limit``), has helper
processes hold N connections that never finish a request (a third idle, a third with half
their headers, a third with headers and half a body; each one the server closes is opened
again at once, as a slowloris client does), and meanwhile sends probes (``POST /search``
and ``GET /health`` in turn, 5 s timeout each) for ``--duration`` seconds. It prints the
failed probes per N (the goal is 0), their latency, the server's peak descriptors and how
much it logged. The helpers hold at most 400 connections each, so this runs inside
``ulimit -n 1024`` too.
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


# -- serving: probes while half-open connections are held ------------------------------------

HOLD_PER_PROCESS = 400  # connections one helper holds: well inside a 1024 open-file limit
PROBE_TIMEOUT = 5.0

# A helper: holds `count` connections of the three kinds, opening a new one for each that
# the server closes; prints "ready" once all are open, its counts as JSON when stdin closes.
HOLDER = r"""
import json, resource, selectors, socket, sys, time
host, port, count, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < count + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
KINDS = (
    b"",
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"query\": \"redis",
)
sel = selectors.DefaultSelector()
stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0}
missing = []

def open_one(kind):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        if KINDS[kind]:
            s.sendall(KINDS[kind])
    except OSError:
        s.close()
        stats["connect_failed"] += 1
        missing.append(kind)
        return
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, kind)
    stats["opened"] += 1

for i in range(count):
    open_one((offset + i) % 3)
print("ready", flush=True)
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
while True:
    for key, _ in sel.select(timeout=0.5):
        if key.data == "stdin":
            if not sys.stdin.readline():
                print(json.dumps(stats), flush=True)
                sys.exit(0)
            continue
        try:
            data = key.fileobj.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if data:  # a reply (503 at the cap): the close follows
            continue
        sel.unregister(key.fileobj)
        key.fileobj.close()
        stats["closed_by_server"] += 1
        open_one(key.data)
    for kind in [missing.pop() for _ in range(len(missing))]:
        open_one(kind)
        time.sleep(0.01)
"""


@dataclass
class Probe:
    route: str
    ok: bool
    seconds: float
    note: str = ""
    started: float = 0.0  # s since the connections were all open


def probe(host: str, port: int, route: str) -> Probe:
    import http.client

    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        if route == "search":
            body = json.dumps({"query": QUERY, "k": 3})
            headers = {"Content-Type": "application/json"}
            conn.request("POST", "/search", body, headers)
        else:
            conn.request("GET", "/health")
        r = conn.getresponse()
        data = r.read()
        ok = r.status == 200 and (route != "search" or b'"skills"' in data)
        note = "" if ok else f"HTTP {r.status}"
    except (OSError, http.client.HTTPException) as e:
        ok, note = False, f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return Probe(route, ok, time.perf_counter() - start, note)


def _limit_fds(limit: int):
    def apply() -> None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (cap, cap))

    return apply


def server_fd_limit(pid: int) -> int:
    """The soft open-file limit of process ``pid`` (0 where /proc cannot tell)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def serve_round(s: Setup, n: int, fd_limit: int, duration: float, timeout: float) -> dict:
    """One server, ``n`` half-open connections held by helpers, probes for ``duration`` s."""
    err = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [*s.retrieve, "-q", "serve", "--port", "0", "--skills", str(s.skills),
         "--index", str(s.index_dir), "--no-rebuild"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        env=s.env,
        text=True,
        preexec_fn=_limit_fds(fd_limit) if fd_limit > 0 else None,
    )  # fmt: skip
    holders: list[subprocess.Popen] = []
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("serving "):
            err.seek(0)
            fail(f"the server did not start: {line!r} {err.read().decode()[-1500:]}")
        url = line.split(" at ", 1)[1].split(": ", 1)[0]
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        fds = [0]
        seen_limit = server_fd_limit(server.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                try:
                    fds.append(len(os.listdir(f"/proc/{server.pid}/fd")))
                except OSError:
                    pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        for offset in range(0, n, HOLD_PER_PROCESS):
            count = min(HOLD_PER_PROCESS, n - offset)
            holders.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOLDER, host, port, str(count), str(offset)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for h in holders:
            if h.stdout is None or h.stdout.readline().strip() != "ready":
                fail("a helper holding connections did not start")
        opened_s = time.perf_counter() - t0
        probes: list[Probe] = []
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            at = time.perf_counter() - t0 - opened_s
            probes.append(probe(host, int(port), "search" if len(probes) % 2 == 0 else "health"))
            probes[-1].started = at
            time.sleep(0.2)
        held = {"opened": 0, "closed_by_server": 0, "connect_failed": 0}
        for h in holders:
            out, _ = h.communicate("", timeout=timeout)
            for key, value in json.loads(out.strip().splitlines()[-1]).items():
                held[key] += value
        holders = []
        done.set()
        sampler.join()
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout)
        err.seek(0)
        log = err.read().decode("utf-8", "replace")
    finally:
        for h in holders:
            h.kill()
            h.wait()
        if server.poll() is None:
            server.kill()
            server.wait()
        err.close()

    def stats(route: str) -> dict:
        mine = [p for p in probes if p.route == route]
        times = sorted(p.seconds for p in mine)
        return {
            "probes": len(mine),
            "failed": sum(not p.ok for p in mine),
            "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
            "max_ms": round(times[-1] * 1000, 1) if times else None,
            "failures": Counter(p.note for p in mine if not p.ok).most_common(3),
        }

    return {
        "connections": n,
        "fd_limit": seen_limit or fd_limit,  # as the server has it (it may raise its soft one)
        "opened_in_s": round(opened_s, 2),
        **held,
        "search": stats("search"),
        "health": stats("health"),
        "server_fds_max": max(fds),
        "server_exit": rc,
        "stderr_lines": len(log.splitlines()),
        "stderr_bytes": len(log.encode()),
        "tracebacks": log.count("Traceback"),
        "probe_ms": [(p.route[0], round(p.started, 2), round(p.seconds * 1000)) for p in probes],
        "stderr_head": log.splitlines()[:6],
    }


def print_serving(rounds: list[dict], duration: float) -> None:
    fd_limit = rounds[0]["fd_limit"] if rounds else 0
    print(
        f"\nServing: `retrieve serve` with an open-file limit of {fd_limit or '?'}; "
        f"for {duration:.0f} s, probes ({PROBE_TIMEOUT:.0f} s timeout) while N connections "
        "that never finish a request are held (reopened when closed)"
    )
    head = (
        f"{'N':>6}{'opened s':>9}{'closed by server':>17}{'search failed':>14}"
        f"{'p50/max ms':>14}{'health failed':>14}{'p50/max ms':>14}{'fds max':>8}"
        f"{'stderr lines':>13}{'tracebacks':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rounds:
        se, he = r["search"], r["health"]
        print(
            f"{r['connections']:>6}{r['opened_in_s']:>9.2f}{r['closed_by_server']:>17,}"
            f"{se['failed']:>8}/{se['probes']:<5}{se['p50_ms']:>7.0f}/{se['max_ms']:<6.0f}"
            f"{he['failed']:>8}/{he['probes']:<5}{he['p50_ms']:>7.0f}/{he['max_ms']:<6.0f}"
            f"{r['server_fds_max']:>8}{r['stderr_lines']:>13}{r['tracebacks']:>11}"
        )
    for r in rounds:
        for route in ("search", "health"):
            for note, count in r[route]["failures"]:
                print(f"  N={r['connections']} {route}: {count}x {note}")
    for r in rounds:
        for line in r["stderr_head"]:
            print(f"  N={r['connections']} stderr: {line[:160]}")
    failed = sum(r["search"]["failed"] + r["health"]["failed"] for r in rounds)
    total = sum(r["search"]["probes"] + r["health"]["probes"] for r in rounds)
    print(f"failed probes: {failed} of {total}")


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
    p.add_argument(
        "--serving",
        action="store_true",
        help="stress `retrieve serve` with connections that never finish a request",
    )
    p.add_argument(
        "--connections",
        default="100,500,1100",
        help="--serving: comma-separated numbers of such connections (default 100,500,1100)",
    )
    p.add_argument(
        "--fd-limit",
        type=int,
        default=1024,
        help="--serving: the server's open-file limit (default 1024; 0 leaves it)",
    )
    p.add_argument(
        "--duration", type=float, default=20.0, help="--serving: seconds of probes per N"
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="stress `retrieve serve --watch` with roots replaced whole (rm+cp, mv swap, "
        "symlink switch); runs benchmarks.stress_watch (its options: -n for --repeats)",
    )
    args = p.parse_args(argv)
    if args.watch:
        from benchmarks import stress_watch

        return stress_watch.main(["--repeats", str(args.n if args.n != 40 else 5)])
    if args.serving:
        return serving(args)
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


def serving(args: argparse.Namespace) -> int:
    try:
        counts = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0 or args.duration <= 0 or args.fd_limit < 0:
        fail("--connections takes numbers like 100,500,1100; --duration > 0, --fd-limit >= 0")
    try:
        import resource  # noqa: F401  (the helpers and --fd-limit need it)
    except ImportError:
        fail("--serving needs a Unix system (the resource module)")
    skills = args.skills.expanduser().resolve()
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="stress-serving-") as tmp:
        setup = prepare(skills, Path(tmp), args.timeout)
        for n in counts:
            print(f"serving: {n} connections held ...", file=sys.stderr, flush=True)
            rounds.append(serve_round(setup, n, args.fd_limit, args.duration, args.timeout))
    print_serving(rounds, args.duration)
    out = args.json_out.with_name("stress-serving.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounds, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
