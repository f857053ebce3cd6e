"""Every agent's prompt hook, over HTTP (``POST /hooks/AGENT`` on a real ``retrieve serve``)
and as a command (``retrieve hook AGENT`` asking that server), fed the exact event each
agent's documentation shows and checked against the output schema each documents; a
project's own skills found on the first prompt there, and never in another project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import BUNDLED, wait_for, write
from helpers import Server, request, retrieve

from retriever.serve.agents import AGENTS

# Claude Code's UserPromptSubmit input, as docs/hooks.md shows it (code.claude.com).
CLAUDE_EVENT = {
    "session_id": "abc123",
    "transcript_path": "/Users/me/.claude/projects/app/00893aaf.jsonl",
    "cwd": "/",
    "permission_mode": "default",
    "hook_event_name": "UserPromptSubmit",
    "prompt": "my webhook handler processes the same event twice",
}
# Codex's: every field its user-prompt-submit.command.input schema requires, and no other.
CODEX_EVENT = {
    "session_id": "019a-codex",
    "transcript_path": None,
    "cwd": "/",
    "hook_event_name": "UserPromptSubmit",
    "model": "gpt-5-codex",
    "permission_mode": "default",
    "turn_id": "turn-1",
    "prompt": "my webhook handler processes the same event twice",
}
# Gemini CLI's BeforeAgent input (docs/hooks/reference.md: the base fields and prompt).
GEMINI_EVENT = {
    "session_id": "gemini-1",
    "transcript_path": "/home/me/.gemini/tmp/chat.json",
    "cwd": "/",
    "hook_event_name": "BeforeAgent",
    "timestamp": "2026-12-03T10:00:00.000Z",
    "prompt": "my webhook handler processes the same event twice",
}
EVENTS = {"claude-code": CLAUDE_EVENT, "codex": CODEX_EVENT, "gemini": GEMINI_EVENT}

# Codex's output schema, user-prompt-submit.command.output.schema.json (openai/codex
# codex-rs/hooks/schema/generated), properties as published: unknown keys are refused.
CODEX_OUTPUT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "continue": {"type": "boolean"},
        "decision": {"enum": ["block", None]},
        "reason": {"type": ["string", "null"]},
        "stopReason": {"type": ["string", "null"]},
        "suppressOutput": {"type": "boolean"},
        "systemMessage": {"type": ["string", "null"]},
        "hookSpecificOutput": {
            "type": "object",
            "additionalProperties": False,
            "required": ["hookEventName"],
            "properties": {
                "hookEventName": {"const": "UserPromptSubmit"},
                "additionalContext": {"type": ["string", "null"]},
            },
        },
    },
}
# Claude Code (docs/hooks.md) and Gemini CLI (docs/hooks/reference.md): the context in
# hookSpecificOutput.additionalContext, hookEventName naming the event.
HOOK_OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["hookSpecificOutput"],
    "properties": {
        "hookSpecificOutput": {
            "type": "object",
            "required": ["hookEventName", "additionalContext"],
            "properties": {
                "hookEventName": {"type": "string"},
                "additionalContext": {"type": "string", "maxLength": 10_000},
            },
        }
    },
}

ZEPHYR = "the nightly zephyr ledger batch disagrees with the bank statement export"


def project(root: Path, folder: str, name: str, description: str) -> Path:
    """A repository at ``root`` with one skill in its ``folder`` (e.g. .claude/skills)."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    write(
        root / folder / name / "SKILL.md",
        f"""
        ---
        name: {name}
        description: {description}
        ---
        # {name}

        {description}. Check the settlement dates first, then the rounding rules.
        """,
    )
    return root


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    base = tmp_path_factory.mktemp("projects")
    a = project(base / "a", ".claude/skills", "zephyr-ledger", "Reconcile the Zephyr ledger "
                "service's nightly batch against the bank statement export")  # fmt: skip
    b = project(base / "b", ".agents/skills", "quokka-deploy", "Deploy the Quokka kiosk "
                "firmware to the museum floor devices over the maintenance VLAN")  # fmt: skip
    (a / "src" / "deep").mkdir(parents=True)
    return a, b


@pytest.fixture(scope="module")
def server(bundled_index, bundled):
    s = Server("--skills", str(BUNDLED), "--index", str(bundled_index))
    yield s
    assert s.stop() == 0


def post(server, agent: str, event, query: str = ""):
    data = event if isinstance(event, (dict, bytes)) else str(event).encode()
    return request(f"{server.url}/hooks/{agent}{query}", data, token=None)


def validate(agent: str, answer: dict) -> None:
    import jsonschema

    schema = CODEX_OUTPUT_SCHEMA if agent == "codex" else HOOK_OUTPUT_SCHEMA
    jsonschema.validate(answer, schema)
    assert set(answer) == {"hookSpecificOutput"}  # nothing else, for any agent
    assert set(answer["hookSpecificOutput"]) == {"hookEventName", "additionalContext"}
    assert answer["hookSpecificOutput"]["hookEventName"] == EVENTS[agent]["hook_event_name"]


