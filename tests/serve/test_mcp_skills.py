"""The MCP Skills extension (SEP-2640) on a real `retrieve mcp` over stdio, spoken to in raw
JSON-RPC as a client of the extension would: the capability on a 2025-11-25 initialize,
skills/list and skills/get, and every file's digest checked against what resources/read
returns."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import BUNDLED, wait_for, write

from retriever.serve import mcp_skills


class Stdio:
    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "retriever.cli", "-q", "mcp", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ},
        )  # fmt: skip
        self.n = 0

    def call(self, method: str, params: dict | None = None) -> dict:
        self.n += 1
        message = {"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or {}}
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(json.dumps(message) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()
        self.p.wait(20)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-skills")
    skill = root / "pdf-forms"
    write(
        skill / "SKILL.md",
        """
        ---
        name: pdf-forms
        description: Fill and flatten PDF forms
        license: Apache-2.0
        metadata:
          version: "2.1"
        ---
        # PDF forms

        See references/FIELDS.md, then run scripts/fill.py.
        """,
    )
    write(skill / "references" / "FIELDS.md", "# Fields\n\nText, check boxes, radio groups.\n")
    write(skill / "scripts" / "fill.py", "print('fill')\n")
    write(skill / ".secret", "not served\n")
    (skill / "outside.md").symlink_to(root.parent)  # a link out of the skill: not served
    return root


@pytest.fixture(scope="module")
def session(collection, tmp_path_factory):
    s = Stdio("--skills", str(collection), "--skills", str(BUNDLED))
    init = s.call(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {},
         "clientInfo": {"name": "t", "version": "0"}},
    )  # fmt: skip
    s.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    s.init = init  # type: ignore[attr-defined]
    # the server answers at once and builds its first index on a thread: until then every
    # skills/ call is an error that says how far the build is
    first = s.call("skills/list")
    if "error" in first:
        assert first["error"]["code"] == -32603 and "ask again" in first["error"]["message"]
        wait_for(lambda: "result" in s.call("skills/list"), "the first index", timeout=300)
    yield s
    s.close()


def test_the_extension_is_declared_on_a_legacy_initialize(session):
    capabilities = session.init["result"]["capabilities"]
    assert capabilities["extensions"] == {"io.modelcontextprotocol/skills": {}}
    assert "resources" in capabilities  # the extension requires it


def read(session, uri: str) -> bytes:
    (content,) = session.call("resources/read", {"uri": uri})["result"]["contents"]
    assert content["uri"] == uri
    if "text" in content:
        return content["text"].encode()
    return base64.b64decode(content["blob"])


def test_a_skill_md_skill_is_served_whole_with_digests_of_what_is_read(session):
    result = session.call("skills/get", {"uri": "skill://pdf-forms/SKILL.md"})["result"]
    assert result["ttlMs"] >= 0 and result["cacheScope"] in ("public", "private")
    skill = result["skill"]
    assert skill["uri"] == "skill://pdf-forms/SKILL.md"
    assert skill["frontmatter"] == {  # as written
        "name": "pdf-forms",
        "description": "Fill and flatten PDF forms",
        "license": "Apache-2.0",
        "metadata": {"version": "2.1"},
    }
    uris = [r["uri"] for r in skill["resources"]]
    assert uris == [
        "skill://pdf-forms/SKILL.md",
        "skill://pdf-forms/references/FIELDS.md",
        "skill://pdf-forms/scripts/fill.py",
    ]  # no hidden file, no link leading out of the skill
    for entry in skill["resources"]:
        data = read(session, entry["uri"])
        assert entry["size"] == len(data)
        assert entry["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    types = session.call("resources/read", {"uri": "skill://pdf-forms/SKILL.md"})
    assert types["result"]["contents"][0]["mimeType"] == "text/markdown"


def test_a_spawner_skill_gets_a_rendered_skill_md_that_says_so(session):
    skill = session.call("skills/get", {"uri": "skill://webhooks/SKILL.md"})["result"]["skill"]
    assert skill["frontmatter"]["name"] == "webhooks"
    assert skill["frontmatter"]["metadata"]["rendered-by"] == "skill-retriever"
    (entry,) = skill["resources"]
    text = read(session, entry["uri"]).decode()
    assert text.startswith("---\nname: webhooks\n") and "rendered-by: skill-retriever" in text
    assert "## Identity" in text
    assert entry["digest"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_skills_list_names_every_skill_once(session):
    result = session.call("skills/list")["result"]
    names = [s["frontmatter"]["name"] for s in result["skills"]]
    assert len(names) == 27 and len(set(names)) == 27 and "pdf-forms" in names
    assert "nextCursor" not in result  # one page: no null cursor either
    for s in result["skills"]:
        assert s["uri"].rsplit("/", 2)[-2] == s["frontmatter"]["name"]


def test_unknown_skills_files_and_cursors_are_invalid_params(session):
    for method, params in (
        ("skills/get", {"uri": "skill://nope/SKILL.md"}),
        ("skills/get", {"uri": "skill://pdf-forms/references/FIELDS.md"}),  # not a SKILL.md
        ("skills/get", {}),
        ("skills/list", {"cursor": "not-ours"}),
        ("resources/read", {"uri": "skill://pdf-forms/.secret"}),
        ("resources/read", {"uri": "skill://pdf-forms/../../etc/passwd"}),
    ):
        error = session.call(method, params)["error"]
        assert error["code"] == -32602, (method, params, error)
    # the old resource of a whole skill as Markdown still answers
    assert read(session, "skill://webhooks").decode().startswith("# Webhooks")


class _Files(mcp_skills.SkillFiles):
    """Unit test of paging alone: ids and entries without an index."""

    def __init__(self, n: int) -> None:
        self.n = n

    def ids(self) -> list[str]:
        return [f"s{i:03}" for i in range(self.n)]

    def entry(self, skill_id: str) -> dict:
        return {"uri": mcp_skills.skill_md_uri(skill_id)}


def test_pages_follow_the_cursor_to_the_end_without_repeats():
    files, seen, cursor = _Files(2 * mcp_skills.PAGE_SIZE + 7), [], None
    while True:
        page = mcp_skills.list_page(files, cursor)
        seen += [s["uri"] for s in page["skills"]]
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert seen == [mcp_skills.skill_md_uri(i) for i in files.ids()]


def test_the_extension_over_http_at_mcp(collection, tmp_path):
    """The same extension on `retrieve serve`'s /mcp (stateless, JSON replies)."""
    from helpers import Server, request

    server = Server("--skills", str(collection), "--index", str(tmp_path / "index"))
    headers = {"Accept": "application/json, text/event-stream"}

    def call(method: str, params: dict, n: int) -> dict:
        message = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
        status, reply = request(f"{server.url}/mcp", message, token=None, headers=headers)
        assert status == 200, reply
        return reply

    try:
        init = call(
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {},
             "clientInfo": {"name": "t", "version": "0"}},
            1,
        )  # fmt: skip
        extensions = init["result"]["capabilities"]["extensions"]
        assert extensions == {"io.modelcontextprotocol/skills": {}}
        headers["MCP-Protocol-Version"] = "2025-11-25"
        skill = call("skills/get", {"uri": "skill://pdf-forms/SKILL.md"}, 2)["result"]["skill"]
        assert [r["uri"] for r in skill["resources"]][0] == "skill://pdf-forms/SKILL.md"
        listed = call("skills/list", {}, 3)["result"]["skills"]
        assert [s["uri"] for s in listed] == ["skill://pdf-forms/SKILL.md"]
    finally:
        assert server.stop() == 0
