"""Metrics on hand-checkable rankings, and query-file errors."""

import math

import pytest

from retriever.authoring.evaluate import evaluate, query_metrics, read_queries
from retriever.errors import QueryError


def test_metrics_of_one_query():
    m = query_metrics(["x", "y", "gold", "z"], ["gold"])
    assert m["R@1"] == 0 and m["R@5"] == 1 and m["R@10"] == 1
    assert m["MRR@10"] == pytest.approx(1 / 3)
    assert m["nDCG@10"] == pytest.approx(1 / math.log2(4))


def test_metrics_two_relevant_and_a_miss():
    m = query_metrics(["a", "x", "b"], ["a", "b"])
    assert m["R@1"] == 0.5 and m["R@5"] == 1.0 and m["MRR@10"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert m["nDCG@10"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    miss = query_metrics([f"s{i}" for i in range(10)] + ["gold"], ["gold"])
    assert miss["R@10"] == 0 and miss["MRR@10"] == 0 and miss["nDCG@10"] == 0


def test_evaluate_averages_and_splits_by_source(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"id": "1", "query": "a", "relevant": ["A"], "source": "s1"}\n'
        '{"id": "2", "query": "b", "relevant": ["B"], "source": "s2"}\n'
    )
    report = evaluate(read_queries(f), lambda q: {"a": ["A"], "b": ["X", "B"]}[q])
    assert report.metrics["n"] == 2
    assert report.metrics["MRR@10"] == pytest.approx((1 + 0.5) / 2)
    assert report.by_source["s1"]["R@1"] == 1 and report.by_source["s2"]["R@1"] == 0
    assert report.run == {"1": ["A"], "2": ["X", "B"]}


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json\n", ":1: not valid JSON"),
        ('{"id": "1", "relevant": ["a"]}\n', "'query' must be a non-empty string"),
        ('{"id": "1", "query": "q", "relevant": "a"}\n', "'relevant' must be a non-empty list"),
        ('{"id": "1", "query": "q", "relevant": ["a"]}\n' * 2, ":2: duplicate query id"),
        ("\n", "no queries"),
    ],
)
def test_bad_query_files(tmp_path, content, message):
    f = tmp_path / "q.jsonl"
    f.write_text(content)
    with pytest.raises(QueryError, match=message):
        read_queries(f)


def test_missing_query_file(tmp_path):
    with pytest.raises(QueryError, match="not found"):
        read_queries(tmp_path / "nope.jsonl")
