"""`retrieve serve` end to end: a real server process on a loopback port, real HTTP, and the
official MCP client over streamable HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import BUNDLED
from helpers import QUERY, TOKEN, Server, mcp_session, request

pytest.importorskip("mcp", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")


@pytest.fixture(scope="module")
def server(bundled_index, bundled):
    s = Server(
        "--skills", str(BUNDLED), "--index", str(bundled_index), "--no-rebuild", "--token", TOKEN
    )
    yield s
    assert s.stop() == 0


def test_search_answers_with_the_search_json_contract(server, bundled):
    status, body = request(f"{server.url}/search", {"query": QUERY, "k": 3})
    assert status == 200
    assert body == json.loads(json.dumps(bundled.search(QUERY, k=3).to_dict()))
    status, body = request(f"{server.url}/search", {"query": QUERY, "k": 3, "max_chars": 1500})
    assert body["markdown"] == bundled.render_markdown(bundled.search(QUERY, k=3), 1500)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"query": QUERY, "k": 0}, "k must be a whole number from 1 to 50"),
        ({"query": QUERY, "k": 51}, "k must be a whole number from 1 to 50"),
        ({"query": QUERY, "k": "3"}, "k must be a whole number"),
        ({"query": "   "}, "query must be a non-empty string"),
        ({"k": 3}, "query must be a non-empty string"),
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),  # 4 KB past the parser's stack
        (b'{"query": ' + b"[" * 2000 + b"]" * 2000 + b"}", "nested too deeply"),
    ],
)
def test_bad_searches_are_400_with_a_json_error(server, payload, message):
    status, body = request(f"{server.url}/search", payload)
    assert status == 400 and message in body["error"]


def test_a_huge_body_is_413_and_the_server_keeps_serving(server):
    status, body = request(f"{server.url}/search", {"query": "x " * 200_000})
    assert status == 413 and "request body over" in body["error"]
    assert request(f"{server.url}/search", {"query": QUERY})[0] == 200


def test_the_token_is_required_on_every_route(server):
    for path, data in (
        ("/search", {"query": QUERY}),
        ("/health", None),
        ("/skills/webhooks", None),
    ):
        assert request(server.url + path, data, token=None)[0] == 401
        assert request(server.url + path, data, token="wrong")[0] == 401
    status, body = request(f"{server.url}/health", token=None)
    assert "bearer token" in body["error"]
    # the scheme is case-insensitive (RFC 7235); the token itself is not
    for scheme in ("bearer", "BEARER"):
        header = {"Authorization": f"{scheme} {TOKEN}"}
        assert request(f"{server.url}/health", token=None, headers=header)[0] == 200
    header = {"Authorization": f"Bearer {TOKEN.upper()}x"}
    assert request(f"{server.url}/health", token=None, headers=header)[0] == 401


def test_skills_by_id_as_json_and_markdown(server, bundled):
    status, body = request(f"{server.url}/skills/webhooks")
    assert status == 200 and body["skill"] == json.loads(
        json.dumps(bundled.skill("webhooks").to_dict())
    )
    assert body["markdown"].startswith("# Webhooks (`webhooks`)")
    status, text = request(
        f"{server.url}/skills/webhooks?sections=triggers", headers={"Accept": "text/markdown"}
    )
    assert status == 200 and "## Triggers" in text and "## Patterns" not in text
    status, body = request(f"{server.url}/skills/webhook")
    assert status == 404 and "did you mean webhooks" in body["error"]
    assert request(f"{server.url}/skills/webhooks?sections=nope")[0] == 400


def test_health_says_what_is_served(server, bundled):
    status, body = request(f"{server.url}/health")
    assert status == 200
    assert body["skills"] == len(bundled.skills) and body["documents"] == bundled.document_count
    assert body["index"]["folder"] == str(bundled.index_dir)
    assert body["index"]["version"] == bundled.index.path.name
    assert body["model"] == bundled.manifest.model and body["backend"] == "onnx"
    assert body["stale"] is False and body["stale_because"] is None
    assert body["watch"]["enabled"] is False


def test_unknown_routes_methods_and_foreign_hosts_get_json_errors(server):
    assert request(f"{server.url}/nothing-here")[0] == 404
    assert request(f"{server.url}/search")[0] == 405  # GET
    status, body = request(f"{server.url}/health", headers={"Host": "evil.example"})
    assert status == 421 and "error" in body  # DNS rebinding
    status, _ = request(f"{server.url}/health", headers={"Origin": "http://evil.example"})
    assert status == 421


def test_the_hook_asks_the_running_server(server, bundled_index, tmp_path):
    from helpers import EVENT, run_hook

    from retriever.serve.discovery import find_server

    args = ("--index", str(bundled_index), "--skills", str(BUNDLED))
    # a model that cannot load: only an answer from the server gets through
    no_model = {"SKILL_RETRIEVER_MODEL": str(tmp_path / "no-such-model")}
    via_server = run_hook(EVENT, *args, env=no_model)
    assert via_server.returncode == 0 and via_server.stderr == b""
    context = json.loads(via_server.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "Webhooks" in context
    announced = find_server(bundled_index).path
    saved = announced.read_bytes()
    announced.unlink()  # no server found: the hook searches in-process
    try:
        assert b"no-such-model" in run_hook(EVENT, *args, env=no_model).stderr
        here = run_hook(EVENT, *args)
    finally:
        announced.write_bytes(saved)
    assert here.stdout == via_server.stdout  # the same context either way


def test_mcp_over_http_tools_annotations_and_structured_output(server, bundled):
    from mcp.shared.exceptions import MCPError

    async def script(c):
        out = {"tools": {t.name: t for t in (await c.list_tools()).tools}}
        out["search"] = await c.call_tool("search_skills", {"query": QUERY, "k": 3})
        out["skill"] = await c.call_tool("get_skill", {"id": "webhooks", "sections": ["triggers"]})
        out["errors"] = []
        for name, arguments in (
            ("search_skills", {"query": QUERY, "k": 99}),
            ("search_skills", {"query": "   "}),
            ("get_skill", {"id": "no-such-skill"}),
        ):
            try:
                await c.call_tool(name, arguments)
                out["errors"].append(None)
            except MCPError as e:
                out["errors"].append(e.code)
        return out

    out = mcp_session(server.url, script)
    tools = out["tools"]
    assert set(tools) == {"search_skills", "get_skill"}
    for t in tools.values():
        assert t.annotations.read_only_hint is True and t.annotations.destructive_hint is False
    schema = tools["search_skills"].output_schema
    assert schema["type"] == "object" and schema.get("additionalProperties") is True
    assert {"query", "skills", "handoffs"} <= set(schema["properties"])
    assert tools["get_skill"].output_schema is None  # Markdown only
    search = out["search"]
    assert search.structured_content == json.loads(search.content[0].text)
    assert search.structured_content["skills"][0]["id"] == "webhooks"
    assert search.structured_content["skills"][0]["id"] == bundled.search(QUERY, k=3).skill_ids[0]
    assert out["skill"].content[0].text.startswith("# Webhooks (`webhooks`)")
    assert out["skill"].structured_content is None
    assert out["errors"] == [-32602, -32602, -32602]  # JSON-RPC invalid params


def test_mcp_over_http_lists_and_reads_skills_as_resources(server, bundled):
    from mcp.shared.exceptions import MCPError

    async def script(c):
        listed = (await c.list_resources()).resources
        templates = (await c.list_resource_templates()).resource_templates
        read = (await c.read_resource("skill://webhooks")).contents[0]
        try:
            await c.read_resource("skill://no-such-skill")
            unknown = None
        except MCPError as e:
            unknown = e.code
        return listed, templates, read, unknown

    listed, templates, read, unknown = mcp_session(server.url, script)
    assert {r.uri for r in listed} == {f"skill://{s.id}" for s in bundled.skills}
    assert all(r.mime_type == "text/markdown" and r.description for r in listed)
    assert [t.uri_template for t in templates] == ["skill://{id}"]
    assert read.mime_type == "text/markdown" and read.text.startswith("# Webhooks (`webhooks`)")
    assert unknown == -32602


def test_mcp_over_http_without_the_token_is_refused(server):
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    status, body = request(f"{server.url}/mcp", listing, token=None, headers=accept)
    assert status == 401 and "bearer token" in body["error"]
    assert request(f"{server.url}/mcp", listing, headers=accept)[0] == 200
    with pytest.raises(Exception):  # noqa: B017 - the SDK's error group, whatever its shape
        mcp_session(server.url, lambda c: c.list_tools(), token="wrong")


def test_binding_beyond_loopback_needs_a_token(bundled_index):
    p = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "serve", "--host", "0.0.0.0", "--port", "0",
         "--index", str(bundled_index)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SKILL_RETRIEVER_TOKEN"},
        timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (
        "retrieve: error: binding 0.0.0.0 (not loopback) needs a token: --token TOKEN or "
        "$SKILL_RETRIEVER_TOKEN"
    )


def test_a_busy_port_is_one_line_and_exit_2(server, bundled_index):
    port = server.url.rsplit(":", 1)[1]
    p = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "mcp", "--http", f"127.0.0.1:{port}",
         "--index", str(bundled_index)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"retrieve: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(p.stderr.strip().splitlines()) == 1


def test_sigterm_stops_cleanly_and_removes_the_discovery_file(own_home, bundled_index, bundled):
    from retriever.serve.discovery import find_server, servers_folder

    # own_home: a home of its own (the module's server announces itself too)
    s = Server("--index", str(bundled_index), "--skills", str(BUNDLED), "--no-rebuild")
    found = find_server(bundled_index)
    assert found is not None and found.url == s.url and found.token is None
    assert (found.path.stat().st_mode & 0o777) == 0o600
    assert (servers_folder(bundled_index).stat().st_mode & 0o777) == 0o700
    assert request(f"{s.url}/health", token=None)[0] == 200  # no token asked for
    started = time.monotonic()
    assert s.stop() == 0 and time.monotonic() - started < 10
    assert not found.path.exists()
    assert s.process.stderr.read() == ""


def test_servers_of_one_index_stay_findable_whichever_stops_first(own_home, bundled_index, bundled):
    """Three servers of one index: the newest is found; stopping the middle one and then
    the newest leaves the oldest findable (each announces itself in a file of its own; the
    defect was a single file handed back one step only)."""
    from retriever.serve.discovery import find_server

    args = ("--index", str(bundled_index), "--skills", str(BUNDLED), "--no-rebuild")
    first = Server(*args)
    try:
        time.sleep(1.1)  # started_at has whole seconds: the newest is told by it
        second = Server(*args)
        time.sleep(1.1)
        third = Server(*args)
        assert find_server(bundled_index).pid == third.process.pid
        assert second.stop() == 0
        assert find_server(bundled_index).pid == third.process.pid
        assert third.stop() == 0
        again = find_server(bundled_index)
        assert again is not None and again.pid == first.process.pid and again.url == first.url
    finally:
        assert first.stop() == 0
    assert find_server(bundled_index) is None


def test_doctor_sees_the_running_server(server, bundled_index):
    p = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "doctor", "--skills", str(BUNDLED),
         "--index", str(bundled_index), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    found = json.loads(p.stdout)["server"]
    assert found["url"] == server.url and found["answering"] is True  # with the token
    assert found["pid"] == server.process.pid and found["stale"] is False
