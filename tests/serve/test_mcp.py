"""The MCP server end to end: a real SDK client session starts it as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

mcp = pytest.importorskip("mcp", reason="the mcp extra is not installed")


def run_session(index_dir: str, script):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def main():
        # the whole environment: the SDK's default passes only a few variables, and
        # without SKILL_RETRIEVER_HOME the server wrote its ONNX export into the clone
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "retriever.cli", "-q", "mcp", "--index", index_dir],
            env=dict(os.environ),
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await script(session)

    return asyncio.run(asyncio.wait_for(main(), timeout=300))


def test_tools_listed_called_and_bad_calls_are_jsonrpc_errors(bundled_index, bundled):
    from mcp.shared.exceptions import MCPError

    async def script(session):
        out = {}
        tools = (await session.list_tools()).tools
        out["tools"] = {t.name: t for t in tools}
        res = await session.call_tool(
            "search_skills", {"query": "my webhook handler processes the same event twice", "k": 3}
        )
        out["search"] = json.loads(res.content[0].text)
        out["search_error"] = res.is_error
        res = await session.call_tool(
            "get_skill", {"id": "webhooks", "sections": ["description", "patterns"]}
        )
        out["skill"] = res.content[0].text
        out["errors"] = []
        for name, arguments in (
            ("get_skill", {"id": "no-such-skill"}),
            ("search_skills", {"query": "   "}),
            ("get_skill", {"id": "webhooks", "sections": ["nope"]}),
        ):
            try:
                await session.call_tool(name, arguments)
                out["errors"].append(None)
            except MCPError as e:
                out["errors"].append((e.code, e.error.message))
        res = await session.call_tool("search_skills", {"query": "stale cache", "k": 1})
        out["after"] = json.loads(res.content[0].text)
        return out

    out = run_session(str(bundled_index), script)
    assert set(out["tools"]) == {"search_skills", "get_skill"}
    assert "task" in out["tools"]["search_skills"].description
    assert set(out["tools"]["search_skills"].input_schema["properties"]) == {"query", "k"}
    assert not out["search_error"]
    assert out["search"]["skills"][0]["id"] == "webhooks"
    assert out["search"]["skills"][0]["patterns"] and "why" in out["search"]["skills"][0]
    assert out["skill"].startswith("# Webhooks (`webhooks`)") and "## Patterns" in out["skill"]
    assert "## Handoffs" not in out["skill"]  # only the sections asked for
    codes = [e[0] if e else None for e in out["errors"]]
    assert codes == [-32602, -32602, -32602]  # JSON-RPC invalid params
    assert "unknown skill id 'no-such-skill'" in out["errors"][0][1]
    assert out["after"]["skills"]  # the server is still alive
