"""`retrieve tune`: the pairs, the batches, and a real (short) training run via the CLI."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
from conftest import BUNDLED
from helpers import retrieve

from retriever.authoring.tune import TUNE_FILE, make_batches, training_texts, tune
from retriever.errors import RetrieverError
from retriever.load import load_collection
from retriever.skill import Skill


def test_training_texts_prefer_when_and_why():
    skill = Skill.from_dict(
        {
            "id": "s",
            "name": "S",
            "description": "d",
            "triggers": ["cache", "cache", " "],
            "patterns": [
                {"name": "p", "description": "pd", "when": "pw"},
                {"name": "q", "description": "qd"},
            ],
            "anti_patterns": [{"name": "a", "description": "ad", "why": "aw"}],
        }
    )
    assert training_texts(skill) == ["cache", "pw", "qd", "aw"]


def test_batches_hold_each_skill_once_and_use_each_text_once():
    rng = random.Random(1)
    texts = {f"s{i}": [f"s{i}-t{j}" for j in range(1 + i % 5)] for i in range(40)}
    groups = {sid: f"g{int(sid[1:]) % 3}" for sid in texts}
    batches = make_batches(texts, groups, batch_size=8, epochs=1, rng=rng)
    used = Counter(text for b in batches for _, text in b)
    for b in batches:
        ids = [sid for sid, _ in b]
        assert len(ids) == len(set(ids)) and 2 <= len(ids) <= 8  # no false negatives
        assert all(text.startswith(sid + "-") for sid, text in b)
    assert max(used.values()) == 1
    # every text is used, except those of a last skill left without a partner
    total = sum(len(v) for v in texts.values())
    assert total - max(len(v) for v in texts.values()) <= len(used) <= total
    assert len(make_batches(texts, groups, 8, 2, random.Random(1))) == 2 * len(batches)
    half = make_batches(texts, groups, 8, 0.5, random.Random(1))
    assert len(half) == len(batches) // 2


def test_batches_keep_neighbours_together():
    texts = {f"{g}-{i}": ["x", "y"] for g in "abcd" for i in range(8)}
    groups = {sid: sid[0] for sid in texts}
    batches = make_batches(texts, groups, batch_size=8, epochs=1, rng=random.Random(0))
    # 8 skills a group, 8 a batch: most batches are one or two groups, never all four
    assert all(len({sid[0] for sid, _ in b}) <= 2 for b in batches)


def test_tune_refuses_bad_arguments(tmp_path):
    skills = load_collection([BUNDLED]).skills
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(RetrieverError, match="not an empty folder"):
        tune(skills, tmp_path / "full")
    with pytest.raises(RetrieverError, match="batch size"):
        tune(skills, tmp_path / "new", batch_size=1)
    with pytest.raises(RetrieverError, match="too few skills"):
        tune(skills[:1], tmp_path / "new")
    with pytest.raises(RetrieverError, match="max steps"):
        tune(skills, tmp_path / "new", max_steps=0)
    assert not (tmp_path / "new").exists()  # nothing written by a refused run


@pytest.mark.slow  # loads torch and trains: a minute of the default run's few
def test_cli_tune_writes_a_model_the_index_can_use(tmp_path):
    out = tmp_path / "tuned"
    p = retrieve(
        "tune",
        "--skills",
        str(BUNDLED),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--batch-size",
        "8",
        "--json",
    )
    report = json.loads(p.stdout)
    assert report["steps"] == 2 and report["skills"] == 26 and report["pairs"] > 100
    assert json.loads((out / TUNE_FILE).read_text())["steps"] == 2

    from retriever.index.embed import SentenceTransformerEmbedder, make_embedder

    text = ["my webhook handler processes the same event twice"]
    tuned = make_embedder(str(out), models_home=tmp_path / "models").encode(text)
    base = SentenceTransformerEmbedder().encode(text)
    cosine = float((tuned * base).sum())
    assert tuned.shape == (1, 384) and np.isclose(np.linalg.norm(tuned), 1, atol=1e-5)
    assert 0.9 < cosine < 0.99999  # trained: moved, but only a little in two steps

    # an index is built with it (the ONNX export of the tuned model included)
    from retriever import SkillRetriever

    r = SkillRetriever.open(
        BUNDLED,
        index_dir=tmp_path / "index",
        embedder=make_embedder(str(out), models_home=tmp_path / "models"),
    )
    assert r.manifest.model == str(out.resolve())
    assert r.search("my webhook handler processes the same event twice", k=3).skill_ids
