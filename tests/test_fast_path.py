"""The ONNX fast path gives the sentence-transformers vectors and rankings, and falls back."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import DEV_QUERIES, require_shared

from retriever import SkillRetriever
from retriever.embed import SentenceTransformerEmbedder, make_embedder
from retriever.errors import ModelError
from retriever.onnx_backend import OnnxEmbedder

TEXTS = ["my webhook handler processes the same event twice", "x",
         "A long text " * 100, "Ünïcödé and 日本語 and emoji 🚀"]


@pytest.fixture(scope="module")
def slow():
    return SentenceTransformerEmbedder()


def test_onnx_vectors_equal_sentence_transformers(tmp_path, slow):
    fast = make_embedder(models_home=tmp_path)
    a, b = fast.encode(TEXTS), slow.encode(TEXTS)
    assert a.shape == b.shape == (4, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.9999
    # the export is kept: the next embedder is the ONNX one straight away
    again = make_embedder(models_home=tmp_path)
    assert isinstance(again, OnnxEmbedder)
    assert np.allclose(again.encode(TEXTS), a, atol=1e-5)


def test_torch_backend_is_sentence_transformers(tmp_path):
    assert isinstance(make_embedder(backend="torch", models_home=tmp_path),
                      SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="unknown backend"):
        make_embedder(backend="gpu", models_home=tmp_path)


@pytest.fixture(scope="module")
def unexportable_model(tmp_path_factory, slow):
    """The default model with a Dense layer on top: fine for sentence-transformers, not for
    this module's exporter."""
    from sentence_transformers import SentenceTransformer, models

    base = slow._get()
    dense = models.Dense(in_features=384, out_features=384, bias=False)
    model = SentenceTransformer(modules=[base[0], base[1], dense], device="cpu")
    path = tmp_path_factory.mktemp("dense-model") / "model"
    model.save(str(path))
    return str(path)


def test_unexportable_model_falls_back_with_a_notice(tmp_path, unexportable_model, caplog):
    embedder = make_embedder(unexportable_model, models_home=tmp_path)
    with caplog.at_level(logging.WARNING, logger="retriever.embed"):
        v = embedder.encode(["hello world"])
    assert v.shape == (1, 384)
    assert "fast ONNX path unavailable" in caplog.text and "Dense" in caplog.text
    strict = make_embedder(unexportable_model, backend="onnx", models_home=tmp_path)
    with pytest.raises(ModelError, match="ONNX backend unavailable"):
        strict.encode(["hello world"])


@pytest.mark.shared
def test_same_top10_on_the_dev_queries(spawner, spawner_index):
    """The ranking from the ONNX path equals the sentence-transformers path's, query by query."""
    require_shared(DEV_QUERIES)
    from retriever.evaluate import read_queries

    torch_side = SkillRetriever.open(spawner.manifest["roots"], index_dir=spawner_index,
                                     backend="torch", rebuild="never")
    onnx_side = SkillRetriever.open(spawner.manifest["roots"], index_dir=spawner_index,
                                    backend="onnx", rebuild="never")
    queries = read_queries(DEV_QUERIES)
    differ = [q.id for q in queries
              if onnx_side.search(q.query, k=10).skill_ids
              != torch_side.search(q.query, k=10).skill_ids]
    assert differ == []
