"""`retrieve mcp`: the MCP server over stdio, or over HTTP with `--http`."""

from __future__ import annotations

import argparse

from retriever.cli.options import (
    UsageError,
    common_options,
    require_extra,
    serving_options,
)
from retriever.cli.serve import check_watch, host_port, live_retriever, serve_http


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve search_skills, get_skill and skill:// resources over MCP (stdio, or --http)",
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve MCP over streamable HTTP at http://HOST:PORT/mcp instead of stdio "
        "(with the JSON routes of `retrieve serve`)",
    )
    serving_options(p)
    common_options(p)


def run(args: argparse.Namespace) -> int:
    if args.http:
        host, port = host_port(args.http)
        return serve_http(args, host, port)
    if args.token:
        raise UsageError("--token goes with --http (stdio needs no token)")
    check_watch(args)
    require_extra("mcp", "mcp")
    if args.watch:
        require_extra("serve", "watchfiles")
    import mcp.server.mcpserver  # noqa: F401 - see below

    from retriever.serve.mcp import serve

    # The SDK is imported before a first build starts on its thread (``live_retriever``):
    # both are Python work under one interpreter lock, and initialize waits on the import.
    live, watchers = live_retriever(args)
    try:
        serve(live)
    finally:
        for watcher in watchers:
            watcher.stop()
    return 0