@pytest.mark.parametrize("agent", list(AGENTS))
def test_each_agents_event_gets_its_documented_output_over_http(server, agent):
    status, answer = post(server, agent, EVENTS[agent])
    assert status == 200
    validate(agent, answer)
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert context.startswith("# Skills that fit this prompt")
    assert "## Webhooks (`webhooks`)" in context and len(context) <= 4000


@pytest.mark.parametrize("agent", list(AGENTS))
def test_the_command_hook_prints_exactly_what_the_route_answers(
    server, bundled_index, agent, projects
):
    event = dict(EVENTS[agent], cwd=str(projects[1]))
    status, answer = post(server, agent, event)
    assert status == 200
    p = retrieve(
        "hook", agent, "--skills", str(BUNDLED), "--index", str(bundled_index),
        input=json.dumps(event), check=False, timeout=60,
    )  # fmt: skip
    assert (p.returncode, p.stderr) == (0, "")
    assert json.loads(p.stdout) == answer
    assert "quokka-deploy" not in p.stdout  # a webhook prompt: the project's skill is far


@pytest.mark.parametrize("agent", list(AGENTS))
def test_nothing_to_add_is_an_empty_object(server, agent):
    for prompt in ("/clear", "fix it", "how long should I let a steak rest after grilling"):
        assert post(server, agent, dict(EVENTS[agent], prompt=prompt)) == (200, {})
    other = "Stop" if agent != "gemini" else "AfterAgent"  # registered under another event
    assert post(server, agent, dict(EVENTS[agent], hook_event_name=other)) == (200, {})


def test_a_projects_skill_is_found_on_its_first_prompt_and_nowhere_else(server, projects):
    a, b = projects
    event = dict(CLAUDE_EVENT, prompt=ZEPHYR)
    # the first prompt in a subfolder of project a: its .claude/skills (found at the
    # repository's root) are indexed with the user's, and answer at once
    status, answer = post(server, "claude-code", dict(event, cwd=str(a / "src" / "deep")))
    assert status == 200
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert "zephyr-ledger" in context.split("\n## ")[1]  # the first skill listed
    # project b, and a folder in no project, never see project a's skill
    for cwd in (str(b), "/", None):
        status, answer = post(server, "claude-code", dict(event, cwd=cwd))
        assert status == 200 and "zephyr" not in json.dumps(answer).lower()
    # b's own skill, through Gemini's event this time
    gemini = dict(GEMINI_EVENT, cwd=str(b), prompt="deploy the quokka kiosk firmware")
    status, answer = post(server, "gemini", gemini)
    assert "quokka-deploy" in answer["hookSpecificOutput"]["additionalContext"]


BAD_BODIES = [
    b"",
    b"not json",
    b"[1, 2]",
    b"null",
    b'"a string"',
    b"[" * 100_000,
    b"{}",
    b'{"prompt": 7}',
    b'{"prompt": null, "hook_event_name": "UserPromptSubmit"}',
    b'{"prompt": "\\ud800 lone surrogate in a webhook handler prompt"}',
    b'{"prompt": "webhook retries for the payment events", "cwd": 5}',
    b'{"prompt": "webhook retries for the payment events", "cwd": "relative/path"}',
    b'{"prompt": "webhook retries for the payment events", "cwd": "/no/such/folder"}',
    b'{"prompt": "webhook retries for the payment events", "cwd": "/\\u0000x"}',
    b'{"prompt": "!!! ??? ### $$$ %%%"}',
    b'{"prompt": "' + b"webhook " * 30_000 + b'"}',
    '{"prompt": "\u00e9t\u00e9 webhooks \U0001f600 retries"}'.encode(),
    b"\xff\xfe\x00garbage",
]


@pytest.mark.parametrize("agent", list(AGENTS))
def test_nothing_an_agent_sends_gets_a_5xx_or_a_body_that_is_not_json(server, agent):
    for body in BAD_BODIES:
        for query in ("", "?k=0", "?k=x", "?max_chars=10", "?wait=nan", "?min_words=-1"):
            status, answer = post(server, agent, body, query)
            assert status in (200, 400, 413), (body[:40], query, status)
            assert isinstance(answer, dict), (body[:40], query, answer)
            if status != 200:
                assert isinstance(answer.get("error"), str) and answer["error"]
    status, answer = request(f"{server.url}/hooks/cursor", CLAUDE_EVENT, token=None)
    assert status == 404 and "claude-code, codex, gemini" in answer["error"]
    status, answer = request(f"{server.url}/hooks/codex", token=None)  # a GET
    assert status == 405 and isinstance(answer, dict)


