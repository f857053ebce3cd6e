"""The query-side BM25 scorer gives bm25s's own scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DEV_QUERIES, SPAWNER, require_shared

from retriever.index.lexical import LexicalIndex, build_lexical

TEXTS = [
    "The caching layer serves stale data after every deploy",
    "Webhooks deliver the same event twice; idempotency keys help",
    "Running runners ran; the runner's run",
]


def _bm25s_scores(texts, queries):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    model.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    out = []
    for q in queries:
        toks = bm25s.tokenize(
            [q], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )[0]
        out.append(model.get_scores(toks) if toks else np.zeros(len(texts)))
    return np.array(out)


def test_small_corpus_scores_and_round_trip(tmp_path):
    queries = [
        "cache serving stale data",
        "the same event twice twice",
        "run",
        "the a of",
        "unknownword",
    ]
    lex = build_lexical(TEXTS)
    mine = np.array([lex.scores(q) for q in queries])
    assert np.allclose(mine, _bm25s_scores(TEXTS, queries), atol=1e-5)
    assert mine[0].argmax() == 0 and mine[1].argmax() == 1 and mine[2].argmax() == 2
    assert not mine[3].any() and not mine[4].any()  # stopwords only; unknown word
    again = LexicalIndex.from_bytes(lex.to_bytes())
    assert np.allclose([again.scores(q) for q in queries], mine)


@pytest.mark.shared
def test_equal_to_bm25s_on_every_dev_query():
    require_shared(SPAWNER, DEV_QUERIES)
    from retriever.index.build import skill_texts
    from retriever.load import load_collection

    texts = skill_texts(load_collection([SPAWNER]).skills)
    queries = [json.loads(line)["query"] for line in DEV_QUERIES.read_text().splitlines()]
    lex = build_lexical(texts)
    assert np.allclose([lex.scores(q) for q in queries], _bm25s_scores(texts, queries), atol=1e-4)
