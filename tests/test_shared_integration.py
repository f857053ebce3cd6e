"""The real model and FAISS over the real 462-skill corpus, through the API and the CLI."""

from __future__ import annotations

import json

import pytest
from conftest import DEV_QUERIES, SPAWNER, require_shared
from helpers import retrieve

from retriever.authoring.evaluate import evaluate, read_queries

pytestmark = pytest.mark.shared


def test_index_covers_the_corpus(spawner):
    m = spawner.manifest
    assert m.counts.skills == 462
    assert m.counts.documents > 10 * 462 // 2
    assert m.roots == (str(SPAWNER.resolve()),)


def test_dev_set_quality_floor(holdout):
    """A floor well under what the README reports, to catch a broken ranking, not to tune;
    against the holdout corpus, which lacks each dev query's own text."""
    require_shared(DEV_QUERIES)
    report = evaluate(read_queries(DEV_QUERIES), lambda q: holdout.rank(q, 10))
    assert report.metrics["n"] == 580
    assert report.metrics["R@5"] >= 0.70
    assert report.metrics["MRR@10"] >= 0.55
    assert sum(len(s.checks) for s in holdout.skills) == 4714  # the validations are indexed
    assert any(d.kind == "validation" for d in holdout.documents)


def test_the_benchmarks_refuse_to_read_the_dev_answers(tmp_path):
    """Against the full corpus the dev queries would find their own validation messages:
    the quality benchmark measures them against the holdout corpus and refuses the other."""
    import subprocess
    import sys

    from conftest import REPO

    p = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--skills", str(SPAWNER)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert p.returncode == 2 and "--allow-leak" in p.stderr


def test_real_handoff_rules_fire_on_phrases_not_on_a_lone_word(spawner):
    # caching-patterns' rule 'redis or memcached' -> infrastructure-as-code: 'redis' alone
    # in a question about invalidation is no call for infrastructure work
    r = spawner.search("cache invalidation strategy for redis", k=5)
    assert "caching-patterns" in r.skill_ids[:3]
    assert not [h for h in r.handoffs if h.to_skill == "infrastructure-as-code"]
    # redis-specialist's rule 'Redis cluster or infrastructure': a phrase of two words fires
    # (k=3: the target ranks 4th at k=5, and a handoff to a listed skill is not shown)
    r = spawner.search("provision the redis cluster for our cache layer with terraform", k=3)
    h = next(h for h in r.handoffs if h.from_skill == "redis-specialist")
    assert h.to_skill == "infra-architect" and h.resolved
    assert "'redis cluster' in the query matches rule" in h.reason
    assert "infra-architect" in r.skill_ids


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


@pytest.mark.parametrize(
    "query",
    [
        "users get logged out randomly",
        "scheduled emails go out at the wrong time zone",
        "CORS error from the browser",
    ],
)
def test_everyday_problems_are_answered_possibly_relevant(spawner, query):
    """The issue's examples of real problems refused under the old single threshold: now
    answered, with low confidence (the Markdown says "possibly relevant")."""
    r = spawner.search(query, k=5)
    assert not r.no_match and r.confidence == "low"
    assert spawner.render_markdown(r).startswith("# Possibly relevant skills for:")


def test_a_security_warning_that_shares_a_word_is_not_the_headline(spawner):
    # "CORS configured with wildcard origin" (ai-code-security, ranked 3rd) has the highest
    # cosine; the check of the first ranked skill, about CORS headers missing, is the answer
    r = spawner.search("CORS error from the browser", k=5)
    assert r.skill_ids[0] == "vercel-deployment"
    assert (r.answers[0].skill_id, r.answers[0].field) == ("vercel-deployment", "validations[3]")
    assert "wildcard" not in r.answers[0].summary


def test_everyday_questions_are_refused(spawner):
    for q in (
        "how do I stop my pasta from sticking together",
        "what gear do I need to start rock climbing",
    ):
        r = spawner.search(q, k=3)
        assert r.no_match and r.confidence == "none" and not r.answers