def test_the_token_applies_to_the_hook_routes(bundled_index, bundled):
    s = Server("--skills", str(BUNDLED), "--index", str(bundled_index), "--token", "t0k")
    try:
        assert request(f"{s.url}/hooks/claude-code", CLAUDE_EVENT, token=None)[0] == 401
        status, answer = request(f"{s.url}/hooks/claude-code", CLAUDE_EVENT, token="t0k")
        assert status == 200 and "hookSpecificOutput" in answer
    finally:
        assert s.stop() == 0


def print_config(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "retriever.cli", "hook", *args, "--print-config"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_print_config_names_each_agents_file_and_entry(bundled_index):
    index = ["--skills", str(BUNDLED), "--index", str(bundled_index)]
    p = print_config("codex", *index, "--timeout", "4")
    assert p.returncode == 0 and "~/.codex/hooks.json" in p.stderr and "/hooks" in p.stderr
    (group,) = json.loads(p.stdout)["hooks"]["UserPromptSubmit"]
    assert group["hooks"][0] == {
        "type": "command",
        "command": f"{sys.executable} -m retriever.cli hook codex {' '.join(index)} --timeout 4",
        "timeout": 9,  # seconds, as Codex reads it
    }
    p = print_config("gemini", *index)
    assert p.returncode == 0 and "~/.gemini/settings.json" in p.stderr
    (group,) = json.loads(p.stdout)["hooks"]["BeforeAgent"]
    assert group["matcher"] == "*"
    assert group["hooks"][0]["timeout"] == 10_000  # milliseconds, as Gemini CLI reads it
    assert group["hooks"][0]["name"] == "skill-retriever"
    assert group["hooks"][0]["command"].startswith(f"{sys.executable} -m retriever.cli hook ")


def test_print_config_http_passes_the_token_through_allowed_env_vars(bundled_index):
    secret = "do-not-write-me"
    p = print_config(
        "claude-code", "--http", "http://127.0.0.1:9911/", "-k", "4",
        env={"SKILL_RETRIEVER_TOKEN": secret},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert secret not in p.stdout  # the token is read from the environment, never written
    (group,) = json.loads(p.stdout)["hooks"]["UserPromptSubmit"]
    assert group["hooks"] == [
        {
            "type": "http",
            "url": "http://127.0.0.1:9911/hooks/claude-code?k=4",
            "headers": {"Authorization": "Bearer $SKILL_RETRIEVER_TOKEN"},
            "allowedEnvVars": ["SKILL_RETRIEVER_TOKEN"],
            "timeout": 30,
        }
    ]
    for agent in ("codex", "gemini"):  # no HTTP hook type in their docs
        p = print_config(agent, "--http")
        assert p.returncode == 2 and p.stdout == "" and "command hooks only" in p.stderr
    p = print_config("claude-code", "--http", "ftp://x")
    assert p.returncode == 2 and "expected a server's URL" in p.stderr


def test_the_print_config_http_entry_reaches_a_running_server(server, bundled_index):
    """The URL it finds (this index's running server) answers the entry's POST."""
    p = print_config(
        "claude-code", "--http", "--skills", str(BUNDLED), "--index", str(bundled_index)
    )
    (group,) = json.loads(p.stdout)["hooks"]["UserPromptSubmit"]
    url = group["hooks"][0]["url"]
    assert url == f"{server.url}/hooks/claude-code"
    status, answer = request(url, CLAUDE_EVENT, token=None)
    assert status == 200 and "hookSpecificOutput" in answer


def test_before_the_servers_first_index_a_hook_gets_nothing_and_no_error(tmp_path, own_home):
    """A server whose first index cannot be built (no skill under its root) answers every
    agent's hook {} (where /search says 503): the prompt goes on, never a 5xx."""
    empty = tmp_path / "empty"
    (empty / "nothing").mkdir(parents=True)
    # started here, not with helpers.Server, which waits for the first build to be done
    process = subprocess.Popen(
        [sys.executable, "-m", "retriever.cli", "-q", "serve", "--port", "0", "--skills",
         str(empty)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("serving "), line
    s = SimpleNamespace(url=line.split(" at ", 1)[1].split(": ", 1)[0])
    try:
        wait_for(
            lambda: request(f"{s.url}/health", token=None)[1]["status"] == "failed",
            "the first build to fail",
            timeout=120,
        )
        assert request(f"{s.url}/search", {"query": CLAUDE_EVENT["prompt"]}, token=None)[0] == 503
        for agent, event in EVENTS.items():
            assert post(s, agent, event) == (200, {})
        headers = {"Accept": "application/json, text/event-stream"}
        message = {"jsonrpc": "2.0", "id": 1, "method": "skills/list", "params": {}}
        status, reply = request(f"{s.url}/mcp", message, token=None, headers=headers)
        assert status == 200 and reply["error"]["code"] == -32603
        assert "could not be opened" in reply["error"]["message"]
    finally:
        process.terminate()
        assert process.wait(20) == 0
