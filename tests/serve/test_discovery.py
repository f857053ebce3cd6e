"""Finding a running server: a discovery file is a claim the server must prove, and what
the server replies is checked before the hook uses it (issue 25, defects 2 and 3)."""

from __future__ import annotations

import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import BUNDLED
from helpers import EVENT, run_hook

from retriever.serve import discovery


class FakeServer:
    """A loopback HTTP server that records what it is sent and answers as told: the
    stand-in for another collection's server, or for a server of ours gone wrong."""

    def __init__(self, *, secret: str | None, reply) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                fake.requests.append(("GET", self.path, dict(self.headers)))
                parts = urlsplit(self.path)
                if parts.path == "/identity" and fake.secret is not None:
                    nonce = parse_qs(parts.query).get("nonce", [""])[0]
                    self._answer(200, json.dumps(discovery.identity(fake.secret, nonce)).encode())
                else:
                    self._answer(404, b'{"error": "no"}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                fake.requests.append(("POST", self.path, dict(self.headers)))
                self._answer(200, fake.reply)

        self.secret = secret
        self.reply = reply
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def announce(index: Path, url: str, *, pid: int, secret: str, token: str | None = None) -> Path:
    """Write a discovery file as a server would."""
    folder = discovery.servers_folder(index)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}-{secret[:8]}.json"
    entry = {"url": url, "pid": pid, "index": str(index.resolve()), "token": token}
    path.write_text(json.dumps({**entry, "secret": secret, "started_at": "2026-12-03T00:00:00Z"}))
    return path


@pytest.fixture
def index_args(bundled_index, bundled):
    return ["--skills", str(BUNDLED), "--index", str(bundled_index)]


def test_a_stale_file_pointing_at_another_server_is_not_trusted(
    own_home, bundled_index, index_args
):
    """The defect: a file naming pid 1 (alive) and the URL of another collection's server.
    The hook injected that collection's skills and sent it the token."""
    expected = run_hook(EVENT, *index_args)  # in-process: no server announced
    other = FakeServer(secret=secrets.token_hex(32), reply=b'{"query": "x", "no_match": false, '
                       b'"markdown": "## Shopify Apps"}')  # fmt: skip
    try:
        announce(bundled_index, other.url, pid=1, secret="f" * 64, token="the-token")
        p = run_hook(EVENT, *index_args)
    finally:
        other.close()
    assert (p.returncode, p.stdout, p.stderr) == (0, expected.stdout, b"")
    assert b"Shopify" not in p.stdout
    # it was asked who it is, never sent the token, never asked to search
    assert [(m, path.split("?")[0]) for m, path, _ in other.requests] == [("GET", "/identity")]
    assert all("Authorization" not in headers for _, _, headers in other.requests)


def test_doctor_says_a_stale_file_is_ignored(own_home, bundled_index):
    import subprocess
    import sys

    other = FakeServer(secret=None, reply=b"{}")
    try:
        announce(bundled_index, other.url, pid=1, secret="e" * 64, token="t")
        p = subprocess.run(
            [sys.executable, "-m", "retriever.cli", "doctor", "--json", "--skills", str(BUNDLED),
             "--index", str(bundled_index)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        other.close()
    server = json.loads(p.stdout)["server"]
    assert server["verified"] is False and server["answering"] is False
    assert "skills" not in server  # nothing read from a server that is not ours


def _hook_reply(context, **extra) -> bytes:
    inner = {"hookEventName": "UserPromptSubmit", "additionalContext": context, **extra}
    return json.dumps({"hookSpecificOutput": inner}).encode()


BAD_REPLIES = {
    "300 KB of context": _hook_reply("x" * 300_000),
    "context over the budget": _hook_reply("y" * 5000),
    "a JSON list": b"[1, 2, 3]",
    "null context": _hook_reply(None),
    "a number for context": _hook_reply(7),
    "another event": json.dumps(
        {"hookSpecificOutput": {"hookEventName": "BeforeAgent", "additionalContext": "z"}}
    ).encode(),
    "a key the agent's schema refuses": _hook_reply("z", systemMessage="hi"),
    "a key beside hookSpecificOutput": json.dumps(
        {
            "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": "z"},
            "decision": "block",
            "reason": "no",
        }
    ).encode(),  # fmt: skip
    "not JSON": b"<html>oops</html>",
}


@pytest.mark.parametrize("name", list(BAD_REPLIES))
def test_a_bad_reply_from_a_proven_server_falls_back_to_searching_here(
    name, own_home, bundled_index, index_args
):
    """The server proves itself, then replies badly: every bad reply is treated alike, by
    searching here (the defect: a huge reply became the context; a list or a null
    markdown was an AttributeError and nothing was added)."""
    expected = run_hook(EVENT, *index_args, "--max-chars", "4000")
    secret = secrets.token_hex(32)
    bad = FakeServer(secret=secret, reply=BAD_REPLIES[name])
    try:
        announce(bundled_index, bad.url, pid=os.getpid(), secret=secret)
        p = run_hook(EVENT, *index_args, "--max-chars", "4000")
    finally:
        bad.close()
    paths = [path.split("?")[0] for _, path, _ in bad.requests]
    assert paths == ["/identity", "/hooks/claude-code"]
    assert (p.returncode, p.stdout, p.stderr) == (0, expected.stdout, b"")


def test_a_good_reply_from_a_proven_server_is_used(own_home, bundled_index, index_args):
    secret = secrets.token_hex(32)
    good = FakeServer(secret=secret, reply=_hook_reply("## From the server"))
    try:
        announce(bundled_index, good.url, pid=os.getpid(), secret=secret, token="tok")
        p = run_hook(EVENT, *index_args)
    finally:
        good.close()
    context = json.loads(p.stdout)["hookSpecificOutput"]["additionalContext"]
    assert context == "## From the server"  # the server's answer is what the hook prints
    search = [h for m, _, h in good.requests if m == "POST"]
    assert search and search[0]["Authorization"] == "Bearer tok"


def test_the_newest_proven_server_is_found_and_dead_ones_skipped(own_home, bundled_index):
    servers = [FakeServer(secret=secrets.token_hex(32), reply=b"{}") for _ in range(3)]
    try:
        paths = []
        for n, s in enumerate(servers):
            assert s.secret is not None
            path = announce(bundled_index, s.url, pid=os.getpid(), secret=s.secret)
            entry = json.loads(path.read_text())
            entry["started_at"] = f"2026-12-03T00:00:0{n}Z"
            path.write_text(json.dumps(entry))
            paths.append(path)
        assert discovery.find_server(bundled_index).url == servers[2].url
        servers[2].close()  # the newest stops answering: the next one is found
        assert discovery.find_server(bundled_index).url == servers[1].url
        dead = announce(bundled_index, servers[0].url, pid=2**22 + 17, secret="a" * 64)
        assert dead.name not in {s.path.name for s in discovery.announced_servers(bundled_index)}
    finally:
        for s in servers[:2]:
            s.close()
