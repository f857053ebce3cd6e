"""The real model and FAISS on the bundled collection, through the Python API."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import BUNDLED

from retriever import SkillRetriever


def test_bundled_collection_loads_cleanly(bundled):
    assert len(bundled.skills) >= 20
    assert bundled.problems == ()  # our own collection: no broken files, no dangling handoffs
    assert bundled.manifest.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert bundled.manifest.dimension == 384


def test_default_roots(tmp_path, monkeypatch):
    from retriever.paths import resolve_roots

    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_roots(None) == [BUNDLED.resolve()]  # nothing in the user's folders: bundled
    (tmp_path / ".claude/skills").mkdir(parents=True)
    assert resolve_roots(None) == [(tmp_path / ".claude/skills").resolve()]
    (tmp_path / ".spawner/skills").mkdir(parents=True)
    assert resolve_roots(None) == [
        (tmp_path / ".spawner/skills").resolve(),
        (tmp_path / ".claude/skills").resolve(),
    ]


def test_the_readme_query(bundled):
    r = bundled.search("my webhook handler processes the same event twice", k=5)
    assert r.skills[0].id == "webhooks"
    assert not r.weak
    top = r.skills[0]
    assert top.via == "semantic" and top.matches and top.patterns
    # the best patterns across skills include an idempotency pattern of the webhooks skill
    assert any(p.skill_id == "webhooks" for p in r.patterns)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("users get logged out randomly after the session expires", "authentication"),
        ("the dashboard query takes 30 seconds and the table has no index", "query-performance"),
        ("tests pass locally but fail in CI", "testing-strategy"),
        ("our cache serves stale data after updates", "caching"),
        ("terraform plan wants to destroy the production database", "infrastructure-as-code"),
        ("screen reader users cannot use the dropdown menu", "web-accessibility"),
    ],
)
def test_symptoms_find_the_right_skill(bundled, query, expected):
    assert expected in bundled.search(query, k=3).skill_ids


def test_handoffs_fire_on_real_rules(bundled):
    fired = []
    for q in (
        "verify the webhook signature with hmac before processing",
        "we need a security audit of the payment flow",
        "the webhook consumer must survive the same message arriving twice",
    ):
        # k=1: a handoff to a skill the ranking already lists is not shown
        fired += bundled.search(q, k=1).handoffs
    assert fired, "no handoff rule fired on queries written to trigger them"
    ids = {s.id for s in bundled.skills}
    assert all(h.to_skill in ids and h.resolved for h in fired)


def test_markdown_for_rag(bundled):
    r = bundled.search("my webhook handler processes the same event twice", k=3)
    md = bundled.render_markdown(r, max_chars=1500)
    assert len(md) <= 1500 and md.startswith("# Skills for:") and "Webhooks" in md


def test_index_reopens_without_model_work(bundled_index):
    again = SkillRetriever.open(BUNDLED, index_dir=bundled_index, rebuild="never")
    assert again.rebuilt_because is None


def test_import_is_light():
    code = (
        "import sys, json, retriever\n"
        "from retriever import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'faiss', 'transformers', 'numpy'))\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "query",
    [
        "how long should I let a steak rest after grilling it",
        "which vegetables grow well in partial shade",
        "how do you fold a fitted sheet",
    ],
)
def test_off_topic_queries_are_no_match(bundled, query):
    r = bundled.search(query, k=3)
    assert r.no_match and any("no skill in the collection fits" in n for n in r.notes)
    assert bundled.render_markdown(r) == ""  # no context rather than misleading context


def test_on_topic_queries_are_answered(bundled):
    for q in (
        "my webhook handler processes the same event twice",
        "memcached",
        "tests pass locally but fail in CI",
    ):
        assert not bundled.search(q, k=3).no_match
