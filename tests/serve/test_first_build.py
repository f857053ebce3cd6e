"""Servers answer before their first index is built: MCP's initialize and tools/list at once,
a search told how far the build is (never a half-built index), /health saying so too."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time

import pytest
from conftest import BUNDLED, wait_for

pytest.importorskip("mcp", reason="the mcp extra is not installed")

QUERY = "my webhook handler processes the same event twice"


# A few of the bundled skills: a build of some seconds, not a minute of the default run.
SKILLS = ("webhooks", "message-queues", "caching", "rate-limiting", "api-design")


@pytest.fixture
def fresh(tmp_path, own_home, monkeypatch):
    """A collection never indexed in a home of its own, with the embedding cache off: the
    first start must embed every text."""
    skills = tmp_path / "skills"
    for name in SKILLS:
        shutil.copytree(BUNDLED / "backend" / name, skills / name)
    monkeypatch.setenv("SKILL_RETRIEVER_CACHE_MB", "0")
    return skills


class Stdio:
    """`retrieve mcp` over stdio, spoken to in raw JSON-RPC lines as a client writes them."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "retriever.cli", "mcp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.next_id = 1

    def ask(self, method: str, params: dict | None = None, timeout: float = 120) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        self.next_id += 1
        assert self.selector.select(timeout), f"no reply to {method} within {timeout} s"
        return json.loads(self.process.stdout.readline())

    def tell(self, method: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.process.stdin.flush()

    def close(self) -> str:
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        assert self.process.wait(60) == 0
        return self.process.stderr.read()


def test_mcp_answers_initialize_before_its_first_build(fresh, own_home):
    server = Stdio("--skills", str(fresh))
    try:
        init = server.ask(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        )
        # answered while nothing is built yet: no index folder has a current version
        assert init["result"]["serverInfo"]["name"] == "skill-retriever"
        assert not list(own_home.glob("skills-*/current"))
        server.tell("notifications/initialized")
        tools = server.ask("tools/list")["result"]["tools"]
        assert {t["name"] for t in tools} >= {"search_skills", "get_skill"}
        told = []
        while True:  # a search while building is a tool error saying how far, then the answer
            reply = server.ask(
                "tools/call", {"name": "search_skills", "arguments": {"query": QUERY, "k": 2}}
            )["result"]
            if not reply.get("isError"):
                break
            told.append(reply["content"][0]["text"])
            time.sleep(0.5)
        # (on a fast machine the build may be done before the first search: then none)
        assert all("the skill index is being" in t and "ask again" in t for t in told)
        assert json.loads(reply["content"][0]["text"])["skills"][0]["id"] == "webhooks"
    finally:
        stderr = server.close()
    assert "to embed: " in stderr and f"index ready: {len(SKILLS)} skills" in stderr


def test_serve_says_building_on_health_and_503_on_search(fresh, own_home):
    from helpers import Server, request

    server = Server("--skills", str(fresh))
    try:
        status, health = request(f"{server.url}/health", token=None)
        assert status == 200 and health["status"] in ("building", "ok")
        if health["status"] == "building":
            assert health["index"]["folder"].startswith(str(own_home))
            status, body = request(f"{server.url}/search", {"query": QUERY}, token=None)
            assert status == 503 and body["code"] == "building"
            assert "being" in body["error"]
        wait_for(
            lambda: request(f"{server.url}/health", token=None)[1]["status"] == "ok",
            "the first build to finish",
            timeout=300,
        )
        status, body = request(f"{server.url}/search", {"query": QUERY, "k": 2}, token=None)
        assert status == 200 and body["skills"][0]["id"] == "webhooks"
    finally:
        assert server.stop() == 0


def test_a_first_build_that_fails_is_told_to_every_request(tmp_path, own_home):
    """No skill at all under the root: the server stays up and says why, on every call."""
    empty = tmp_path / "empty"
    (empty / "nothing").mkdir(parents=True)
    server = Stdio("--skills", str(empty))
    try:
        server.ask(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        )
        server.tell("notifications/initialized")

        def failed():
            reply = server.ask(
                "tools/call", {"name": "search_skills", "arguments": {"query": QUERY}}
            )["result"]
            text = reply["content"][0]["text"]
            return reply.get("isError") and "could not be opened" in text and text

        text = wait_for(failed, "the failure to be told", timeout=120)
        assert "no skills found under" in text
    finally:
        stderr = server.close()
    assert "the skill index could not be opened" in stderr
