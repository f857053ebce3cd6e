"""Graded confidence through the real pipeline (issue 23, item 3): high / low / none, none
exactly a no match, a low result said to be only possibly relevant wherever it is shown."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.index.center import center_of
from retriever.present.compact import compact_result
from retriever.serve.context import PREAMBLE, PREAMBLE_LOW
from retriever.serve.context import with_preamble as _with_preamble

QUERY = "record each event id and skip events already processed"


@pytest.fixture
def mini(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    return SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)


def test_confidence_is_in_the_json_and_none_is_exactly_no_match(mini):
    r = mini.search(QUERY, k=2)
    d = r.to_dict()
    assert d["confidence"] == r.confidence and d["no_match"] is (r.confidence == "none")
    assert replace(r, no_match=True).confidence == "none"
    assert replace(r, no_match=False, confidence="none").no_match is True
    with pytest.raises(ValueError, match="confidence is one of"):
        replace(r, confidence="maybe")
    # the agent's compact result says it too, a no match included
    assert compact_result(r)["confidence"] == r.confidence
    assert compact_result(replace(r, no_match=True))["confidence"] == "none"


def test_a_low_confidence_rendering_says_possibly_relevant(mini):
    r = mini.search(QUERY, k=2)
    sure = mini.render_markdown(replace(r, confidence="high"), max_chars=4000)
    low = mini.render_markdown(replace(r, confidence="low"), max_chars=4000)
    assert sure.startswith("# Skills for:") and "Possibly" not in sure
    assert low.startswith("# Possibly relevant skills for:") and "Low confidence" in low
    assert "## Webhooks (`webhooks`)" in low
    # the hook keeps saying it, under its own heading
    assert _with_preamble(r.query, low).startswith(PREAMBLE_LOW)
    assert _with_preamble(r.query, sure).startswith(PREAMBLE)
    assert "## Webhooks" in _with_preamble(r.query, low)


def test_the_build_stores_the_collections_center_and_opening_reads_it(mini, tmp_path):
    v = mini._searcher.vectors
    computed = center_of(v.vectors, v.ntotal, v.dimension)
    assert mini.manifest.center is not None
    assert np.allclose(mini.manifest.center, computed, atol=1e-6)
    assert np.allclose(mini._searcher.center, computed, atol=1e-6)
    # the manifest on disk holds it: a reopened index reads it back
    again = SkillRetriever.open(
        tmp_path / "skills", index_dir=tmp_path / "idx", embedder=mini.embedder, rebuild="never"
    )
    assert again.manifest.center == mini.manifest.center
