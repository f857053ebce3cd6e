"""`retrieve serve`: the index over HTTP (JSON routes and MCP); shared by `mcp --http`."""

from __future__ import annotations

import argparse

from retriever.cli.options import (
    UsageError,
    common_options,
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
    # the server's libraries before a first build starts on its thread: both are Python
    # work under one interpreter lock, and the first answer waits on these imports
    import mcp.server.mcpserver  # noqa: F401
    import uvicorn  # noqa: F401

    try:
        live, watchers = live_retriever(args)
    except BaseException:
        sock.close()
        raise

    def ready(url: str) -> None:
        # a wildcard bind answers on every interface: say so, not only the local address
        wildcard = ", every interface" if host in ("0.0.0.0", "::", "") else ""
        where = "" if is_loopback(host) else f" (listening on {host}{wildcard})"
        what = f"{len(live.current.skills)} skills" if live.ready else "skills"
        building = "" if live.ready else " (building the index first: GET /health says how far)"
        print(
            f"serving {what} at {url}{where}: POST /search, GET /skills/ID, GET /health, "
            f"MCP at {url}/mcp{building}",
            flush=True,
        )

    try:
        run(live, sock, token=token, on_ready=ready)
    finally:
        for watcher in watchers:
            watcher.stop()
    return 0


def live_retriever(args: argparse.Namespace):
    """The retriever to serve, held for swapping, watched if asked; and the watchers
    started (a list that the first index's thread may still add to).

    An index that is up to date is opened now (the model loaded and warmed up: about a
    second). One that must be built first is built on a thread while the server already
    answers (MCP's initialize and tools/list, /health): a first build of a large collection
    takes minutes, longer than clients wait for a server to start; a search meanwhile is
    told how far the build is."""
    from retriever.api import SkillRetriever
    from retriever.index.embed import make_embedder
    from retriever.index.opening import index_state
    from retriever.paths import index_folder, named_roots
    from retriever.serve.live import LiveRetriever, SkillWatcher

    if args.watch:
        import watchfiles  # noqa: F401 - here, on the main thread: the watcher may start elsewhere
    # the roots as named: a symlinked root that a deploy switches is followed
    named = named_roots(args.skills)
    roots = [r.resolve() for r in named]
    embedder = make_embedder(args.model, args.backend)  # resolves the model; loads nothing
    folder = index_folder(roots, embedder.model_id, args.index)
    watchers: list[SkillWatcher] = []

    def open_first(progress) -> SkillRetriever:
        retriever = SkillRetriever.open(
            roots,
            index_dir=args.index,
            embedder=embedder,
            rebuild="never" if args.no_rebuild else "auto",
            verify=args.verify,
            progress=progress,
        )
        return retriever.warm()  # model and index load once, before the first request

    def watch(live: LiveRetriever) -> None:
        if args.watch:
            watchers.append(SkillWatcher(live).start())

    if args.no_rebuild or index_state(folder, roots, embedder, verify=args.verify).fresh:
        live = LiveRetriever(open_first(True), named)
        watch(live)
    else:
        live = LiveRetriever.opening(open_first, named, index_dir=folder, then=watch)
    return live, watchers


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
