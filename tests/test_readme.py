"""The README's examples work as written: every Python block runs, every JSON block parses,
and the lists of sections it gives match the code's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def json_blocks() -> list[str]:
    # the JSON contract of `search --json` abbreviates values with "..."; the rest are
    # configuration entries a user copies whole
    return [b for b in blocks("json") if '"..."' not in b and "..." not in b]


def test_the_readme_has_runnable_examples():
    assert len(blocks("python")) >= 2 and json_blocks()


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_each_python_block_runs_on_its_own(number, tmp_path, bundled_index, bundled):
    """Each block in a fresh interpreter, as a user pastes it: with no skills of their own
    (an empty HOME), so it opens the bundled collection in its default index folder under
    this session's index home (built by the first block; ``bundled`` made the ONNX export
    there already)."""
    code = blocks("python")[number]
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    p = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert p.returncode == 0, f"README python block {number} failed:\n{code}\n{p.stderr[-3000:]}"


@pytest.mark.parametrize("number", range(len(json_blocks())))
def test_each_configuration_block_is_json(number):
    json.loads(json_blocks()[number])


def test_the_get_skill_sections_listed_are_the_codes():
    from retriever.present.skill import SKILL_SECTIONS

    listed = re.search(r"`get_skill\(id, sections=None\)`: (.*?)\.\n", README, re.S)
    assert listed is not None
    named = re.findall(r"`(\w+)`", listed.group(1))
    assert set(SKILL_SECTIONS) <= set(named), set(SKILL_SECTIONS) - set(named)


def test_the_layout_names_files_that_exist():
    layout = README.split("## Layout", 1)[1].split("```", 2)[1]
    package = Path(REPO / "retriever")
    for name in re.findall(r"\b([a-z_]+\.py)\b", layout):
        assert list(package.rglob(name)) or list(REPO.rglob(name)), name
