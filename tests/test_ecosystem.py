"""RAG context within a token budget, the LangChain adapter, lint, many collections."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED, write
from helpers import retrieve
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.authoring.lint import lint
from retriever.load import load_collection


def test_markdown_within_a_token_budget(bundled):
    r = bundled.search("my webhook handler processes the same event twice", k=5)
    count = bundled.embedder.count_tokens
    full = bundled.render_markdown(r, max_chars=100_000)
    for budget in (40, 120, 300, 700):
        md = bundled.render_markdown(r, max_tokens=budget)
        assert count(md) <= budget
        for line in md.splitlines():  # whole blocks only
            assert line in full.splitlines()
    assert count(bundled.render_markdown(r, max_tokens=700)) > 300  # it uses the budget


def test_langchain_adapter(bundled):
    pytest.importorskip("langchain_core", reason="the langchain extra is not installed")
    from retriever.integrations.langchain import SkillLangChainRetriever

    lc = SkillLangChainRetriever(skill_retriever=bundled, k=3, sections=["description", "patterns"])
    docs = lc.invoke("my webhook handler processes the same event twice")
    assert len(docs) >= 3
    assert docs[0].metadata["id"] == "webhooks"
    assert docs[0].page_content.startswith("# Webhooks")
    assert docs[0].metadata["via"] == "semantic" and docs[0].metadata["patterns"]


def test_many_collections_one_index(tmp_path, fake_embedder):
    spawner_root = write_mini(tmp_path / "spawner")
    md_root = tmp_path / "claude"
    write(
        md_root / "pdf-tools/SKILL.md",
        "---\nname: pdf-tools\ndescription: Extract tables from PDF files\n---\n# PDF\n",
    )
    r = SkillRetriever.open(
        [spawner_root, md_root], index_dir=tmp_path / "idx", embedder=fake_embedder
    )
    assert len(r.skills) == 4
    hit = r.search("extract tables from pdf files", k=1).skills[0]
    assert (hit.id, hit.collection) == ("pdf-tools", str(md_root.resolve()))
    webhook = r.search("webhook", k=1).skills[0]
    assert webhook.collection == str(spawner_root.resolve())


def _checks(findings):
    return sorted((f.check, f.skill_id) for f in findings)


def test_lint_findings(tmp_path):
    write(
        tmp_path / "a/one/skill.yaml",
        """
        id: one
        name: One
        description: d
        triggers: [Cache, deploy]
        patterns:
          - name: Hollow
        anti_patterns:
          - name: Also hollow
        handoffs:
          - trigger: x
            to: ghost
    """,
    )
    write(tmp_path / "a/two/skill.yaml", "id: two\nname: Two\ntriggers: [cache]\n")
    write(tmp_path / "a/zdup/skill.yaml", "id: one\nname: Dup\ndescription: d\n")
    # strict: the handoff to 'ghost' listed as an error (by default it is one note, see
    # tests/authoring/test_overlap_lint.py)
    findings = lint(load_collection([tmp_path]), strict=True)
    assert _checks(findings) == [
        ("duplicate-id", "one"),
        ("empty-anti-pattern", "one"),
        ("empty-pattern", "one"),
        ("no-description", "two"),
        ("trigger-collision", "one"),
        ("unknown-handoff-target", "one"),
    ]
    collision = next(f for f in findings if f.check == "trigger-collision")
    assert "'cache' is in 2 skills: one, two" in collision.message


def test_lint_reachability_uses_the_ranking(tmp_path):
    report = load_collection([write_mini(tmp_path / "s")])
    everyone_first = lint(report, rank=lambda q: [s.id for s in report.skills])
    assert not [f for f in everyone_first if f.check == "unreachable"]
    nobody = lint(report, rank=lambda q: ["other"] * 10)
    assert sorted(f.skill_id for f in nobody if f.check == "unreachable") == [
        "queues",
        "security",
        "webhooks",
    ]


def test_lint_cli(tmp_path, bundled_index):
    p = retrieve("lint", "--index", str(bundled_index), "--json", check=False)
    d = json.loads(p.stdout)
    assert p.returncode == 0, d["findings"]  # our own collection is clean, reachable
    assert d["skills"] == len(load_collection([BUNDLED]).skills) and d["findings"] == []
    write(tmp_path / "a/x/skill.yaml", "id: x\nname: X\n")
    p = retrieve("lint", "--skills", str(tmp_path), "--no-reach", check=False)
    assert p.returncode == 1
    assert "warning: no-triggers: x:" in p.stdout and "0 errors, 2 warnings" in p.stdout
