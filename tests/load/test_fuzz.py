"""Fuzzing the loader with mutated real skill files from ../shared/corpora (hypothesis).

Each example copies a few real skills into a fresh folder, damages one file in one way, and
loads the folder. Whatever the damage: no exception escapes, the damaged skill is loaded or
reported with its path and a reason, and every other skill loads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import AGENT_SKILLS, SPAWNER, require_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retriever.load import load_collection

pytestmark = pytest.mark.shared

# How many examples the default run tries; docs/reliability.md quotes it.
FUZZ_EXAMPLES = int(os.environ.get("SKILL_RETRIEVER_FUZZ_EXAMPLES", "400"))


def _sample_dirs() -> list[Path]:
    spawner = sorted(p.parent for p in SPAWNER.glob("*/*/skill.yaml"))[::23]  # ~20 skills
    agent = sorted(p.parent for p in AGENT_SKILLS.glob("*/SKILL.md"))[::120]  # ~12 skills
    return spawner + agent


def _mutate(data: bytes, how: str, draw) -> bytes:
    text = data.decode("utf-8", errors="replace")
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "random_bytes":
        pos = draw(st.integers(0, len(data)))
        return data[:pos] + draw(st.binary(min_size=1, max_size=64)) + data[pos:]
    if how == "invalid_utf8":
        pos = draw(st.integers(0, len(data)))
        return data[:pos] + b"\xff\xfe\xc3\x28" + data[pos:]
    if how == "tabs":
        return text.replace("  ", "\t").encode()
    if how == "duplicate_keys":
        lines = text.splitlines(True)
        top = [ln for ln in lines if ln[:1].isalpha() and ":" in ln]
        return (text + "".join(top[:3])).encode()
    if how == "huge_string":
        size = draw(st.sampled_from([300_000, 3_000_000, 5_000_000]))
        return text.replace("description:", "description: " + "x" * size + " ", 1).encode()
    if how == "alias_bomb":
        bomb = "\n".join(
            f"zz{i}: &zz{i} [" + ",".join([f"*zz{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]"
            for i in range(9)
        )
        return (text + "\n" + bomb + "\n").encode()
    # Structural damage to the parsed map: wrong types, deleted keys.
    front = text.startswith("---")
    body = text.split("---", 2)[1] if front else text
    try:
        parsed = yaml.safe_load(body)
    except yaml.YAMLError:
        return data
    if not isinstance(parsed, dict) or not parsed:
        return data
    keys = sorted(parsed, key=str)
    chosen = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True))
    wrong = st.one_of(
        st.none(),
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        st.lists(st.dictionaries(st.text(max_size=5), st.none(), max_size=2), max_size=2),
    )
    for key in chosen:
        if how == "delete_keys":
            del parsed[key]
        else:
            parsed[key] = draw(wrong)
    dumped = yaml.safe_dump(parsed, allow_unicode=True)
    if front:
        return ("---\n" + dumped + "---\n" + text.split("---", 2)[2]).encode()
    return dumped.encode()


MUTATIONS = [
    "truncate",
    "random_bytes",
    "invalid_utf8",
    "tabs",
    "duplicate_keys",
    "huge_string",
    "alias_bomb",
    "wrong_types",
    "delete_keys",
]


@pytest.fixture(scope="module")
def sample_dirs():
    require_shared(SPAWNER, AGENT_SKILLS)
    return _sample_dirs()


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_mutated_real_files_never_break_the_load(sample_dirs, data):
    draw = data.draw
    picked = draw(st.lists(st.sampled_from(sample_dirs), min_size=2, max_size=5, unique=True))
    victim = draw(st.sampled_from(picked))
    files = sorted(
        p for p in victim.iterdir() if p.name in ("skill.yaml", "collaboration.yaml", "SKILL.md")
    )
    target_file = draw(st.sampled_from(files))
    how = draw(st.sampled_from(MUTATIONS))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copies = {}
        for d in picked:
            dest = root / d.parent.name / d.name
            dest.mkdir(parents=True)
            for f in d.iterdir():
                if f.name in ("skill.yaml", "collaboration.yaml", "SKILL.md"):
                    shutil.copyfile(f, dest / f.name)
            copies[d] = dest
        damaged = copies[victim] / target_file.name
        damaged.write_bytes(_mutate(damaged.read_bytes(), how, draw))

        report = load_collection([root])  # must not raise

        loaded_dirs = {Path(s.path).parent for s in report.skills}
        problem_paths = {Path(p.path) for p in report.problems}
        assert all(p.reason for p in report.problems)
        for d, dest in copies.items():
            main = dest / ("SKILL.md" if (dest / "SKILL.md").exists() else "skill.yaml")
            if d is victim:
                # loaded, or reported with the damaged file's path
                assert dest in loaded_dirs or damaged in problem_paths or main in problem_paths
            else:
                duplicate = any(
                    "duplicate skill id" in p.reason and Path(p.path) == main
                    for p in report.problems
                )
                assert dest in loaded_dirs or duplicate, (d, how, report.problems)
