"""The ``retrieve`` CLI, run as a real subprocess."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED
from helpers import retrieve


@pytest.fixture(scope="session")
def index_dir(bundled_index, bundled):
    """The bundled collection's index, already built by the API fixture."""
    return str(bundled_index)


def test_help_lists_the_commands():
    from retriever.cli.main import COMMANDS

    out = retrieve("--help").stdout
    for cmd in COMMANDS:
        assert f"    {cmd} " in out
        assert retrieve(cmd, "--help").stdout.startswith(f"usage: retrieve {cmd}")


def test_search_json_contract(index_dir):
    p = retrieve(
        "search",
        "my webhook handler processes the same event twice",
        "-k",
        "3",
        "--json",
        "--index",
        index_dir,
    )
    d = json.loads(p.stdout)
    assert d["query"] == "my webhook handler processes the same event twice"
    assert d["skills"][0]["id"] == "webhooks"
    s = d["skills"][0]
    assert {"id", "name", "score", "via", "matches", "patterns"} <= set(s)
    assert {"field", "kind", "text", "score", "via"} <= set(s["matches"][0])
    assert {"skill_id", "kind", "name", "text", "score"} <= set(d["patterns"][0])
    assert isinstance(d["handoffs"], list)


def test_search_text_output(index_dir):
    out = retrieve("search", "tests pass locally but fail in CI", "--index", index_dir).stdout
    assert "Skills for: tests pass locally but fail in CI" in out
    assert " 1. " in out and "via semantic" in out


def test_search_markdown(index_dir):
    out = retrieve(
        "search",
        "stale cache after updates",
        "--markdown",
        "--max-chars",
        "800",
        "--index",
        index_dir,
    ).stdout
    assert out.startswith("# Skills for:") and len(out.rstrip("\n")) <= 800


def test_index_json(index_dir):
    d = json.loads(retrieve("index", "--json", "--index", index_dir).stdout)
    assert d["skills"] >= 20 and d["documents"] > d["skills"] and d["problems"] == []
    assert d["rebuilt"] is False


def test_show():
    out = retrieve("show", "webhooks").stdout
    assert out.startswith("Webhooks (webhooks)") and "Patterns" in out and "Handoffs" in out
    d = json.loads(retrieve("show", "webhooks", "--json").stdout)
    assert d["id"] == "webhooks" and d["patterns"]


def test_eval_and_run_out(index_dir, tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text(
        '{"id": "a", "query": "webhook delivered twice", "relevant": ["webhooks"], '
        '"source": "t"}\n'
        '{"id": "b", "query": "slow SQL query needs an index", '
        '"relevant": ["query-performance"], "source": "t"}\n'
    )
    run = tmp_path / "run.json"
    p = retrieve("eval", "--queries", str(q), "--json", "--run-out", str(run), "--index", index_dir)
    d = json.loads(p.stdout)
    assert d["n"] == 2 and {"R@1", "R@5", "R@10", "MRR@10", "nDCG@10"} <= set(d)
    ranked = json.loads(run.read_text())
    assert set(ranked) == {"a", "b"} and ranked["a"][0] == "webhooks"
    assert 0.5 <= d["MRR@10"] <= 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "x", "--skills", "/no/such/folder"], "skills root not found: /no/such/folder"),
        (["show", "webhook"], "unknown skill id 'webhook'; did you mean webhooks?"),
        (["eval", "--queries", "/no/such.jsonl"], "query file not found: /no/such.jsonl"),
    ],
)
def test_user_errors_are_one_line(args, message):
    p = retrieve(*args, check=False)
    assert p.returncode == 2
    assert p.stderr.strip() == f"retrieve: error: {message}"
    assert "Traceback" not in p.stderr


def test_bad_query_file_is_one_line(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text("{broken\n")
    p = retrieve("eval", "--queries", str(q), check=False)
    assert p.returncode == 2 and "q.jsonl:1: not valid JSON" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_empty_query_is_one_line(index_dir):
    p = retrieve("search", "   ", "--index", index_dir, check=False)
    assert p.returncode == 2 and p.stderr.strip().startswith("retrieve: error: query is empty")


def test_stale_index_refused_with_no_rebuild(tmp_path, index_dir):
    p = retrieve(
        "search",
        "x",
        "--skills",
        str(BUNDLED),
        "--index",
        str(tmp_path / "none"),
        "--no-rebuild",
        check=False,
    )
    assert p.returncode == 2 and "cannot be used: no index yet" in p.stderr


def test_api_and_cli_agree(bundled, index_dir):
    q = "screen reader users cannot use the dropdown menu"
    d = json.loads(retrieve("search", q, "--json", "-k", "5", "--index", index_dir).stdout)
    assert [s["id"] for s in d["skills"]] == bundled.search(q, k=5).skill_ids


# -- every command, run once as a user would ------------------------------------------------


def test_lint_without_the_index(tmp_path):
    p = retrieve("lint", "--skills", str(BUNDLED), "--no-reach", "--json", check=False)
    d = json.loads(p.stdout)
    assert p.returncode == (1 if d["findings"] else 0) and d["skills"] == 26


def test_mcp_over_stdio_answers_and_ends_with_stdin(index_dir):
    import os
    import subprocess
    import sys

    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "retriever.cli", "-q", "mcp", "--index", index_dir,
         "--skills", str(BUNDLED)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    for m in messages:
        server.stdin.write(json.dumps(m) + "\n")
    server.stdin.flush()
    replies = {r["id"]: r for r in (json.loads(server.stdout.readline()) for _ in range(2))}
    server.stdin.close()  # the client is done: the server ends
    assert server.wait(30) == 0
    assert replies[1]["result"]["serverInfo"]["name"] == "skill-retriever"
    assert {t["name"] for t in replies[2]["result"]["tools"]} == {"search_skills", "get_skill"}


def test_serve_answers_health_and_stops_on_sigterm(index_dir):
    from helpers import Server, request

    server = Server("--index", index_dir, "--skills", str(BUNDLED), "--no-rebuild")
    try:
        status, health = request(f"{server.url}/health", token=None)
        assert status == 200 and health["skills"] == 26
    finally:
        assert server.stop() == 0


def test_hook_prints_the_context_for_a_prompt(index_dir):
    from helpers import EVENT, run_hook

    p = run_hook(EVENT, "--index", index_dir, "--skills", str(BUNDLED))
    out = json.loads(p.stdout)["hookSpecificOutput"]
    assert p.returncode == 0 and "Webhooks" in out["additionalContext"]


def test_doctor_says_the_index_is_ready(index_dir):
    p = retrieve("doctor", "--index", index_dir, "--skills", str(BUNDLED), "--json")
    d = json.loads(p.stdout)
    assert d["usable"] is True and d["skills"] == 26 and d["backend"]["runtime"] == "onnx"


def test_tune_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    p = retrieve("tune", "--skills", str(BUNDLED), "--out", str(tmp_path / "out"), check=False)
    assert p.returncode == 2 and "not an empty folder" in p.stderr
