"""`retrieve serve` under connections that never finish a request, on other loopback
addresses, and with lone surrogate escapes at /mcp: a real server process, real sockets."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import BUNDLED

pytest.importorskip("mcp", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
resource = pytest.importorskip("resource", reason="open-file limits are a Unix thing")

TOKEN = "limits-token-4d1e"
QUERY = "my webhook handler processes the same event twice"
# small numbers so that each test takes seconds: a cap of 40 connections, 1 s for headers
# and between pieces of a body, 2 s for a whole body
LIMITS = "connections=40,header_timeout=1,body_chunk_timeout=1,body_timeout=2"
HALF_HEADERS = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# with the token: the route is reading the body when it stalls (not refused before it)
HALF_BODY = (
    b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 100\r\n\r\n"
    b'{"query": "redis'
)


class Server:
    """A `retrieve serve` subprocess with stderr in a file (readable while it runs)."""

    def __init__(self, tmp: Path, *args: str, env=None, preexec_fn=None) -> None:
        self.log = tmp / f"stderr-{time.monotonic_ns()}.txt"
        with open(self.log, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "retriever.cli", "-q", "serve", "--port", "0", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, **(env or {})},
                preexec_fn=preexec_fn,
            )
        line = self.process.stdout.readline()
        if not line.startswith("serving "):
            self.process.kill()
            raise AssertionError(f"no ready line: {line!r} {self.stderr()}")
        self.url = line.split(" at ", 1)[1].split(": ", 1)[0]
        host, port = self.url.split("//", 1)[1].rsplit(":", 1)
        self.address = (host, int(port))

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


def request(url, data=None, *, token=TOKEN, headers=None, timeout=5.0):
    """``(status, body bytes)``; raises on a timeout or a closed connection."""
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, body, dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def connect(address, first: bytes = b"") -> socket.socket:
    s = socket.create_connection(address, timeout=5)
    if first:
        s.sendall(first)
    return s


def closed_by_server(sockets: dict[str, socket.socket], within: float, trickle=()):
    """``{name: seconds until the server closed it}`` for those closed within ``within`` s;
    the sockets named in ``trickle`` get one more body byte every 0.4 s meanwhile."""
    sel = selectors.DefaultSelector()
    for name, s in sockets.items():
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, name)
    start = time.monotonic()
    closed: dict[str, float] = {}
    next_byte = start + 0.4
    while len(closed) < len(sockets) and time.monotonic() - start < within:
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset: an abort
                data = b""
            if not data:
                closed[key.data] = time.monotonic() - start
                sel.unregister(key.fileobj)
        if time.monotonic() >= next_byte:
            next_byte += 0.4
            for name in trickle:
                if name not in closed:
                    try:
                        sockets[name].send(b"x")
                    except OSError:
                        pass
    sel.close()
    return closed


def read_response(s: socket.socket) -> bytes:
    """One whole response with a Content-Length, read from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        body += s.recv(65536)
    return head


@pytest.fixture(scope="module")
def server(bundled_index, bundled, tmp_path_factory):
    s = Server(
        tmp_path_factory.mktemp("limits"),
        *("--skills", str(BUNDLED), "--index", str(bundled_index), "--no-rebuild"),
        *("--token", TOKEN),
        env={"SKILL_RETRIEVER_SERVE_LIMITS": LIMITS},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, 4096)),
    )
    yield s
    assert s.stop() == 0


def test_the_soft_open_file_limit_is_raised_for_the_cap(server):
    """Started with a soft limit of 512 and a hard one of 4096, the server raises its soft
    limit to what MAX_CONNECTIONS needs (not to the hard limit: no more is used)."""
    from retriever.serve.http import ACCEPT_BATCH, ACCEPT_PASSES, FD_SPARE, MAX_CONNECTIONS

    limits = Path(f"/proc/{server.process.pid}/limits")
    if not limits.exists():
        pytest.skip("no /proc here")
    line = next(x for x in limits.read_text().splitlines() if x.startswith("Max open files"))
    soft, hard = (int(x) for x in line.split()[3:5])
    least = MAX_CONNECTIONS + FD_SPARE + ACCEPT_BATCH * ACCEPT_PASSES
    assert hard == 4096 and least < soft < least + 100, line


