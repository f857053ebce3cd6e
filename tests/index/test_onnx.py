"""The ONNX fast path gives the sentence-transformers vectors and rankings, and falls back."""

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
    fast = make_embedder(models_home=tmp_path)
    a, b = fast.encode(TEXTS), slow.encode(TEXTS)
    assert a.shape == b.shape == (4, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.9999
    # the export is kept: the next embedder is the ONNX one straight away
    again = make_embedder(models_home=tmp_path)
    assert isinstance(again, OnnxEmbedder)
    assert np.allclose(again.encode(TEXTS), a, atol=1e-5)
    # MiniLM is a BERT: the export runs fused attention kernels (the fast build path)
    import onnx

    ops = {n.op_type for n in onnx.load(str(again.folder / ONNX_FILE)).graph.node}
    assert "Attention" in ops


def test_many_texts_of_mixed_length_in_padded_batches(slow):
    # More texts than one batch holds, of lengths from one word to past the model's limit:
    # padding inside a batch must not change any vector.
    texts = [" ".join(["word"] * (1 + (i * 37) % 300)) + f" {i}" for i in range(150)]
    fast = make_embedder(backend="onnx")
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


@pytest.mark.shared
@pytest.mark.parametrize(
    "every",
    [
        10,  # a tenth of the dev queries in the default run
        pytest.param(1, marks=pytest.mark.slow),  # all 580 with -m slow (.ci/run runs both)
    ],
)
def test_same_top10_on_the_dev_queries(spawner, spawner_index, every):
    """The ranking from the ONNX path equals the sentence-transformers path's, query by query."""
    require_shared(DEV_QUERIES)
    from retriever.authoring.evaluate import read_queries
    from retriever.search.rank import ScoringConfig

    # More candidates than the default 256: a skill whose only near document sits at the
    # 256th place is in one path's candidates and not the other's when the two vectors
    # differ in the 7th decimal (seen once in 580 queries: a tenth skill at 0.19 against
    # 0.18). The ranking rule is the same either way; this compares the embeddings.
    wide = ScoringConfig(candidates=2048)
    torch_side, onnx_side = (
        SkillRetriever.open(
            list(spawner.manifest.roots),
            index_dir=spawner_index,
            backend=backend,
            rebuild="never",
            config=wide,
        )
        for backend in ("torch", "onnx")
    )
    queries = read_queries(DEV_QUERIES)[::every]
    differ = [
        q.id
        for q in queries
        if not same_up_to_ties(onnx_side.search(q.query, k=10), torch_side.search(q.query, k=10))
    ]
    assert differ == []


def same_up_to_ties(a, b, eps: float = 1e-5) -> bool:
    """The two top-10s are equal, except for the order of skills whose scores are equal to
    within ``eps`` (two float paths differ by ~1e-7; real ties exist, e.g. 0.6212267 against
    0.6212266 on one dev query)."""
    sa = {h.id: h.score for h in a.skills}
    sb = {h.id: h.score for h in b.skills}
    if list(sa) == list(sb):
        return True
    for only, scores in ((set(sa) - set(sb), sa), (set(sb) - set(sa), sb)):
        if any(scores[i] - min(scores.values()) > eps for i in only):  # not a tie at the cut
            return False
    common = [i for i in sa if i in sb]
    rank_b = {i: r for r, i in enumerate(i for i in sb if i in sa)}
    return all(
        abs(sa[x] - sa[y]) <= eps
        for n, x in enumerate(common)
        for y in common[n + 1 :]
        if rank_b[x] > rank_b[y]
    )


def test_same_up_to_ties_tells_a_tie_from_a_different_ranking():
    from types import SimpleNamespace as NS

    def result(*pairs):
        return NS(skills=[NS(id=i, score=s) for i, s in pairs])

    a = result(("x", 0.9), ("y", 0.6212267), ("z", 0.6212266))
    assert same_up_to_ties(a, result(("x", 0.9), ("z", 0.6212266), ("y", 0.6212267)))
    assert not same_up_to_ties(a, result(("y", 0.9), ("x", 0.8), ("z", 0.6)))
    assert not same_up_to_ties(a, result(("x", 0.9), ("y", 0.6212267), ("w", 0.7)))
