"""The real model and FAISS over the real 462-skill corpus, through the API and the CLI."""

from __future__ import annotations

import json

import pytest
from conftest import DEV_QUERIES, SPAWNER, require_shared
from test_cli import retrieve

from retriever.evaluate import evaluate, read_queries

pytestmark = pytest.mark.shared


def test_index_covers_the_corpus(spawner):
    m = spawner.manifest
    assert m["counts"]["skills"] == 462
    assert m["counts"]["documents"] > 10 * 462 // 2
    assert m["roots"] == [str(SPAWNER.resolve())]


def test_dev_set_quality_floor(spawner):
    """A floor well under what the README reports, to catch a broken ranking, not to tune."""
    require_shared(DEV_QUERIES)
    report = evaluate(read_queries(DEV_QUERIES), lambda q: spawner.search(q, k=10).skill_ids)
    assert report.metrics["n"] == 580
    assert report.metrics["R@5"] >= 0.62
    assert report.metrics["MRR@10"] >= 0.47


def test_real_handoff_rules_fire(spawner):
    r = spawner.search("cache invalidation strategy for redis", k=5)
    assert "caching-patterns" in r.skill_ids[:3]
    h = next(h for h in r.handoffs if h.from_skill == "caching-patterns")
    assert h.to_skill == "infrastructure-as-code" and h.resolved
    assert "infrastructure-as-code" in r.skill_ids


def test_cli_search_and_eval_on_the_real_corpus(spawner, spawner_index, tmp_path):
    p = retrieve(
        "search",
        "--skills",
        str(SPAWNER),
        "--index",
        str(spawner_index),
        "--json",
        "my webhook handler processes the same event twice",
    )
    d = json.loads(p.stdout)
    assert len(d["skills"]) >= 5
    assert any("webhook" in m["text"].lower() for m in d["skills"][0]["matches"])

    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(line for line in DEV_QUERIES.read_text().splitlines(True)[:40]))
    p = retrieve(
        "eval",
        "--skills",
        str(SPAWNER),
        "--index",
        str(spawner_index),
        "--queries",
        str(queries),
        "--json",
    )
    d = json.loads(p.stdout)
    assert d["n"] == 40 and 0 < d["MRR@10"] <= 1
