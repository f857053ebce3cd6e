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

A running server leaves a discovery file under ``index_home()/servers`` (never in the index
folder, which may be read-only) so that ``retrieve hook`` and ``retrieve doctor`` find it
for the same index; it is removed on exit. Only the standard library is imported at module
level: the hook reads discovery files without loading the web stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import RetrieverError

if TYPE_CHECKING:
    from retriever.watch import LiveRetriever

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ENV_TOKEN = "SKILL_RETRIEVER_TOKEN"
MAX_BODY_BYTES = 256 * 1024  # a query is cut to 2,000 words (~15 KB) anyway
MAX_K = 50
MAX_RENDER_CHARS = 100_000
# Searches run at once; the rest wait their turn. Each one's forward pass already uses the
# cores (onnxruntime's threads), so more at a time only share them worse: with 16 clients
# on 2 cores (benchmarks/serve_load.py, 6 alternating pairs) 2 at a time gave p99 225-326
# ms against 328-389 ms with no limit, for 0-15% less throughput at saturation.
SEARCH_SLOTS = max(1, min(4, os.cpu_count() or 1))
LOOPBACK_NAMES = ("localhost",)


class ServeError(RetrieverError):
    """The server cannot start as asked (address in use, a token missing); one line."""


# -- finding a running server -------------------------------------------------------------


@dataclass(frozen=True)
class RunningServer:
    """What a discovery file says about a ``retrieve serve`` process."""

    url: str
    pid: int
    index: str
    token: str | None
    path: Path
    data: dict[str, Any] = field(default_factory=dict, repr=False)  # the file as read


