"""``retrieve serve``: one process answering plain HTTP JSON and MCP over streamable HTTP.

Routes (``POST /search`` answers with the ``search --json`` contract)::

    POST /search        {"query": "...", "k": 5, "max_chars": 4000?} -> the result (+ "markdown")
    GET  /skills/{id}   the skill as JSON (and Markdown); Accept: text/markdown for Markdown only
    GET  /health        package version, index folder and version, model, counts, stale or not
    /mcp                MCP streamable HTTP (stateless, JSON responses): the same tools as stdio

It binds to 127.0.0.1 by default. Anything else needs a bearer token, checked on every
route. Bodies over ``MAX_BODY_BYTES`` get 413, a bad request 400, both as JSON
``{"error": "..."}``. Loopback binds also refuse other Host and Origin headers (a web page
must not reach a local server through DNS rebinding).

Connections are bounded where uvicorn leaves them open (see ``ServeLimits``): complete
request headers must arrive within ``HEADER_TIMEOUT`` of connecting (or of the previous
response), a body must keep coming and end in time, and past a cap on open connections
set from the open-file limit the connection that has waited longest without a whole request
is closed to make room. ``$SKILL_RETRIEVER_SERVE_LIMITS`` (``connections=50,
header_timeout=1,...``) overrides the numbers, for tests and benchmarks.

A running server announces itself (``retriever.serve.discovery``) so that ``retrieve hook`` and
``retrieve doctor`` find it for the same index, and answers ``GET /identity`` without a
token so that they can check it is that server before sending one. Only the standard
library is imported at module level.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from retriever.errors import QueryError, RetrieverError
from retriever.search.query import MAX_K, check_k
from retriever.serve.discovery import IDENTITY_PATH, announced, identity

if TYPE_CHECKING:
    from retriever.serve.live import LiveRetriever

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ENV_TOKEN = "SKILL_RETRIEVER_TOKEN"
MAX_BODY_BYTES = 256 * 1024  # a query is cut to 2,000 words (~15 KB) anyway
MAX_RENDER_CHARS = 100_000
# Searches run at once; the rest wait their turn. Each one's forward pass already uses the
# cores (onnxruntime's threads), so more at a time only share them worse: with 16 clients
# on 2 cores (benchmarks/serve_load.py, 6 alternating pairs) 2 at a time gave p99 225-326
# ms against 328-389 ms with no limit, for 0-15% less throughput at saturation.
SEARCH_SLOTS = max(1, min(4, os.cpu_count() or 1))
LOOPBACK_NAMES = ("localhost",)
MCP_PATH = "/mcp"
# Seconds a client is told to wait (Retry-After) when it asks while the first index builds.
RETRY_AFTER_S = 5


class ServeError(RetrieverError):
    """The server cannot start as asked (address in use, a token missing); one line."""


# -- connection limits ----------------------------------------------------------------------
#
# uvicorn closes a connection on its own only with its keep-alive timer, which it arms after
# a response; the token is checked once the headers are in. So a connection that never
# completes a request (nothing sent, half the headers, half the body) stayed open for ever,
# without a token: 1,100 of them under `ulimit -n 1024` took every descriptor, accept()
# failed with EMFILE, which asyncio logs with a traceback per attempt (46 MB of stderr in
# 25 s), and no request was answered until they closed. uvicorn's `limit_concurrency` does
# not help: it answers 503 once a request's headers are in, and these never send them. The
# HTTP protocol below (uvicorn's h11 one, subclassed) times a connection out until its
# request is whole and caps the connections open.

HEADER_TIMEOUT = 10.0  # s from connecting (or from the last response) to whole headers.
# A client sends them at once (h11 refuses headers over 16 KiB); 10 s allows a slow link.
BODY_CHUNK_TIMEOUT = 10.0  # s at most between two pieces of a request body
BODY_TIMEOUT = 30.0  # s for a whole body: MAX_BODY_BYTES (256 KiB) at 9 KB/s or more
KEEP_ALIVE_TIMEOUT = 5  # s an idle connection is kept after a response (uvicorn's default)
MAX_CONNECTIONS = 1024  # the cap at most, however many descriptors the process may open.
# A team's agents need tens. An idle connection costs ~6 KB, one reading a body up to
# MAX_BODY_BYTES: 1,024 of those hold 256 MB at worst
FD_SPARE = 64  # descriptors left to the rest of the process: a rebuild's index files, the
# model's, logging, a watcher's inotify, threads' event fds (10-15 are open when it starts)
ACCEPT_BATCH = 16  # connections accepted per pass of the event loop (uvicorn's `backlog`,
# which asyncio uses both for listen() and as the number of accept() calls in a pass). A
# connection is counted against the cap a pass after it is accepted and an evicted one's
# socket is closed a pass after that, so a burst holds up to ACCEPT_PASSES batches beyond
# the cap (measured: the peak under a flood is the open-file limit less FD_SPARE, to 2).
# uvicorn's default (2048) took every descriptor in one pass before any could close; 64
# left a cap of 760 under `ulimit -n 1024` and 16 leaves 904, which halved the wait of a
# client behind a flood of reconnecting slow clients (probes p50 ~300 -> ~150 ms).
ACCEPT_PASSES = 3
LISTEN_BACKLOG = 1024  # the kernel's queue of connections not yet accepted, set again after
# asyncio set it to ACCEPT_BATCH: a short queue fills during any pause of the loop (a few
# ms of garbage collection with hundreds open), then a new client's SYN is dropped and its
# connect() waits 1 s to retry (seen every ~65 connections with a queue of 64)
MIN_CONNECTIONS = 16  # the cap at least (an open-file limit under ~150 leaves less room)
SUMMARY_SECONDS = 60.0  # connections closed by these limits: one log line at most this often
ENV_LIMITS = "SKILL_RETRIEVER_SERVE_LIMITS"  # "connections=50,header_timeout=1,..."


@dataclass(frozen=True)
class ServeLimits:
    """How long a connection may take to send its request, and how many may be open
    (``connections``: ``None`` sets it from the open-file limit, ``connection_cap``)."""

    connections: int | None = None
    header_timeout: float = HEADER_TIMEOUT
    body_chunk_timeout: float = BODY_CHUNK_TIMEOUT
    body_timeout: float = BODY_TIMEOUT

    @classmethod
    def from_env(cls, value: str | None = None) -> ServeLimits:
        """The defaults, with ``$SKILL_RETRIEVER_SERVE_LIMITS`` (or ``value``) applied:
        comma-separated ``NAME=NUMBER``, a name being one of the fields."""
        text = os.environ.get(ENV_LIMITS, "") if value is None else value
        names = [f.name for f in fields(cls)]
        limits = cls()
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, number = (x.strip() for x in item.partition("="))
            try:
                if name not in names:
                    raise ValueError(name)
                parsed = int(number) if name == "connections" else float(number)
                if not 0 < parsed < 1e9:  # no zero, negative, NaN or infinite limit
                    raise ValueError(number)
            except ValueError:
                raise ServeError(
                    f"${ENV_LIMITS}: {item!r} is not NAME=NUMBER (a positive number; "
                    f"NAME one of {', '.join(names)})"
                ) from None
            limits = replace(limits, **{name: parsed})  # type: ignore[arg-type]
        return limits


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-file limit to ``wanted`` if it is lower (never above the hard
    limit, which only root may raise); the soft limit after. A cap needs no more than
    ``wanted`` (MAX_CONNECTIONS and the reserve), so it asks for no more."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def open_fds() -> int:
    """Descriptors open in this process now (FD_SPARE where that cannot be counted)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(folder))
    return FD_SPARE


