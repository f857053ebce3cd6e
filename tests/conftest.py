"""Shared fixtures: the shared corpora (skipped when absent), a fake embedder, skill writers."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from retriever.index.embed import Embedder

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the project's root; SKILL_RETRIEVER_SHARED points elsewhere.
SHARED = Path(os.environ.get("SKILL_RETRIEVER_SHARED", REPO.parent / "shared"))
SPAWNER = SHARED / "corpora" / "spawner-skills"
# the same corpus less exactly the entries the dev queries were taken from
HOLDOUT = SHARED / "corpora" / "spawner-skills-holdout"
FLAT = SHARED / "corpora" / "spawner-flat-sample"
AGENT_SKILLS = SHARED / "corpora" / "agent-skills"
DEV_QUERIES = SHARED / "eval" / "dev-queries.jsonl"
BUNDLED = REPO / "skills"

# The tests assume the default model and backend, whatever the developer's shell exports
# (e.g. the model folder `retrieve tune` suggests); CLI subprocesses inherit this.
for _name in ("SKILL_RETRIEVER_MODEL", "SKILL_RETRIEVER_BACKEND"):
    os.environ.pop(_name, None)


def require_shared(*paths: Path) -> None:
    """Skip when shared data is absent; in CI (SKILL_RETRIEVER_REQUIRE_SHARED=1) fail instead."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        if os.environ.get("SKILL_RETRIEVER_REQUIRE_SHARED") == "1":
            pytest.fail(f"shared data required but not found at {missing[0]}")
        pytest.skip(
            f"shared data not found at {missing[0]} (set SKILL_RETRIEVER_SHARED or "
            "place ../shared beside the repository)"
        )


class FakeEmbedder(Embedder):
    """Deterministic bag-of-words vectors: equal word sets give cosine 1, disjoint ones 0.

    For unit tests of ranking and handoff logic; real-model tests sit beside these.
    """

    model_id = "fake-bag-of-words"
    dimension = 256

    def encode(self, texts, *, progress=False):
        from retriever.phrases import words

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in words(t):
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dimension] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out


class CountingEmbedder(FakeEmbedder):
    """A fake embedder that records every text it is asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts, *, progress=False):
        self.seen += list(texts)
        return super().encode(texts, progress=progress)


def wait_for(condition, what: str, timeout: float = 60.0):
    """``condition()``'s first true value, polled every 0.1 s; ``AssertionError`` naming
    ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def own_home(tmp_path, monkeypatch) -> Path:
    """An index home of its own for this test (no other test's server announced there),
    sharing the session's ONNX export; set here and in every subprocess started."""
    home = tmp_path / "home"
    home.mkdir()
    models = Path(os.environ.get("SKILL_RETRIEVER_HOME", "")) / "models"
    if models.is_dir():
        (home / "models").symlink_to(models)
    monkeypatch.setenv("SKILL_RETRIEVER_HOME", str(home))
    return home


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory):
    return tmp_path_factory.mktemp("bundled-index")


@pytest.fixture(scope="session")
def bundled(bundled_index):
    from retriever import SkillRetriever

    return SkillRetriever.open(BUNDLED, index_dir=bundled_index)


@pytest.fixture(scope="session")
def spawner_index(tmp_path_factory):
    require_shared(SPAWNER)
    return tmp_path_factory.mktemp("spawner-index")


@pytest.fixture(scope="session")
def holdout(tmp_path_factory):
    """The real model over the holdout corpus: what the dev queries are measured against
    once validations are indexed (the full corpus holds each dev query's own text)."""
    require_shared(HOLDOUT)
    from retriever import SkillRetriever

    return SkillRetriever.open(HOLDOUT, index_dir=tmp_path_factory.mktemp("holdout-index"))


@pytest.fixture(scope="session")
def spawner(spawner_index):
    from retriever import SkillRetriever

    return SkillRetriever.open(SPAWNER, index_dir=spawner_index)


def _index_entries() -> set[str]:
    folder = REPO / "index"
    if not folder.is_dir():
        return set()
    return {str(p.relative_to(folder)) for p in folder.glob("*/*")} | {
        p.name for p in folder.iterdir()
    }


@pytest.fixture(scope="session", autouse=True)
def clone_stays_untouched():
    """With SKILL_RETRIEVER_HOME set (as .ci/run sets it), nothing the tests start may write
    into the clone's index/ folder: a subprocess given a reduced environment once wrote an
    88 MB ONNX export there."""
    before = _index_entries()
    yield
    if os.environ.get("SKILL_RETRIEVER_HOME"):
        added = sorted(_index_entries() - before)
        assert not added, f"tests wrote into {REPO / 'index'}: {added[:5]}"