def discovery_file(index_dir: Path) -> Path:
    """Where the server of ``index_dir`` announces itself (one file per index folder)."""
    from retriever.paths import index_home

    key = hashlib.sha256(str(Path(index_dir).resolve()).encode(errors="surrogateescape"))
    return index_home() / "servers" / f"{key.hexdigest()[:16]}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def find_server(index_dir: Path) -> RunningServer | None:
    """The running server of ``index_dir``, or ``None`` (no file, unreadable, or its process
    is gone: a server killed with SIGKILL cannot remove its file)."""
    path = discovery_file(index_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        server = RunningServer(
            url=str(data["url"]),
            pid=int(data["pid"]),
            index=str(data["index"]),
            token=data.get("token") or None,
            path=path,
            data=data,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if server.index != str(Path(index_dir).resolve()) or not _alive(server.pid):
        return None
    return server


def _connect_host(host: str) -> str:
    """The address a local client uses to reach a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def announced(index_dir: Path, host: str, port: int, token: str | None) -> Iterator[str]:
    """Write the discovery file while the server runs (mode 0600: it may hold the token);
    remove it after, unless another server has replaced it meanwhile."""
    path = discovery_file(index_dir)
    url = f"http://{_connect_host(host)}:{port}"
    data = {
        "url": url,
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "index": str(Path(index_dir).resolve()),
        "token": token,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # A second server of the same index takes the file over; when it stops while the first
    # still runs, it hands the file back, so the hook keeps finding a server.
    earlier = find_server(index_dir)
    written = False
    try:
        _write_discovery(path, data)
        written = True
    except OSError as e:  # a read-only home: the server still serves, the hook won't find it
        log.warning("cannot write %s (%s); `retrieve hook` will not find this server", path, e)
    try:
        yield url
    finally:
        if written:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                    if earlier is not None and earlier.pid != os.getpid() and _alive(earlier.pid):
                        _write_discovery(path, earlier.data)
                    else:
                        path.unlink()


def _write_discovery(path: Path, data: dict[str, Any]) -> None:
    """Replace the discovery file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


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
        if self.expected is not None and not _token_matches(
            headers.get(b"authorization", b""), self.expected
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
        messages = []
        while True:  # read (and count) the whole body, chunked uploads included
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_json(send, 413, _too_large(self.max_body))
                return
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": bytes(body), "more_body": False}]
        if messages and messages[-1]["type"] != "http.request":
            replay.append(messages[-1])

        async def replayed():
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)


def _too_large(limit: int) -> dict[str, str]:
    return {"error": f"request body over {limit} bytes"}


def _local_request(headers: dict[bytes, bytes]) -> bool:
    host = headers.get(b"host", b"").decode("latin-1")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not is_loopback(name):
        return False
    origin = headers.get(b"origin")
    if origin is None:
        return True
    rest = origin.decode("latin-1").split("://", 1)[-1]
    return is_loopback(rest.rsplit(":", 1)[0] if not rest.endswith("]") else rest)


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
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise BadRequest(400, f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
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
            "created_at": manifest.get("created_at"),
        },
        "model": manifest.get("model"),
        "backend": _runtime(retriever.embedder),
        "skills": len(retriever.skills),
        "documents": retriever.document_count,
        "problems": len(retriever.problems),
        "stale": stale,
        "stale_because": why,
        "watch": live.status(),
    }


def _runtime(embedder) -> str:
    from retriever.onnx_backend import OnnxEmbedder

    inner = getattr(embedder, "_delegate", None) or embedder  # an export made on first use
    return "onnx" if isinstance(inner, OnnxEmbedder) else "sentence-transformers"


def build_app(live: LiveRetriever, *, token: str | None = None, loopback: bool = True):
    """The ASGI application: the plain JSON routes and MCP at /mcp, behind the guard."""
    import anyio
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from retriever.errors import RetrieverError, UnknownSkillError
    from retriever.mcp_server import build_server
    from retriever.render import render_skill

    gate = anyio.Semaphore(SEARCH_SLOTS)  # shared by /search and the MCP tool

    def reply(data: Any, status: int = 200) -> Response:
        return Response(_json_bytes(data), status_code=status, media_type="application/json")

    async def search(request: Request) -> Response:
        try:
            query, k, max_chars = parse_search(await request.body())
        except BadRequest as e:
            return reply({"error": str(e)}, e.status)
        retriever = live.current  # this request's index, whatever a reload does meanwhile

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
        retriever = live.current
        sections = request.query_params.get("sections")
        wanted = [s for s in sections.split(",") if s] if sections else None
        try:
            skill = retriever.skill(request.path_params["id"])
            markdown = render_skill(skill, wanted)
        except UnknownSkillError as e:
            return reply({"error": str(e)}, 404)
        except ValueError as e:  # an unknown section
            return reply({"error": str(e)}, 400)
        if "text/markdown" in request.headers.get("accept", ""):
            return Response(markdown.encode("utf-8", "replace"), media_type="text/markdown")
        return reply({"id": skill.id, "skill": skill.to_dict(), "markdown": markdown})

    async def get_health(request: Request) -> Response:
        return reply(await run_in_threadpool(health, live))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return reply({"error": exc.detail}, exc.status_code)

    mcp = build_server(live, gate=gate)
    security = (
        TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        if loopback
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    # Stateless with JSON replies: any request can go to any worker, nothing to expire.
    mcp_app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
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
            *mcp_app.routes,  # /mcp itself, not a catch-all mount: other paths get our 404
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    return GuardMiddleware(app, token=token, loopback=loopback, max_body=MAX_BODY_BYTES)


# -- running --------------------------------------------------------------------------------


def run(live: LiveRetriever, sock: socket.socket, *, token: str | None, on_ready=None) -> None:
    """Serve on the bound ``sock`` until SIGTERM or SIGINT (then a clean return)."""
    import asyncio
    import signal

    import uvicorn

    host, port = sock.getsockname()[:2]
    app = build_app(live, token=token, loopback=is_loopback(host))
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # bounds the wait for a client holding a stream open
    )
    server = uvicorn.Server(config)

    def stop(*_: object) -> None:
        server.should_exit = True

    with announced(live.current.index_dir, host, port, token) as url:
        # Ours until uvicorn installs its own (and again after): a signal in between asks
        # the server to stop rather than being lost (a no-op handler there once left a
        # server that was told to stop running) or killing the process (the discovery file
        # would stay). uvicorn re-raises the signal that stopped it once it is done, with
        # these handlers, which makes that a clean exit.
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        if on_ready is not None:  # only now: a client told "ready" may send SIGTERM at once
            on_ready(url)
        try:
            asyncio.run(server.serve(sockets=[sock]))
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            sock.close()
