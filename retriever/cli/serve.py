"""`retrieve serve`: the index over HTTP (JSON routes and MCP); shared by `mcp --http`."""

from __future__ import annotations

import argparse

from retriever.cli.options import (
    UsageError,
    common_options,
    open_retriever,
    port_number,
    require_extra,
    serving_options,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the index over HTTP: POST /search, GET /skills/ID, GET /health, MCP at /mcp",
    )
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port_number, default=None, help="port (default 8765; 0 picks a free one)"
    )
    serving_options(p)
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from retriever.serve.http import DEFAULT_HOST, DEFAULT_PORT

    host = args.host or DEFAULT_HOST
    return serve_http(args, host, DEFAULT_PORT if args.port is None else args.port)


def serve_http(args: argparse.Namespace, host: str, port: int) -> int:
    """`retrieve serve` and `retrieve mcp --http`: the same server."""
    import os

    require_extra("serve", "mcp", "uvicorn", "starlette", *(["watchfiles"] if args.watch else []))
    from retriever.serve.http import ENV_TOKEN, bind, is_loopback, run

    check_watch(args)
    token = args.token or os.environ.get(ENV_TOKEN) or None
    if not is_loopback(host) and not token:
        raise UsageError(
            f"binding {host} (not loopback) needs a token: --token TOKEN or ${ENV_TOKEN}"
        )
    sock = bind(host, port)  # before the model loads: a busy port fails at once
    try:
        live, watcher = live_retriever(args)
    except BaseException:
        sock.close()
        raise

    def ready(url: str) -> None:
        # a wildcard bind answers on every interface: say so, not only the local address
        wildcard = ", every interface" if host in ("0.0.0.0", "::", "") else ""
        where = "" if is_loopback(host) else f" (listening on {host}{wildcard})"
        print(
            f"serving {len(live.current.skills)} skills at {url}{where}: POST /search, "
            f"GET /skills/ID, GET /health, MCP at {url}/mcp",
            flush=True,
        )

    try:
        run(live, sock, token=token, on_ready=ready)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


def live_retriever(args: argparse.Namespace):
    """The index opened (model loaded, warmed up), held for swapping, watched if asked."""
    from retriever.paths import named_roots
    from retriever.serve.live import LiveRetriever, SkillWatcher

    retriever = open_retriever(args).warm()  # model and index load once, before the first request
    # the roots as named: a symlinked root that a deploy switches is followed
    live = LiveRetriever(retriever, named_roots(args.skills))
    watcher = SkillWatcher(live).start() if args.watch else None
    return live, watcher


def check_watch(args: argparse.Namespace) -> None:
    if args.watch and args.no_rebuild:
        raise UsageError("--watch rebuilds the index when files change: drop --no-rebuild")


def host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    try:
        number = port_number(port)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"--http {value}: {e}") from None
    return host.strip("[]") or "127.0.0.1", number