def test_connections_that_never_finish_a_request_are_closed(server):
    """Before: none of these was ever closed (uvicorn times out only keep-alive idleness,
    and any byte received cancels that), so each held a descriptor for ever."""
    keep_alive = connect(server.address)
    keep_alive.sendall(
        f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert b" 200 " in read_response(keep_alive).split(b"\r\n")[0]
    keep_alive.sendall(b"GET /health HTTP/1.1\r\n")  # the next request, half sent
    sockets = {
        "idle": connect(server.address),
        "half headers": connect(server.address, HALF_HEADERS),
        "half body": connect(server.address, HALF_BODY),
        "trickled body": connect(server.address, HALF_BODY),
        "keep-alive, then half headers": keep_alive,
    }
    closed = closed_by_server(sockets, within=6, trickle=["trickled body"])
    for s in sockets.values():
        s.close()
    assert set(closed) == set(sockets), f"still open after 6 s: {set(sockets) - set(closed)}"
    for name in ("idle", "half headers", "half body", "keep-alive, then half headers"):
        assert 0.5 < closed[name] < 3, (name, closed[name])
    # a byte every 0.4 s keeps the 1 s between pieces; the 2 s for the whole body ends it
    assert 1.6 < closed["trickled body"] < 4, closed["trickled body"]


def test_a_slow_but_steady_client_is_answered(server):
    s = connect(server.address, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    time.sleep(0.5)  # within the 1 s for whole headers
    s.sendall(f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert b" 200 " in read_response(s).split(b"\r\n")[0]
    s.close()


def test_past_the_cap_the_longest_waiting_connections_make_room(server):
    """120 connections that never finish a request against a cap of 40: the longest waiting
    ones are closed as new ones come, and a client's requests are answered at once. Before:
    all 120 stayed open (under `ulimit -n 1024`, 1,100 of them stopped every request)."""
    held = [connect(server.address, (b"", HALF_HEADERS, HALF_BODY)[i % 3]) for i in range(120)]
    started = time.monotonic()
    for _ in range(3):
        assert request(f"{server.url}/health")[0] == 200
        status, body = request(f"{server.url}/search", {"query": QUERY, "k": 3})
        assert status == 200 and json.loads(body)["skills"]
    assert time.monotonic() - started < 5
    closed = closed_by_server(dict(enumerate(held)), within=0.3)  # before any timeout
    for s in held:
        s.close()
    assert len(closed) >= 120 - 40, f"{len(closed)} of 120 closed"


def test_upgrade_headers_are_ignored(server):
    """Nothing here speaks WebSocket: an Upgrade is answered as plain HTTP (RFC 9110 allows
    it), so the connection stays under the limits and logs nothing. Before: handed to a
    WebSocket protocol, outside the limits, and refused with 403."""
    for upgrade in (b"websocket", b"h2c"):
        s = connect(
            server.address,
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
            b"Upgrade: " + upgrade + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n",
        )
        assert read_response(s).startswith(b"HTTP/1.1 200 ")
        s.close()
    assert "pgrade" not in server.stderr()


def test_each_condition_is_logged_once_not_per_connection(server):
    """Fresh events of each kind (a timeout of headers, of a body, an eviction at the cap):
    one warning line each the first time, however many happen; no traceback ever."""
    waiting = [connect(server.address) for _ in range(60)]  # over the cap of 40
    waiting += [connect(server.address, HALF_BODY) for _ in range(5)]  # the newest: kept
    closed_by_server(dict(enumerate(waiting)), within=2.5)
    for s in waiting:
        s.close()
    lines = server.stderr().splitlines()
    assert "Traceback" not in server.stderr()
    assert all(line.startswith("retrieve: a connection ") for line in lines), lines
    for words in ("no whole request headers", "request body stalled", "to make room"):
        assert sum(words in line for line in lines) == 1, (words, lines)


def test_mcp_mends_lone_surrogate_escapes_as_search_cleans_them(server):
    """Before: /mcp answered a JSON-RPC parse error; /search answered results."""
    query = b'"redis \\ud800 cache \\uDFFF"'
    status, body = request(f"{server.url}/search", b'{"query": ' + query + b', "k": 3}')
    assert status == 200 and json.loads(body)["skills"]
    call = (
        b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": '
        b'"search_skills", "arguments": {"query": ' + query + b', "k": 3}}}'
    )
    accept = {"Accept": "application/json, text/event-stream"}
    status, body = request(f"{server.url}/mcp", call, headers=accept)
    reply = json.loads(body)
    assert status == 200 and reply["id"] == 7 and "error" not in reply, reply
    result = reply["result"]
    assert not result.get("isError") and result["structuredContent"]["skills"], result
    # a surrogate pair written as two escapes is a character, kept as it is
    pair = call.replace(query, b'"redis cache \\ud83d\\ude80"')
    status, body = request(f"{server.url}/mcp", pair, headers=accept)
    assert status == 200
    assert "\U0001f680" in json.loads(body)["result"]["structuredContent"]["query"]


def test_probes_are_answered_with_more_connections_than_descriptors(
    bundled_index, bundled, tmp_path
):
    """The real condition, scaled down: the server may open 512 files and 600 connections
    never finish a request, with the default limits (the cap follows the open-file limit).
    Before: accept() failed with EMFILE, no probe was answered, and asyncio logged a
    traceback per failed accept (tens of MB a minute)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 800:  # this process holds the 600 connections
        if hard != resource.RLIM_INFINITY and hard < 800:
            pytest.skip(f"the open-file limit ({hard}) is too low to hold 600 connections")
        resource.setrlimit(resource.RLIMIT_NOFILE, (800, hard))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    s = Server(
        tmp_path,
        *("--skills", str(BUNDLED), "--index", str(bundled_index), "--no-rebuild"),
        env={"SKILL_RETRIEVER_SERVE_LIMITS": ""},
        preexec_fn=limit,
    )
    held = []
    try:
        for i in range(600):
            held.append(connect(s.address, (b"", HALF_HEADERS, HALF_BODY)[i % 3]))
        for _ in range(3):
            assert request(f"{s.url}/health", token=None)[0] == 200
            status, body = request(f"{s.url}/search", {"query": QUERY, "k": 3}, token=None)
            assert status == 200 and json.loads(body)["skills"]
        assert s.fds() < 512 - 32
    finally:
        for c in held:
            c.close()
        assert s.stop() == 0
    log = s.stderr()
    assert "Traceback" not in log and len(log.splitlines()) <= 3, log[:3000]


def test_mcp_answers_on_any_loopback_address(bundled_index, bundled, tmp_path):
    """Before: with --host 127.0.0.2, /search answered and /mcp said 421 Invalid Host header
    (the SDK's check knew 127.0.0.1, localhost and ::1 only)."""
    from helpers import mcp_session

    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    s = Server(
        tmp_path,
        *("--host", "127.0.0.2", "--token", TOKEN),
        *("--skills", str(BUNDLED), "--index", str(bundled_index), "--no-rebuild"),
    )
    try:
        assert s.url.startswith("http://127.0.0.2:")
        tools = mcp_session(s.url, lambda c: c.list_tools(), token=TOKEN)
        assert {t.name for t in tools.tools} == {"search_skills", "get_skill"}
        listing = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}'
        accept = {"Accept": "application/json, text/event-stream"}
        assert request(f"{s.url}/mcp", listing, headers=accept)[0] == 200
        # the guard's check still applies to /mcp, as to every route
        for headers in (
            {"Host": "evil.example"},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
        ):
            assert request(f"{s.url}/mcp", listing, headers={**accept, **headers})[0] == 421
            assert request(f"{s.url}/search", {"query": QUERY}, headers=headers)[0] == 421
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize(
    "host, origin, local",
    [
        ("127.0.0.1:8765", None, True),
        ("localhost:8765", "http://localhost:8765", True),
        ("[::1]:8765", "http://[::1]:8765", True),
        ("127.0.0.2:8765", "http://127.0.0.2:8765", True),  # the SDK refused: the defect
        ("127.0.0.1", None, True),  # no port (80): the SDK refused, nothing to fear
        ("LOCALHOST:1", None, True),  # names are case-insensitive
        ("", None, False),
        ("evil.example:8765", None, False),
        ("127.0.0.1.evil.example:8765", None, False),
        ("localhost.evil.example", None, False),
        ("127.0.0.1:80@evil.example", None, False),
        ("127.0.0.1:evil", None, False),  # the SDK let a port of any text through
        ("[::1]x", None, False),
        ("127.0.0.1:8765", "http://evil.example", False),
        ("127.0.0.1:8765", "null", False),
        ("127.0.0.1:8765", "", False),  # the SDK let an empty Origin through
        ("127.0.0.1:8765", "https://127.0.0.1:8765", False),  # the SDK: http:// only
        ("127.0.0.1:8765", "http://127.0.0.1:8765/path", False),
        ("127.0.0.1:8765", "http://evil.example@127.0.0.1", False),
        ("127.0.0.1:8765", "file://", False),
    ],
)
def test_the_host_check_is_at_least_as_strict_as_the_sdks(host, origin, local):
    from mcp.server.transport_security import TransportSecurityMiddleware as SDK
    from mcp.server.transport_security import TransportSecuritySettings

    from retriever.serve.http import _local_request

    headers = {b"host": host.encode()}
    if origin is not None:
        headers[b"origin"] = origin.encode()
    assert _local_request(headers) is local
    sdk = SDK(
        TransportSecuritySettings(
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    )
    sdk_local = sdk._validate_host(host) and sdk._validate_origin(origin)
    if local and not sdk_local:  # where ours lets through what the SDK refused: loopback
        assert host.split(":")[0].lower() in ("127.0.0.2", "127.0.0.1", "localhost")


def test_limits_from_the_environment_and_the_cap_from_the_file_limit():
    from retriever.serve.http import (
        ACCEPT_BATCH,
        ACCEPT_PASSES,
        FD_SPARE,
        MAX_CONNECTIONS,
        MIN_CONNECTIONS,
        ServeError,
        ServeLimits,
        connection_cap,
    )

    assert ServeLimits.from_env("") == ServeLimits()
    limits = ServeLimits.from_env(" connections=40, header_timeout=1.5 ,")
    assert limits.connections == 40 and limits.header_timeout == 1.5
    for bad in ("connections=0", "header_timeout=-1", "body_timeout=nan", "nope=1", "x"):
        with pytest.raises(ServeError, match="SKILL_RETRIEVER_SERVE_LIMITS"):
            ServeLimits.from_env(bad)
    # `ulimit -n 1024` with 12 files open: room kept for the rest and a burst of accepts
    assert connection_cap(1024, 12) == 1024 - 12 - FD_SPARE - ACCEPT_BATCH * ACCEPT_PASSES
    assert 800 < connection_cap(1024, 12) < 1024 - 100
    assert connection_cap(1_000_000, 12) == MAX_CONNECTIONS
    assert connection_cap(100, 12) == MIN_CONNECTIONS