def connection_cap(fd_limit: int, in_use: int) -> int:
    """Connections allowed open at once: what the descriptors left allow, once the rest of
    the process (FD_SPARE) and a burst of accepts (ACCEPT_PASSES batches) are kept aside.
    Under `ulimit -n 1024` about 900."""
    room = fd_limit - in_use - FD_SPARE - ACCEPT_BATCH * ACCEPT_PASSES
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, room))


_CLOSED = {
    "evicted": "closed to make room: {cap} connections open (the cap), this one the longest "
    "waiting for a whole request",
    "refused": "refused: {cap} connections open (the cap), each with a request in progress",
    "headers": "closed: no whole request headers within {header:g} s",
    "body": "closed: the request body stalled {chunk:g} s or was not whole after {body:g} s",
    "accept": "not accepted: {error} (open-file limit {fds})",
}


class Connections:
    """What the connections of one server share: the limits, the count open, those waiting
    for a whole request (oldest first), and the log of what the limits closed: one line the
    first time each thing happens, then a count at most every SUMMARY_SECONDS."""

    def __init__(self, limits: ServeLimits, cap: int, fd_limit: int) -> None:
        self.limits = limits
        self.cap = cap
        self.fd_limit = fd_limit
        self.open = 0
        self.waiting: dict[Any, None] = {}  # insertion order: the longest waiting first
        self.counts: dict[str, int] = {}
        self.seen: set[str] = set()
        self.error = ""
        self.since = time.monotonic()
        self.summary: Any = None  # the pending summary's asyncio.TimerHandle

    def describe(self, kind: str) -> str:
        return _CLOSED[kind].format(
            cap=self.cap,
            header=self.limits.header_timeout,
            chunk=self.limits.body_chunk_timeout,
            body=self.limits.body_timeout,
            error=self.error,
            fds=self.fd_limit,
        )

    def note(self, kind: str) -> None:
        if kind not in self.seen:
            self.seen.add(kind)
            log.warning(
                "a connection %s (more are counted, one line every %.0f s at most)",
                self.describe(kind),
                SUMMARY_SECONDS,
            )
            return
        if not self.counts:
            import asyncio

            self.since = time.monotonic()
            self.summary = asyncio.get_running_loop().call_later(SUMMARY_SECONDS, self.flush)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def flush(self) -> None:
        if self.summary is not None:
            self.summary.cancel()
        if self.counts:
            parts = [f"{n:,} {self.describe(kind)}" for kind, n in self.counts.items()]
            seconds = time.monotonic() - self.since
            log.warning("connections in the last %.0f s: %s", seconds, "; ".join(parts))
        self.counts = {}
        self.summary = None

    def loop_error(self, loop, context: dict[str, Any]) -> None:
        """The event loop's exception handler: a failed accept() is counted, in one line,
        where asyncio logs a traceback per attempt (and retries up to ACCEPT_BATCH times a
        pass); anything else goes to the default handler."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and "accept" in str(context.get("message", "")):
            self.error = exc.strerror or str(exc)
            self.note("accept")
            return
        loop.default_exception_handler(context)


def limited_protocol(connections: Connections) -> type:
    """uvicorn's h11 HTTP protocol with ``connections``' limits.

    Each connection is in one of three phases, from h11's view of the client: waiting for
    whole headers (``IDLE``: one deadline, HEADER_TIMEOUT after it opened or after its last
    response), sending a body (``SEND_BODY``: BODY_CHUNK_TIMEOUT after each piece, and
    BODY_TIMEOUT after the headers at the latest), or busy (the request is whole: no
    deadline; the application answers in its own time). Past the cap, a new connection
    closes the one that has waited longest in the first two phases (ordinary clients send
    their request as soon as they connect, so one that is slow to is the one to lose); if
    every connection is busy, the new one gets 503. Closing a timed-out or evicted
    connection aborts it: its descriptor is freed even if its peer reads nothing.

    Why here: a protocol sees every connection as it opens and every byte, needs no request
    to have begun, and costs one timer per connection. It is pinned (``http=`` this class),
    so whether httptools is installed changes nothing. Upgrade headers are ignored (plain
    HTTP, as RFC 9110 allows): nothing here speaks WebSocket, and an upgraded connection
    would leave these limits (uvicorn logs two warnings per such request otherwise).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limits = connections.limits
    busy_reply = _json_bytes({"error": "the server is at its connection limit; try again"})
    busy = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"connection: close\r\nretry-after: 1\r\ncontent-length: "
        + str(len(busy_reply)).encode()
        + b"\r\n\r\n"
        + busy_reply
    )

    class LimitedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._phase = "new"
            self._deadline: Any = None  # an asyncio.TimerHandle
            self._body_started = 0.0
            self._gone = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            connections.open += 1
            self._follow()
            if connections.open > connections.cap:
                oldest = next(iter(connections.waiting), None)
                if oldest is None or oldest is self:  # every other one is busy
                    connections.note("refused")
                    self._drop(busy)
                else:
                    connections.note("evicted")
                    oldest._drop()

        def connection_lost(self, exc: Exception | None) -> None:
            self._forget()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow(data=True)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()  # back to waiting for the next request (or a pipelined one)

        def _should_upgrade(self) -> bool:
            return False

        def _should_upgrade_to_ws(self) -> bool:  # the name in older uvicorn
            return False

        def _follow(self, data: bool = False) -> None:
            """Move to the phase h11 says the client is in, with its deadline."""
            if self._gone or self.transport.is_closing():
                return
            state = self.conn.their_state
            now = self.loop.time()
            if state is h11.IDLE:
                if self._phase != "headers":
                    self._phase = "headers"
                    connections.waiting.pop(self, None)
                    connections.waiting[self] = None  # the newest to wait
                    self._expire_at(now + limits.header_timeout, "headers")
            elif state is h11.SEND_BODY:
                if self._phase != "body":
                    self._phase = "body"
                    self._body_started = now
                    connections.waiting.setdefault(self, None)
                    data = True
                if data:
                    last = self._body_started + limits.body_timeout
                    self._expire_at(min(now + limits.body_chunk_timeout, last), "body")
            elif self._phase != "busy":  # the request is whole (or h11 refused it)
                self._phase = "busy"
                connections.waiting.pop(self, None)
                self._cancel()

        def _expire_at(self, when: float, kind: str) -> None:
            self._cancel()
            self._deadline = self.loop.call_at(when, self._expire, kind)

        def _expire(self, kind: str) -> None:
            self._deadline = None
            if not self._gone:
                connections.note(kind)
                self._drop()

        def _cancel(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _forget(self) -> None:
            if not self._gone:
                self._gone = True
                connections.open -= 1
                connections.waiting.pop(self, None)
                self._cancel()

        def _drop(self, reply: bytes = b"") -> None:
            self._forget()
            if reply:  # a few bytes into an empty buffer: close() sends them at once
                self.transport.write(reply)
                self.transport.close()
            else:
                self.transport.abort()

    return LimitedH11Protocol


# -- binding --------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), or ``ServeError``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    return sock


# -- the application ------------------------------------------------------------------------


def _json_bytes(data: Any) -> bytes:
    # errors="replace": a lone surrogate (from a "\ud800" escape in a request) must not turn
    # a reply into a 500
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "replace")


