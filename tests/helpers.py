"""Running the real thing from tests: the one way to start `retrieve` (and Python) as a
subprocess, a `retrieve serve` process, and requests to it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

EMPTY_HOME = tempfile.mkdtemp(prefix="home-")  # no ~/.claude/skills: the bundled default
TOKEN = "test-token-8f2c"
QUERY = "my webhook handler processes the same event twice"

# What Claude Code writes on the hook's stdin for UserPromptSubmit.
EVENT = {
    "session_id": "5b7e0d2c-8f1e-4c55-9a0e-2f1f4d6c9b21",
    "transcript_path": "/home/user/.claude/projects/-work-app/5b7e0d2c.jsonl",
    "cwd": "/work/app",
    "permission_mode": "default",
    "hook_event_name": "UserPromptSubmit",
    "prompt": QUERY,
}


def run(
    argv: list[str],
    *,
    input: str | bytes | None = None,  # noqa: A002 - subprocess's own name
    env: dict[str, str] | None = None,
    cwd=None,
    timeout: float = 600,
    text: bool = True,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """``argv`` in a fresh process with this environment (plus ``env``), HOME an empty
    folder (no user skill folders: the bundled collection is the default), output kept."""
    p = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=text,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HOME": EMPTY_HOME, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr}")
    return p


def retrieve(*args: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    """``retrieve ARGS`` as a user runs it (``python -m retriever.cli``)."""
    return run([sys.executable, "-m", "retriever.cli", *args], check=check, **options)


def python(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (a cold start: nothing imported yet)."""
    return run([sys.executable, "-c", textwrap.dedent(code)], timeout=timeout, env=env)


def run_hook(stdin: dict | str | bytes, *args: str, env=None) -> subprocess.CompletedProcess:
    """``retrieve hook claude-code ARGS`` fed ``stdin`` (an event: JSON); bytes out."""
    data = json.dumps(stdin) if isinstance(stdin, dict) else stdin
    return retrieve(
        "hook", "claude-code", *args,
        input=data.encode() if isinstance(data, str) else data,
        env=env, text=False, timeout=60, check=False,
    )  # fmt: skip


class Server:
    """A `retrieve serve` subprocess; its URL from the line it prints when ready."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "retriever.cli", "-q", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        line = self.process.stdout.readline()
        if not line.startswith("serving "):
            self.process.kill()
            raise AssertionError(f"no ready line: {line!r} {self.process.stderr.read()}")
        self.url = line.split(" at ", 1)[1].split(": ", 1)[0]
        if "building the index first" in line:  # it answers now; searches once it is built
            deadline = time.monotonic() + 600
            while request(f"{self.url}/health", token=None)[1].get("status") != "ok":
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    raise AssertionError(f"the first build never finished: {self.stderr()}")
                time.sleep(0.2)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


def request(url, data=None, *, token=TOKEN, headers=None, method=None):
    """``(status, parsed JSON or text)`` of one request."""
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, body, dict(headers or {}), method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw, kind = r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get("content-type", "")
    return status, json.loads(raw) if "json" in kind else raw.decode()


def mcp_session(url: str, script, token: str = TOKEN):
    """``script(client)``'s result, run in an MCP session with the server at ``url``."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as c:
            return await script(c)

    return asyncio.run(asyncio.wait_for(main(), 120))
