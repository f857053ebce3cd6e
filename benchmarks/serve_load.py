"""Load test of ``retrieve serve``: concurrent clients over plain HTTP and over MCP HTTP.

Run from the repository root::

    python -m benchmarks.serve_load                 # 16 clients x 200 queries, each transport
    python -m benchmarks.serve_load --clients 4 --queries-per-client 50

Loopback only and bounded in time: the server is a ``retrieve serve`` subprocess on a free
port of 127.0.0.1, each run stops at ``--max-seconds`` (what was measured is kept), and the
server is stopped at the end whatever happens. Every client keeps one connection and sends
its queries one after another (the dev queries, or the held-out symptoms when the shared
data is absent), so the load is ``--clients`` requests in flight at all times. Printed per
transport: throughput, latency p50 / p99, errors, and the server's resident memory before
and after (and its peak). The clients run in this process, on the same cores as the
server: the figures are what one machine does with both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import HELD_OUT, REPO, shared_dir  # noqa: E402
from benchmarks.timing import stats  # noqa: E402


def load_queries(path: Path | None) -> tuple[Path, list[str]]:
    candidates = [path] if path else [shared_dir() / "eval" / "dev-queries.jsonl"]
    candidates.append(HELD_OUT / "symptoms.jsonl")
    for p in candidates:
        if p is not None and p.is_file():
            lines = p.read_text(encoding="utf-8").splitlines()
            return p, [json.loads(line)["query"] for line in lines if line.strip()]
    raise SystemExit("serve_load: error: no query file found")


def default_skills() -> Path:
    spawner = shared_dir() / "corpora" / "spawner-skills"
    return spawner if spawner.is_dir() else REPO / "skills"


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of ``pid`` now (VmRSS) and at its peak (VmHWM), in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_mb": out.get("VmHWM", 0.0)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    def __init__(self, skills: Path, index: Path | None, token: str) -> None:
        cmd = [sys.executable, "-m", "retriever.cli", "-q", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", "0", "--skills", str(skills), "--token", token]
        if index:
            cmd += ["--index", str(index)]
        started = time.perf_counter()
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("serving "):
            self.process.kill()
            raise SystemExit(f"serve_load: error: the server did not start ({line!r})")
        self.start_s = time.perf_counter() - started
        self.url = line.split(" at ", 1)[1].split(": ", 1)[0]
        assert self.url.startswith("http://127.0.0.1:"), self.url  # loopback only

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


async def http_client(url, token, queries, k, latencies, errors, deadline) -> None:
    import httpx2  # the MCP SDK's HTTP client: no other dependency

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for q in queries:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                r = await client.post("/search", json={"query": q, "k": k})
                ok = r.status_code == 200 and "skills" in r.json()
            except Exception as e:  # noqa: BLE001 - counted, not raised
                ok, r = False, e
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(repr(r)[:200])


async def mcp_client(url, token, queries, k, latencies, errors, deadline) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        for q in queries:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                r = await client.call_tool("search_skills", {"query": q, "k": k})
                ok = not r.is_error and r.structured_content is not None
            except Exception as e:  # noqa: BLE001 - counted, not raised
                ok, r = False, e
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(repr(r)[:200])


def run_load(kind, server, token, queries, clients, per_client, k, max_seconds) -> dict:
    client = http_client if kind == "http" else mcp_client
    latencies: list[float] = []
    errors: list[str] = []
    pid = server.process.pid
    before, cpu_before = memory_mb(pid), cpu_seconds(pid)
    deadline = time.monotonic() + max_seconds

    async def main() -> None:
        await asyncio.gather(
            *(
                client(
                    server.url,
                    token,
                    [queries[(c * per_client + i) % len(queries)] for i in range(per_client)],
                    k,
                    latencies,
                    errors,
                    deadline,
                )
                for c in range(clients)
            )
        )

    started = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - started
    after = memory_mb(pid)
    return {
        "transport": kind,
        "clients": clients,
        "requests": len(latencies),
        "planned": clients * per_client,
        "stopped_at_time_limit": len(latencies) < clients * per_client,
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": wall,
        "throughput_per_s": len(latencies) / wall if wall else 0.0,
        "latency_s": stats(latencies) if latencies else None,
        "server_cpu_s": cpu_seconds(pid) - cpu_before,
        "server_rss_mb_before": before["rss_mb"],
        "server_rss_mb_after": after["rss_mb"],
        "server_peak_mb": after["peak_mb"],
    }


def print_row(r: dict) -> None:
    lat = r["latency_s"] or {"median": 0.0, "p99": 0.0}
    print(
        f"  {r['transport']:<5} {r['clients']:>2} clients: {r['requests']:>5} requests in "
        f"{r['wall_s']:6.1f} s = {r['throughput_per_s']:6.1f}/s; latency p50 "
        f"{lat['median'] * 1000:6.1f} ms, p99 {lat['p99'] * 1000:6.1f} ms; errors {r['errors']}; "
        f"server RSS {r['server_rss_mb_before']:.0f} -> {r['server_rss_mb_after']:.0f} MB "
        f"(peak {r['server_peak_mb']:.0f} MB)"
        + ("; STOPPED AT THE TIME LIMIT" if r["stopped_at_time_limit"] else "")
    )
    for e in r["first_errors"]:
        print(f"      error: {e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skills", type=Path, default=None, help="default: the 462-skill corpus")
    p.add_argument("--index", type=Path, default=None, help="default: the corpus's own index")
    p.add_argument("--queries", type=Path, default=None, help="default: the dev queries")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--queries-per-client", type=int, default=200)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--max-seconds", type=float, default=240, help="per transport")
    p.add_argument("--transports", default="http,mcp")
    p.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/serve-load.json")
    args = p.parse_args(argv)
    skills = args.skills or default_skills()
    query_file, queries = load_queries(args.queries)
    token = os.urandom(16).hex()

    if args.index is None:  # build (or refresh) the corpus's usual index first, untimed
        subprocess.run(
            [sys.executable, "-m", "retriever.cli", "-q", "index", "--skills", str(skills)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    server = ServerProcess(skills, args.index, token)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "skills": str(skills),
        "queries": str(query_file),
        "server_start_s": server.start_s,
        "runs": [],
    }
    try:
        print(
            f"retrieve serve on {server.url} (started in {server.start_s:.1f} s), "
            f"{skills}, queries from {query_file.name}"
        )
        for kind in [t.strip() for t in args.transports.split(",") if t.strip()]:
            # a short warm-up per transport (connections, first-call paths), not counted
            run_load(kind, server, token, queries, 2, 5, args.k, 30)
            r = run_load(
                kind,
                server,
                token,
                queries,
                args.clients,
                args.queries_per_client,
                args.k,
                args.max_seconds,
            )
            report["runs"].append(r)
            print_row(r)
    finally:
        report["server_exit"] = server.stop()
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1))
        print(f"server exit status {report['server_exit']}; wrote {args.json_out}")
    return 0 if all(r["errors"] == 0 for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