async def _send_json(send, status: int, data: Any, headers: dict[str, str] | None = None):
    body = _json_bytes(data)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _token_matches(authorization: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as a Bearer credential. The
    scheme is case-insensitive (RFC 7235: ``bearer``, ``BEARER``); the token is compared in
    constant time."""
    scheme, _, credential = authorization.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), token)


class GuardMiddleware:
    """Pure ASGI (streaming responses pass through untouched): the Host/Origin check of
    loopback binds, the bearer token, then the body size limit, in that order, so that
    nothing is read from a request that is refused."""

    def __init__(self, app, *, token: str | None, loopback: bool, max_body: int) -> None:
        self.app = app
        self.expected = token.encode() if token else None
        self.loopback = loopback
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.loopback and not _local_request(headers):
            await _send_json(send, 421, {"error": "Host or Origin is not this local server"})
            return
        # /identity answers without a token: a client proves who the server is before it
        # sends the token (``retriever.serve.discovery``); it reveals nothing else
        if (
            self.expected is not None
            and scope.get("path") != IDENTITY_PATH
            and not _token_matches(headers.get(b"authorization", b""), self.expected)
        ):
            await _send_json(
                send,
                401,
                {"error": "a bearer token is required: Authorization: Bearer TOKEN"},
                {"WWW-Authenticate": 'Bearer realm="skill-retriever"'},
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _send_json(send, 413, _too_large(self.max_body))
            return
        body = bytearray()
        while True:  # read (and count) the whole body, chunked uploads included
            message = await receive()
            if message["type"] != "http.request":
                # the client left (or a connection limit closed it) before the body was
                # whole: nothing to answer, and a cut body must not reach a route
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_json(send, 413, _too_large(self.max_body))
                return
            if not message.get("more_body", False):
                break
        if scope.get("path") == MCP_PATH:
            body = bytearray(mend_surrogate_escapes(bytes(body)))
        replay = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replayed():
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)


def _too_large(limit: int) -> dict[str, str]:
    return {"error": f"request body over {limit} bytes"}


def mend_surrogate_escapes(body: bytes) -> bytes:
    """A JSON body with its lone surrogate escapes (``"\\ud800"``) replaced by ``\\ufffd``
    (the same length: Content-Length still holds). The MCP SDK's parser refuses them and
    answers a parse error where /search cleans the query; mended, /mcp answers like the
    stdio server (``retriever.serve.mcp`` mends each line the same way)."""
    if b"\\u" not in body:
        return body
    from retriever.serve.mcp import mend_surrogate_escapes as mend

    return mend(body)


def _authority_host(value: str) -> str | None:
    """The host of ``name``, ``name:port``, ``[v6]`` or ``[v6]:port`` (the port digits),
    else ``None``."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]")
        if port and not (port.startswith(":") and port[1:].isdigit()):
            return None
        return host
    host, colon, port = value.partition(":")
    return None if colon and not port.isdigit() else host


