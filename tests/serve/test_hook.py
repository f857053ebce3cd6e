"""`retrieve hook claude-code` as Claude Code runs it: a subprocess fed the event JSON on
stdin. Whatever happens it exits 0 (exit 2 would block the user's prompt), prints either
the hook's JSON or nothing on stdout, and at most one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import BUNDLED
from helpers import EVENT, run_hook


def text(p: subprocess.CompletedProcess) -> tuple[str, str]:
    return p.stdout.decode(), p.stderr.decode()


@pytest.fixture(scope="module")
def index_args(bundled_index, bundled):
    return ["--skills", str(BUNDLED), "--index", str(bundled_index)]


def test_a_matching_prompt_gets_the_skills_as_additional_context(index_args, bundled):
    p = run_hook(EVENT, *index_args, "--max-chars", "3000")
    out, err = text(p)
    assert p.returncode == 0 and err == ""
    hook = json.loads(out)["hookSpecificOutput"]
    assert hook["hookEventName"] == "UserPromptSubmit"
    context = hook["additionalContext"]
    assert len(context) <= 3000
    assert context.startswith("# Skills that fit this prompt")
    assert "## Webhooks (`webhooks`)" in context
    assert EVENT["prompt"] not in context  # the prompt is not echoed back into the context
    best = bundled.search(EVENT["prompt"], k=3).skills[0].patterns[0].name
    assert best in context  # the top skill's best pattern


def test_the_default_budget_is_well_under_claude_codes_limit(index_args):
    long_prompt = dict(EVENT, prompt="webhook retries, idempotency, queues and caching " * 40)
    out, _ = text(run_hook(long_prompt, *index_args, "-k", "10"))
    assert len(json.loads(out)["hookSpecificOutput"]["additionalContext"]) <= 4000


@pytest.mark.parametrize(
    "prompt",
    [
        "how long should I let a steak rest after grilling it",  # nothing fits
        "/clear",  # a slash command
        "/review the webhook handler for duplicate events",
        "fix it",  # too short to say what the task is
        "   ",
    ],
)
def test_no_context_for_no_match_slash_commands_and_short_prompts(index_args, prompt):
    p = run_hook(dict(EVENT, prompt=prompt), *index_args)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


@pytest.mark.parametrize(
    "stdin",
    [
        b"",
        b"not json at all",
        b'{"session_id": "x", "hook_event_name": "UserPromptSubmit", "prompt": ',
        b'["a list"]',
        b'{"hook_event_name": "UserPromptSubmit", "prompt": 42}',
        b"\xff\xfe\x00 binary",
    ],
)
def test_malformed_input_exits_0_with_one_line_on_stderr(index_args, stdin):
    p = run_hook(stdin, *index_args)
    out, err = text(p)
    assert p.returncode == 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("retrieve hook: ")


def test_another_event_gets_nothing(index_args):
    p = run_hook(dict(EVENT, hook_event_name="PreToolUse"), *index_args)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


def test_a_missing_index_says_how_to_build_it_and_never_builds(tmp_path):
    missing = tmp_path / "no-index"
    p = run_hook(EVENT, "--skills", str(BUNDLED), "--index", str(missing))
    out, err = text(p)
    assert p.returncode == 0 and out == ""
    assert err.count("\n") == 1 and "no index yet" in err
    assert f"build it with: retrieve index --skills {BUNDLED} --index {missing}" in err.replace(
        f"{sys.executable} -m retriever.cli", "retrieve"
    )
    assert not missing.exists()  # nothing was built or created


def test_a_stale_index_is_not_rebuilt(tmp_path, bundled_index, bundled):
    import shutil

    skills = tmp_path / "skills"
    shutil.copytree(BUNDLED, skills)
    index = tmp_path / "index"
    shutil.copytree(bundled_index, index, symlinks=True)  # built from other roots: stale
    before = sorted(p.name for p in index.iterdir())
    p = run_hook(EVENT, "--skills", str(skills), "--index", str(index))
    out, err = text(p)
    assert p.returncode == 0 and out == "" and err.count("\n") == 1
    assert "the skill files changed since it was built" in err and " index --skills " in err
    assert sorted(p.name for p in index.iterdir()) == before


def test_bad_options_and_a_missing_root_never_exit_2(tmp_path):
    for args in (["--bogus"], ["-k", "0"], ["--skills", str(tmp_path / "nope")]):
        p = run_hook(EVENT, *args)
        out, err = text(p)
        assert p.returncode == 0 and out == "", args
        assert len(err.splitlines()) == 1, (args, err)
    p = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "hook", "cursor"], capture_output=True, timeout=60
    )
    assert p.returncode == 0 and b"invalid choice" in p.stderr


def test_the_time_budget_gives_up_with_nothing_added(index_args):
    p = run_hook(EVENT, *index_args, "--timeout", "0.001")
    out, err = text(p)
    assert p.returncode == 0 and out == ""
    assert err == "retrieve hook: gave up after 0.001 s (--timeout); nothing added\n"


def test_a_dead_or_silent_server_falls_back_to_searching_here(index_args, bundled_index):
    from retriever.serve.discovery import servers_folder

    expected = run_hook(EVENT, *index_args).stdout
    folder = servers_folder(bundled_index)
    folder.mkdir(parents=True, exist_ok=True)
    for pid, port in ((2**22 + 17, 9), (os.getpid(), 9)):  # gone; alive but no server
        path = folder / f"{pid}-test.json"
        entry = {"url": f"http://127.0.0.1:{port}", "pid": pid, "index": str(bundled_index)}
        path.write_text(json.dumps({**entry, "secret": "s" * 64}))
        try:
            p = run_hook(EVENT, *index_args)
        finally:
            path.unlink()
        assert (p.returncode, p.stdout, p.stderr) == (0, expected, b"")


def test_print_config_gives_the_settings_entry(tmp_path):
    home = tmp_path / "home"  # the environment Claude Code runs the hook in may not have it
    p = subprocess.run(
        [sys.executable, "-m", "retriever.cli", "hook", "claude-code", "--print-config",
         "--skills", str(BUNDLED), "--max-chars", "3000"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SKILL_RETRIEVER_HOME": str(home)},
    )  # fmt: skip
    assert p.returncode == 0
    assert p.stderr.startswith("retrieve hook: add this to ~/.claude/settings.json")
    entry = json.loads(p.stdout)
    (group,) = entry["hooks"]["UserPromptSubmit"]
    (hook,) = group["hooks"]
    assert hook["type"] == "command" and hook["timeout"] == 10
    # absolute paths (the hook runs in every project's folder, maybe outside the virtual
    # environment: the interpreter or `retrieve` by its path), and the index folder named
    assert hook["command"].startswith(f"{sys.executable} -m retriever.cli hook ")
    assert f"hook claude-code --skills {BUNDLED} --index {home.resolve()}/" in hook["command"]
    assert hook["command"].endswith(" --max-chars 3000")


def test_a_missing_onnx_export_is_not_started_on_a_prompt(tmp_path, index_args):
    p = run_hook(EVENT, *index_args, env={"SKILL_RETRIEVER_HOME": str(tmp_path)})
    out, err = text(p)
    assert p.returncode == 0 and out == "" and err.count("\n") == 1
    assert "ONNX export is not made yet" in err and " index --skills " in err
    assert list(tmp_path.iterdir()) == []  # no half-made export left behind


def test_a_projects_skills_are_indexed_in_the_background_without_a_server(tmp_path, index_args):
    """No server: the first prompt in a project starts `retrieve index` of the user's roots
    plus the project's folders (only the project's texts embed) and gets the user's skills;
    once built, the project's skill answers; another project never sees it."""
    from conftest import wait_for

    def project(name: str, skill: str, description: str):
        root = tmp_path / name
        (root / ".git").mkdir(parents=True)
        folder = root / ".claude" / "skills" / skill
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\nname: {skill}\ndescription: {description}\n---\n# {skill}\n\n{description}.\n"
        )
        return root

    a = project("a", "zephyr-ledger", "Reconcile the Zephyr ledger nightly batch with the bank")
    b = project("b", "quokka-deploy", "Deploy the Quokka kiosk firmware to museum devices")
    prompt = "the nightly zephyr ledger batch disagrees with the bank statement"
    first = run_hook(dict(EVENT, cwd=str(a), prompt=prompt), *index_args)
    out, err = text(first)
    assert first.returncode == 0 and "zephyr" not in out.lower()
    assert err.startswith("retrieve hook: the project's skills (") and "being indexed" in err

    def found() -> bool:
        out, _ = text(run_hook(dict(EVENT, cwd=str(a / "."), prompt=prompt), *index_args))
        return "zephyr-ledger" in out

    wait_for(found, "the project's index built in the background", timeout=300)
    later = run_hook(dict(EVENT, cwd=str(b), prompt=prompt), *index_args)
    assert "zephyr" not in text(later)[0].lower()
