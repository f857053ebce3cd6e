"""Reliability round 3 (issue 25): numbers that broke `retrieve tune` or the model, and
output that misled on everyday tasks. Each test failed on the code before its fix;
docs/reliability.md lists them with what happens now."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FakeEmbedder
from helpers import retrieve
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.errors import ModelError

# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--epochs", "inf", "epochs"),  # was an OverflowError traceback
        ("--epochs", "nan", "epochs"),
        ("--epochs", "1e308", "epochs"),  # with --max-steps 1: memory grew without bound
        ("--learning-rate", "nan", "learning rate"),  # a raw torch traceback
        ("--learning-rate", "-1", "learning rate"),
        ("--learning-rate", "inf", "learning rate"),  # exited 0 with a model 99.3% NaN
        ("--batch-size", "0", "batch size"),
        ("--hard-negatives", "-1", "hard negatives"),
        ("--max-steps", "0", "max steps"),
    ],
)
def test_tune_refuses_numbers_that_break_it_at_once(tmp_path, option, value, named):
    p = retrieve(
        "tune", "--skills", str(tmp_path), "--out", str(tmp_path / "out"), "--max-steps", "1",
        option, value, check=False,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.startswith("retrieve: error: ") and named in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


class NotFinite(FakeEmbedder):
    """A model whose weights went to NaN (what `tune --learning-rate inf` produced)."""

    model_id = "nan-model"

    def encode(self, texts, *, progress=False):
        out = super().encode(texts, progress=progress)
        out[:, 0] = np.nan
        return out


def test_a_model_giving_non_finite_vectors_is_refused_when_building(tmp_path):
    root = write_mini(tmp_path / "skills")
    with pytest.raises(ModelError, match="not finite numbers"):
        SkillRetriever.open(root, index_dir=tmp_path / "index", embedder=NotFinite())
    assert not (tmp_path / "index" / "current").exists()  # nothing saved


def test_a_model_giving_non_finite_vectors_is_refused_when_searching(tmp_path):
    """An index built with a sound model, then searched with a broken one of the same id:
    the defect printed "score": NaN, which is not JSON."""
    root = write_mini(tmp_path / "skills")
    SkillRetriever.open(root, index_dir=tmp_path / "index", embedder=FakeEmbedder())
    broken = NotFinite()
    broken.model_id = FakeEmbedder.model_id
    opened = SkillRetriever.open(root, index_dir=tmp_path / "index", embedder=broken)
    with pytest.raises(ModelError, match="not finite numbers"):
        opened.search("duplicate webhook events")


# -- output that misled -------------------------------------------------------------------


def test_skills_sharing_ids_across_roots_are_not_called_files_that_failed(
    tmp_path, bundled, bundled_index
):
    first = write_mini(tmp_path / "first")
    second = tmp_path / "second"
    shutil.copytree(first, second)
    for _ in ("built", "loaded from the index folder"):
        p = retrieve(
            "search", "duplicate webhook events", "--skills", str(first), "--skills",
            str(second), "--index", str(tmp_path / "index"),
        )  # fmt: skip
        lines = [ln for ln in p.stderr.splitlines() if "left out" in ln]
        assert lines == [
            "retrieve: 3 skills have the same id as a skill of an earlier root and are left "
            "out (the first root wins; `retrieve index` lists them)"
        ]
        assert "could not be loaded" not in p.stderr


def test_markdown_says_on_stderr_when_nothing_matched(bundled_index, bundled):
    from conftest import BUNDLED

    p = retrieve(
        "search", "how do I bake sourdough bread at home", "--markdown", "--skills", str(BUNDLED),
        "--index", str(bundled_index),
    )  # fmt: skip
    assert p.stdout.strip() == ""
    assert "no Markdown to print: nothing in the collection fits" in p.stderr


def test_html_dash_writes_the_page_to_stdout(tmp_path, bundled_index, bundled):
    from conftest import BUNDLED

    args = ("eval", "--self", "--skills", str(BUNDLED), "--index", str(bundled_index))
    p = retrieve(*args, "--html", "-", cwd=tmp_path)
    assert p.stdout.lower().startswith("<!doctype html>") and p.stdout.rstrip().endswith("</html>")
    assert not (tmp_path / "-").exists()  # the defect: a file named "-"
    refused = retrieve(*args, "--html", "-", "--json", check=False, cwd=tmp_path)
    assert refused.returncode == 2 and "cannot go with --json" in refused.stderr


def test_the_hook_names_one_command_when_neither_index_nor_export_exists(tmp_path):
    from conftest import BUNDLED
    from helpers import EVENT, run_hook

    home = tmp_path / "home"  # no ONNX export, no index
    p = run_hook(
        EVENT, "--skills", str(BUNDLED), "--index", str(tmp_path / "index"),
        env={"SKILL_RETRIEVER_HOME": str(home)},
    )  # fmt: skip
    err = p.stderr.decode()
    assert p.returncode == 0 and p.stdout == b""
    assert "retrieve index" in err or "retriever.cli index" in err
    assert f"--index {tmp_path / 'index'}" in err
    assert " search " not in err  # the defect suggested `retrieve search ... test`
    assert json.dumps(err.count("\n")) == "1"
