"""The ONNX fast path: its fp32 export gives the sentence-transformers vectors, its int8
variant (the default) vectors close to them and the same whoever else is embedded with a
text; it falls back when the model cannot be exported."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import DEV_QUERIES, require_shared

from retriever import SkillRetriever
from retriever.errors import ModelError
from retriever.index.embed import SentenceTransformerEmbedder, make_embedder
from retriever.index.onnx import ONNX_FILE, OnnxEmbedder, token_batches

TEXTS = [
    "my webhook handler processes the same event twice",
    "x",
    "A long text " * 100,
    "Ünïcödé and 日本語 and emoji 🚀",
]


@pytest.fixture(scope="module")
def slow():
    return SentenceTransformerEmbedder()


def test_onnx_vectors_equal_sentence_transformers(tmp_path, slow):
    fast = make_embedder(models_home=tmp_path, precision="fp32")
    a, b = fast.encode(TEXTS), slow.encode(TEXTS)
    assert a.shape == b.shape == (4, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.9999
    # the export is kept: the next embedder is the ONNX one straight away
    again = make_embedder(models_home=tmp_path, precision="fp32")
    assert isinstance(again, OnnxEmbedder) and again.variant == "fp32"
    assert np.allclose(again.encode(TEXTS), a, atol=1e-5)
    # MiniLM is a BERT: the export runs fused attention kernels (the fast build path)
    import onnx

    ops = {n.op_type for n in onnx.load(str(again.folder / ONNX_FILE)).graph.node}
    assert "Attention" in ops


def test_many_texts_of_mixed_length_in_padded_batches(slow):
    # More texts than one batch holds, of lengths from one word to past the model's limit:
    # padding inside a batch must not change any vector.
    texts = [" ".join(["word"] * (1 + (i * 37) % 300)) + f" {i}" for i in range(150)]
    fast = make_embedder(backend="onnx", precision="fp32")
    assert isinstance(fast, OnnxEmbedder) or type(fast).__name__ == "_ExportingEmbedder"
    assert (fast.encode(texts) * slow.encode(texts)).sum(axis=1).min() > 0.9999


def test_encode_query_is_encode_and_truncates_in_one_pass(slow):
    fast = make_embedder(backend="onnx")
    for text in TEXTS:
        vector, cut = fast.encode_query(text)
        assert vector.shape == (1, 384)
        assert np.allclose(vector, fast.encode([text]), atol=1e-6)
        assert cut == fast.truncates(text) == slow.truncates(text)
    assert fast.encode_query("A long text " * 100)[1]  # the one text past 256 tokens


def test_token_batches_group_similar_lengths_within_the_budget():
    lengths = [5, 300, 7, 60, 60, 6, 1, 128, 9] * 20
    batches = token_batches(lengths, budget=256, most=8)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every text once
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) <= 8
        assert len(b) == 1 or len(b) * longest <= 256  # a text over the budget goes alone
    maxima = [max(lengths[i] for i in b) for b in batches]
    assert maxima == sorted(maxima)  # short texts first, so batches share a length
    assert token_batches([]) == []


def test_torch_backend_is_sentence_transformers(tmp_path):
    assert isinstance(
        make_embedder(backend="torch", models_home=tmp_path), SentenceTransformerEmbedder
    )
    with pytest.raises(ModelError, match="unknown backend"):
        make_embedder(backend="gpu", models_home=tmp_path)


@pytest.fixture(scope="module")
def unexportable_model(tmp_path_factory, slow):
    """The default model with a Dense layer on top: fine for sentence-transformers, not for
    this module's exporter."""
    from sentence_transformers import SentenceTransformer, models

    base = slow.model
    dense = models.Dense(in_features=384, out_features=384, bias=False)
    model = SentenceTransformer(modules=[base[0], base[1], dense], device="cpu")
    path = tmp_path_factory.mktemp("dense-model") / "model"
    model.save(str(path))
    return str(path)


def test_unexportable_model_falls_back_with_a_notice(tmp_path, unexportable_model, caplog):
    embedder = make_embedder(unexportable_model, models_home=tmp_path)
    with caplog.at_level(logging.WARNING, logger="retriever.index.embed"):
        v = embedder.encode(["hello world"])
    assert v.shape == (1, 384)
    assert "fast ONNX path unavailable" in caplog.text and "Dense" in caplog.text
    strict = make_embedder(unexportable_model, backend="onnx", models_home=tmp_path)
    with pytest.raises(ModelError, match="ONNX backend unavailable"):
        strict.encode(["hello world"])


def test_int8_variant_is_close_to_fp32_and_independent_of_its_batch(tmp_path, slow):
    """The default precision: the fp32 export quantised once and kept beside it, with an id
    of its own (recorded in manifests, keyed in the cache), vectors near the model's, and a
    text's vector the same alone, among many, and as a query: each text runs alone."""
    int8 = make_embedder(models_home=tmp_path)  # exports, then quantises
    texts = TEXTS + [" ".join(["word"] * (1 + (i * 37) % 300)) + f" {i}" for i in range(40)]
    many = int8.encode(texts)
    assert int8.variant.startswith("int8-dq-s8pc-ffo-") and int8.variant in str(int8.cache_key)
    assert (many * slow.encode(texts)).sum(axis=1).min() > 0.95
    alone = np.vstack([int8.encode([t]) for t in texts])
    assert np.allclose(many, alone, atol=1e-6)
    assert np.allclose(int8.encode_query(TEXTS[0])[0], alone[:1], atol=1e-6)
    again = make_embedder(models_home=tmp_path)  # the quantised export is kept
    assert isinstance(again, OnnxEmbedder) and again.variant == int8.variant
    assert len(again.meta["kept_fp32"]) == 6  # MiniLM's six feed-forward output projections
    fp32 = make_embedder(models_home=tmp_path, precision="fp32")
    assert fp32.cache_key != again.cache_key and fp32.cache_key.endswith("|fp32")
    with pytest.raises(ModelError, match="unknown precision"):
        make_embedder(models_home=tmp_path, precision="int4")


@pytest.mark.shared
@pytest.mark.parametrize(
    "every",
    [
        10,  # a tenth of the dev queries in the default run
        pytest.param(1, marks=pytest.mark.slow),  # all 580 with -m slow (.ci/run runs both)
    ],
)
def test_fp32_export_embeds_the_dev_queries_as_sentence_transformers(slow, every):
    """Query by query, the fp32 ONNX export gives sentence-transformers' vectors (what lets
    an index built with one serve the other)."""
    require_shared(DEV_QUERIES)
    from retriever.authoring.evaluate import read_queries

    fast = make_embedder(backend="onnx", precision="fp32")
    queries = [q.query for q in read_queries(DEV_QUERIES)[::every]]
    assert (fast.encode(queries) * slow.encode(queries)).sum(axis=1).min() > 0.9999


def test_an_index_of_other_vectors_is_stale(tmp_path, bundled, bundled_index):
    """An index records the variant its vectors came from; another precision does not use
    it (queries and documents are always embedded the same way)."""
    from retriever.errors import StaleIndexError

    assert bundled.manifest.variant == bundled.embedder.variant != "fp32"
    with pytest.raises(StaleIndexError, match="vectors, asked for 'fp32'"):
        SkillRetriever.open(
            list(bundled.manifest.roots),
            index_dir=bundled_index,
            precision="fp32",
            rebuild="never",
        )