def _local_request(headers: dict[bytes, bytes]) -> bool:
    """Whether Host is a loopback name or address (any port) and Origin, if sent, is
    ``http://`` and loopback too. At least as strict as the MCP SDK's check, which it
    replaces at /mcp (that one allowed only 127.0.0.1, localhost and [::1], so MCP failed
    on a bind to 127.0.0.2): both refuse a missing Host, any non-loopback name, and an
    Origin other than http:// on loopback ("null" included); this one also refuses a port
    that is not digits and an empty Origin, which the SDK let through."""
    host = _authority_host(headers.get(b"host", b"").decode("latin-1"))
    if not host or not is_loopback(host):
        return False
    origin = headers.get(b"origin")
    if origin is None:
        return True
    scheme, sep, rest = origin.decode("latin-1").partition("://")
    origin_host = _authority_host(rest) if sep and scheme.lower() == "http" else None
    return bool(origin_host) and is_loopback(origin_host or "")


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_search(body: bytes) -> tuple[str, int, int | None]:
    """``(query, k, max_chars)`` from a /search body, or ``BadRequest`` saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(400, f"the body is not JSON ({e})") from e
    except RecursionError as e:  # '[' * 1000: a few KB nested past the parser's stack
        raise BadRequest(400, "the body is not JSON we read: nested too deeply") from e
    if not isinstance(data, dict):
        raise BadRequest(400, 'the body must be a JSON object: {"query": "...", "k": 5}')
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest(400, "query must be a non-empty string")
    k = data.get("k", 5)
    try:
        check_k(k, MAX_K)
    except QueryError as e:
        raise BadRequest(400, str(e)) from e
    max_chars = data.get("max_chars")
    if max_chars is not None and (
        not isinstance(max_chars, int)
        or isinstance(max_chars, bool)
        or not 1 <= max_chars <= MAX_RENDER_CHARS
    ):
        raise BadRequest(400, f"max_chars must be a whole number from 1 to {MAX_RENDER_CHARS}")
    return query, k, max_chars


def health(live: LiveRetriever) -> dict[str, Any]:
    from retriever import __version__

    if not live.ready:  # the first index is being built (or could not be): say how far
        progress = live.progress
        return {
            "status": "failed" if live.failed_because is not None else "building",
            "package_version": __version__,
            "index": {"folder": str(live.index_dir), "version": None, "created_at": None},
            "build": progress.snapshot() if progress is not None else None,
            "error": live.not_ready().args[0],
            "watch": live.status(),
        }
    retriever = live.current
    manifest = retriever.manifest
    stale, why = live.freshness()
    current = retriever.index.path
    return {
        "status": "ok",
        "package_version": __version__,
        "index": {
            "folder": str(retriever.index_dir),
            "version": current.name if current is not None else None,
            "created_at": manifest.created_at,
        },
        "model": manifest.model,
        "backend": retriever.embedder.runtime().name,
        "skills": len(retriever.skills),
        "documents": retriever.document_count,
        "problems": len(retriever.problems),
        "stale": stale,
        "stale_because": why,
        "watch": live.status(),
    }


def build_app(
    live: LiveRetriever, *, token: str | None = None, loopback: bool = True, secret: str = ""
):
    """The ASGI application: the plain JSON routes and MCP at /mcp, behind the guard."""
    import anyio
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from retriever.errors import IndexNotReadyError, RetrieverError, UnknownSkillError
    from retriever.present.skill import skill_markdown
    from retriever.serve.hook_routes import hook_routes
    from retriever.serve.mcp import build_server
    from retriever.serve.projects import ProjectRetrievers

    gate = anyio.Semaphore(SEARCH_SLOTS)  # shared by /search and the MCP tool

    def reply(data: Any, status: int = 200) -> Response:
        return Response(_json_bytes(data), status_code=status, media_type="application/json")

    def not_ready(e: IndexNotReadyError) -> Response:
        """503 while the first index is built (with how far, and when to ask again), or
        when it could not be: a client never waits on a request, nor gets half an index."""
        body = {"error": str(e), "code": e.code, "build": e.progress or None}
        headers = {"Retry-After": str(RETRY_AFTER_S)} if e.code == "building" else {}
        response = reply(body, 503)
        response.headers.update(headers)
        return response

    async def search(request: Request) -> Response:
        try:
            query, k, max_chars = parse_search(await request.body())
        except BadRequest as e:
            return reply({"error": str(e)}, e.status)
        try:
            retriever = live.current  # this request's index, whatever a reload does meanwhile
        except IndexNotReadyError as e:
            return not_ready(e)

        def run() -> dict[str, Any]:
            result = retriever.search(query, k=k)
            out = result.to_dict()
            if max_chars is not None:
                out["markdown"] = retriever.render_markdown(result, max_chars=max_chars)
            return out

        try:
            async with gate:  # waiting here holds no thread
                return reply(await run_in_threadpool(run))
        except RetrieverError as e:  # an unusable query (nothing left after cleaning)
            return reply({"error": str(e)}, 400)

    async def get_skill(request: Request) -> Response:
        try:
            retriever = live.current
        except IndexNotReadyError as e:
            return not_ready(e)
        sections = request.query_params.get("sections")
        wanted = [s for s in sections.split(",") if s] if sections else None
        try:
            skill = retriever.skill(request.path_params["id"])
            markdown = skill_markdown(skill, wanted)
        except UnknownSkillError as e:
            return reply({"error": str(e)}, 404)
        except ValueError as e:  # an unknown section
            return reply({"error": str(e)}, 400)
        if "text/markdown" in request.headers.get("accept", ""):
            return Response(markdown.encode("utf-8", "replace"), media_type="text/markdown")
        return reply({"id": skill.id, "skill": skill.to_dict(), "markdown": markdown})

    async def get_health(request: Request) -> Response:
        return reply(await run_in_threadpool(health, live))

    async def get_identity(request: Request) -> Response:
        if not secret:
            return reply({"error": "this server does not announce itself"}, 404)
        return reply(identity(secret, request.query_params.get("nonce", "")))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return reply({"error": exc.detail}, exc.status_code)

    mcp = build_server(live, gate=gate)
    # The guard checks Host and Origin on every route of a loopback bind, /mcp included,
    # for any loopback address (``_local_request``); the SDK's own check knew three names
    # only. Off, so that /mcp answers wherever /search does (it still checks Content-Type).
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    # Stateless with JSON replies: any request can go to any worker, nothing to expire.
    mcp_app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=security,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with mcp.session_manager.run():  # the MCP transport's task group
            yield

    app = Starlette(
        routes=[
            Route("/search", search, methods=["POST"]),
            Route("/skills/{id:path}", get_skill, methods=["GET"]),
            Route("/health", get_health, methods=["GET"]),
            Route(IDENTITY_PATH, get_identity, methods=["GET"]),
            # POST /hooks/{agent}: prompt hooks, with each project's own skill folders
            *hook_routes(ProjectRetrievers(lambda: live.current, live.roots), gate),
            *mcp_app.routes,  # /mcp itself, not a catch-all mount: other paths get our 404
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    return GuardMiddleware(app, token=token, loopback=loopback, max_body=MAX_BODY_BYTES)


# -- running --------------------------------------------------------------------------------


def run(
    live: LiveRetriever,
    sock: socket.socket,
    *,
    token: str | None,
    on_ready=None,
    limits: ServeLimits | None = None,
) -> None:
    """Serve on the bound ``sock`` until SIGTERM or SIGINT (then a clean return).
    ``limits``: default, the constants above with ``$SKILL_RETRIEVER_SERVE_LIMITS``."""
    import asyncio
    import signal

    import uvicorn

    limits = limits or ServeLimits.from_env()
    reserve = FD_SPARE + ACCEPT_BATCH * ACCEPT_PASSES
    fd_limit = raise_fd_limit(MAX_CONNECTIONS + reserve + open_fds())
    connections = Connections(
        limits, limits.connections or connection_cap(fd_limit, open_fds()), fd_limit
    )
    host, port = sock.getsockname()[:2]
    secret = secrets.token_hex(32)  # proves this process to clients of its discovery file
    app = build_app(live, token=token, loopback=is_loopback(host), secret=secret)
    config = uvicorn.Config(
        app,
        http=limited_protocol(connections),
        ws="none",
        backlog=ACCEPT_BATCH,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # bounds the wait for a client holding a stream open
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            for listening in sockets or []:  # Linux and BSDs take a new backlog this way
                with contextlib.suppress(OSError):
                    listening.listen(LISTEN_BACKLOG)

    server = Server(config)

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(connections.loop_error)
        try:
            await server.serve(sockets=[sock])
        finally:
            connections.flush()  # the counts since the last line, if any

    def stop(*_: object) -> None:
        server.should_exit = True

    assert live.index_dir is not None
    with announced(live.index_dir, host, port, token, secret) as url:
        # Ours until uvicorn installs its own (and again after): a signal in between asks
        # the server to stop rather than being lost (a no-op handler there once left a
        # server that was told to stop running) or killing the process (the discovery file
        # would stay). uvicorn re-raises the signal that stopped it once it is done, with
        # these handlers, which makes that a clean exit.
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        if on_ready is not None:  # only now: a client told "ready" may send SIGTERM at once
            on_ready(url)
        try:
            asyncio.run(serve())
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            sock.close()
