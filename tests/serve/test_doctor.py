"""`retrieve doctor`, `retrieve --version` and the note before a long build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import BUNDLED, write
from helpers import retrieve as run_retrieve


def retrieve(*args: str, env=None):
    return run_retrieve(*args, env=env, check=False, timeout=300)


def test_version_prints_the_version_and_exits_0():
    from retriever import __version__

    p = retrieve("--version")
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{__version__}\n", "")


def test_doctor_on_a_usable_index(bundled_index, bundled):
    p = retrieve("doctor", "--skills", str(BUNDLED), "--index", str(bundled_index), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["usable"] is True and r["stale"] is False and r["todo"] == []
    assert r["roots"] == [str(BUNDLED)] and r["default_roots"] is None
    assert r["skills"] == len(bundled.skills) and r["problems"] == 0
    assert r["index"]["folder"] == str(bundled_index)
    assert r["index"]["version"] == bundled.index.path.name
    assert r["index"]["documents"] == bundled.document_count
    assert r["model"] == bundled.manifest.model
    assert r["backend"]["runtime"] == "onnx" and r["backend"]["export_present"] is True
    assert os.path.isdir(r["backend"]["onnx_export"])
    assert r["server"] is None or r["server"]["url"].startswith("http://")

    p = retrieve("doctor", "--skills", str(BUNDLED), "--index", str(bundled_index))
    assert p.returncode == 0 and p.stderr == ""
    assert "index state: up to date" in p.stdout and "ready:" in p.stdout


def test_doctor_says_what_needs_doing_and_exits_1(tmp_path, bundled_index, bundled):
    missing = tmp_path / "never-built"
    p = retrieve("doctor", "--skills", str(BUNDLED), "--index", str(missing))
    assert p.returncode == 1
    assert "needs building (no index yet)" in p.stdout
    assert f"retrieve index --skills {BUNDLED} --index {missing}" in p.stdout
    assert not missing.exists()  # a check only: nothing is created

    skills = tmp_path / "skills"  # the same skills elsewhere: the index is stale
    shutil.copytree(BUNDLED, skills)
    p = retrieve("doctor", "--skills", str(skills), "--index", str(bundled_index), "--json")
    r = json.loads(p.stdout)
    assert p.returncode == 1 and r["usable"] is False
    assert r["stale_because"] == "the skill files changed since it was built"


def test_doctor_lists_the_default_roots_it_did_not_find(tmp_path, bundled_index, bundled):
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": "", "XDG_CONFIG_HOME": ""}
    p = retrieve("doctor", "--index", str(bundled_index), env=env)
    assert p.returncode == 0, p.stderr
    assert f"default root {tmp_path}/.spawner/skills (spawner): not found" in p.stdout
    assert f"default root {tmp_path}/.gemini/skills (Gemini CLI): not found" in p.stdout
    assert "the bundled collection is used" in p.stdout


def test_doctor_names_every_agents_folder_it_finds(tmp_path):
    """The user-level folders of each agent, and an installed Claude Code plugin's skills,
    are the default roots (HOME is a made-up one: the real user's folders are never read)."""
    home = tmp_path / "home"
    for folder in (".claude/skills/a-skill", ".gemini/skills/b-skill", ".agents/skills/c-skill"):
        write_skill_md(home / folder)
    plugin = home / ".claude/plugins/cache/market/tools/1.0.0"
    write_skill_md(plugin / "skills/d-skill")
    (home / ".claude/plugins/installed_plugins.json").write_text(
        json.dumps({"version": 2, "plugins": {"tools@market": [
            {"scope": "user", "installPath": str(plugin), "version": "1.0.0"}
        ]}})
    )  # fmt: skip
    env = {"HOME": str(home), "CLAUDE_CONFIG_DIR": "", "XDG_CONFIG_HOME": ""}
    r = json.loads(retrieve("doctor", "--json", env=env).stdout)
    found = {d["agent"]: d["path"] for d in r["default_roots"] if d["exists"]}
    assert found == {
        "Claude Code": f"{home}/.claude/skills",
        "Codex, Gemini CLI, Cursor, OpenCode": f"{home}/.agents/skills",
        "Gemini CLI": f"{home}/.gemini/skills",
        "Claude Code plugin tools@market": f"{plugin}/skills",
    }
    assert r["roots"] == [str(Path(p).resolve()) for p in found.values()]
    assert r["skills"] == 4


def test_doctor_user_errors_exit_2_in_one_line(tmp_path):
    p = retrieve("doctor", "--skills", str(tmp_path / "nope"))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == f"retrieve: error: skills root not found: {tmp_path / 'nope'}\n"


def test_a_build_says_up_front_how_long_it_will_take(tmp_path):
    skills = tmp_path / "skills"
    for name in ("webhooks", "caching"):
        shutil.copytree(next(BUNDLED.rglob(f"{name}/skill.yaml")).parent, skills / name)
    # the embedding cache off: every text is embedded (else the session's cache has them)
    p = retrieve(
        "index", "--skills", str(skills), "--index", str(tmp_path / "index"),
        env={"SKILL_RETRIEVER_CACHE_MB": "0"},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    # stderr is a pipe here, not a terminal: the note is there all the same
    note = next(line for line in p.stderr.splitlines() if "to embed" in line)
    assert note.startswith("retrieve: 2 skills, ") and "a few seconds on " in note
    assert "later builds embed only the texts that changed" in note
    # the same skills elsewhere, with the cache on: nothing new to embed, and it says so
    p = retrieve("index", "--skills", str(skills), "--index", str(tmp_path / "again"))
    p = retrieve("index", "--skills", str(skills), "--index", str(tmp_path / "third"))
    assert "2 skills: nothing to embed (every text's vector is known)" in p.stderr


def write_skill_md(folder: Path) -> None:
    write(
        folder / "SKILL.md",
        f"""
        ---
        name: {folder.name}
        description: The {folder.name} skill, made up for a test of default roots
        ---
        # {folder.name}
        """,
    )
