"""What skills say about problems: validation checks, sharp edges and the contexts work comes
to them in are read from the side files of both spawner layouts, indexed as documents of
their own kinds, and shown, with their fix, when a query describes them."""

from __future__ import annotations

import json

import pytest
from conftest import write
from helpers import retrieve

from retriever import SkillRetriever
from retriever.index.documents import (
    HANDOFF_IN,
    INDEXED_KINDS,
    RECEIVES,
    SHARP_EDGE,
    VALIDATION,
    collection_documents,
)
from retriever.load import load_collection


def write_problem_skills(root):
    write(root / "ops/queues/skill.yaml", "id: queues\nname: Queues\ndescription: Brokers\n")
    write(
        root / "ops/queues/validations.yaml",
        """
        validations:
          - id: no-dlq
            name: Queue Without Dead Letters
            severity: warning
            message: "Messages that keep failing are retried forever."
            fix_action: "Give every queue a dead-letter queue."
          - id: only-a-name
            name: Visibility timeout shorter than the job
        """,
    )
    write(
        root / "ops/queues/sharp-edges.yaml",
        """
        sharp_edges:
          poison-message:
            summary: One bad message blocks the whole partition.
            situation: A consumer crashes on a malformed payload and is restarted.
            symptoms: [consumer lag grows without bound, the same offset in every crash log]
            why: The message is redelivered first after every restart.
            solution: |
              Catch the failure, park the message in a dead-letter topic, and move on.
              Alert on the dead-letter rate.
        """,
    )
    write(
        root / "ops/queues/collaboration.yaml",
        """
        receives_from:
          - skill: webhooks
            context: Incoming events must be processed off the request path
            receives: [event payload]
        """,
    )
    write(
        root / "api/webhooks/skill.yaml",
        """
        id: webhooks
        name: Webhooks
        description: Receiving webhooks
        handoffs:
          - trigger: "background job|queue"
            to: queues
            context: Move slow processing into a worker
        """,
    )
    # the flat layout: <id>-validations.yaml and <id>-sharp-edges.yaml beside <id>.yaml
    write(root / "flat/cron.yaml", "id: cron\nname: Cron\ndescription: Scheduled jobs\n")
    write(
        root / "flat/cron-validations.yaml",
        "validations: {overlap: {message: Two runs of the job overlap}}\n",
    )
    write(
        root / "flat/cron-sharp-edges.yaml",
        "sharp_edges: [{title: Daylight saving runs the job twice}]\n",
    )
    return root


def test_side_files_of_both_layouts_are_read(tmp_path):
    report = load_collection([write_problem_skills(tmp_path)])
    skills = report.by_id()
    queues = skills["queues"]
    assert [(c.name, c.message, c.fix) for c in queues.checks] == [
        (
            "Queue Without Dead Letters",
            "Messages that keep failing are retried forever.",
            "Give every queue a dead-letter queue.",
        ),
        ("Visibility timeout shorter than the job", "", ""),
    ]
    edge = queues.sharp_edges[0]
    assert edge.summary == "One bad message blocks the whole partition."
    assert edge.symptoms == (
        "consumer lag grows without bound",
        "the same offset in every crash log",
    )
    assert edge.solution.startswith("Catch the failure")
    assert [(r.context, r.from_skill) for r in queues.receives] == [
        ("Incoming events must be processed off the request path", "webhooks")
    ]
    cron = skills["cron"]
    assert [c.message for c in cron.checks] == ["Two runs of the job overlap"]
    assert [e.summary for e in cron.sharp_edges] == ["Daylight saving runs the job twice"]
    assert report.problems == ()


def test_documents_of_the_problem_kinds(tmp_path):
    report = load_collection([write_problem_skills(tmp_path)])
    docs = [d for d in collection_documents(report.skills) if d.skill_id == "queues"]
    by_kind = {d.kind: d for d in docs if d.item == 0}
    assert by_kind[VALIDATION].text == (
        "Messages that keep failing are retried forever. Fix: Give every queue a dead-letter queue."
    )
    assert by_kind[VALIDATION].field == "validations[0]"
    assert by_kind[SHARP_EDGE].text.startswith(
        "One bad message blocks the whole partition. A consumer crashes"
    )
    assert "Symptoms: consumer lag grows without bound; the same offset" in by_kind[SHARP_EDGE].text
    # the check with only a name is indexed by its name
    assert [d.text for d in docs if d.kind == VALIDATION][1] == (
        "Visibility timeout shorter than the job"
    )
    # receives and incoming handoff contexts are built, but measured not to help: not indexed
    assert RECEIVES not in INDEXED_KINDS and HANDOFF_IN not in INDEXED_KINDS
    assert not [d for d in docs if d.kind in (RECEIVES, HANDOFF_IN)]


def test_receives_and_incoming_documents_when_indexed(tmp_path, monkeypatch):
    import retriever.index.documents as documents

    monkeypatch.setattr(documents, "INDEXED_KINDS", documents.KINDS)
    report = load_collection([write_problem_skills(tmp_path)])
    docs = [d for d in documents.collection_documents(report.skills) if d.skill_id == "queues"]
    assert [(d.field, d.text) for d in docs if d.kind in (RECEIVES, HANDOFF_IN)] == [
        ("receives[0]", "Incoming events must be processed off the request path"),
        ("handoffs_in[0]", "Move slow processing into a worker"),
    ]


@pytest.fixture(scope="module")
def gotcha_result(bundled):
    return bundled.search(
        "our signature checks on incoming events broke once a JSON body parser ran for the "
        "whole app",
        k=3,
    )


def test_a_described_gotcha_comes_first_with_its_fix(bundled, gotcha_result):
    r = gotcha_result
    assert r.skills[0].id == "webhooks"
    first = r.answers[0]
    assert (first.skill_id, first.kind, first.field) == ("webhooks", SHARP_EDGE, "sharp_edges[0]")
    edge = bundled.skill("webhooks").sharp_edges[0]
    assert first.summary == edge.summary and first.fix == edge.solution
    assert r.skills[0].answers[0] == first
    d = r.to_dict()
    assert d["answers"][0]["summary"] == edge.summary and "fix" in d["answers"][0]
    assert d["skills"][0]["answers"][0]["field"] == "sharp_edges[0]"


def test_the_gotcha_leads_the_terminal_and_the_markdown(bundled, gotcha_result):
    from retriever.present.terminal import format_result

    text = format_result(gotcha_result)
    edge = bundled.skill("webhooks").sharp_edges[0]
    lines = text.splitlines()
    assert lines[1].startswith("Known problem (webhooks sharp_edges[0]): " + edge.summary[:30])
    assert lines[2].startswith("  fix: " + edge.solution[:40])
    assert "gotcha (" in text
    md = bundled.render_markdown(gotcha_result, max_chars=6000)
    block = md.split("## Webhooks (`webhooks`)", 1)[1]
    assert block.split("\n\n")[1].startswith(f"- **Known problem: {edge.summary}**")
    assert f"  - Fix: {edge.solution}" in block


def test_a_check_answers_too_and_get_skill_renders_the_new_sections(bundled):
    from retriever.present.skill import skill_markdown

    r = bundled.search("the HMAC signature is compared with a plain == which leaks timing", k=3)
    assert any(a.kind == VALIDATION and a.skill_id == "webhooks" for a in r.answers)
    md = skill_markdown(bundled.skill("webhooks"), ["sharp_edges", "validations"])
    assert "## Sharp edges" in md and "## Checks" in md and "- Fix:" in md


def test_no_match_answers_nothing(bundled):
    """The listed skills of a no-match result are the nearest, not answers: none of their
    gotchas or checks is offered as the answer to a question about something else."""
    r = bundled.search("how do I bake sourdough bread with a crisp crust", k=5)
    assert r.no_match and r.skills
    assert r.answers == () and all(s.answers == () for s in r.skills)
    assert r.to_dict()["answers"] == []


def test_cli_json_carries_the_answers(bundled_index):
    p = retrieve(
        "search",
        "the HMAC signature is compared with a plain == which leaks timing",
        "--json",
        "--index",
        str(bundled_index),
    )
    d = json.loads(p.stdout)
    assert d["answers"] and {"summary", "fix", "kind", "field", "score", "skill_id"} <= set(
        d["answers"][0]
    )


# -- handoff precision --------------------------------------------------------------------


def test_a_lone_common_word_does_not_fire_a_rule_on_its_own(tmp_path, fake_embedder):
    write(
        tmp_path / "a/essays/skill.yaml",
        """
        id: essays
        name: Essays
        description: Writing essays about history and literature
        triggers: [essay]
        handoffs:
          - trigger: "write|copy|marketing copy"
            to: copywriting
        """,
    )
    write(
        tmp_path / "a/copywriting/skill.yaml",
        """
        id: copywriting
        name: Copywriting
        description: Landing page copy, taglines and product descriptions that sell
        """,
    )
    r = SkillRetriever.open(tmp_path, index_dir=tmp_path / "idx", embedder=fake_embedder)
    unrelated = r.handoffs_for("help me write an essay about the roman empire", ["essays"])
    assert unrelated == []  # 'write' alone, and the query is nothing like copywriting
    phrase = r.handoffs_for("an essay on why marketing copy fails", ["essays"])
    assert [h.to_skill for h in phrase] == ["copywriting"]  # two words fire on their own
    near = r.handoffs_for(
        "write landing page copy taglines and product descriptions that sell", ["essays"]
    )
    assert [h.to_skill for h in near] == ["copywriting"]
    assert "similar to copywriting" in near[0].reason


def test_mcp_compact_result_leads_with_the_answers(gotcha_result):
    from retriever.present.compact import compact_result

    compact = compact_result(gotcha_result)
    assert list(compact)[:2] == ["query", "answers"]
    first = compact["answers"][0]
    assert first["skill"] == "webhooks" and first["kind"] == SHARP_EDGE and first["fix"]


def test_search_says_when_a_side_file_could_not_be_read(tmp_path, bundled_index):
    """A sharp-edges.yaml saved half-way loses the skill's gotchas: `search` says so on
    stderr (the skill itself still loads and is searched)."""
    import shutil

    from conftest import BUNDLED

    skills = tmp_path / "skills"
    shutil.copytree(BUNDLED / "backend", skills / "backend")
    edges = skills / "backend" / "webhooks" / "sharp-edges.yaml"
    edges.write_text(edges.read_text(encoding="utf-8") + "\n  - [never closed\n", "utf-8")
    p = retrieve("search", "--skills", str(skills), "--index", str(tmp_path / "idx"), "webhook")
    assert f"{edges} could not be read, so its skill is searched without it" in p.stderr
    assert "invalid YAML" in p.stderr
    report = json.loads(retrieve("index", "--skills", str(skills), "--index",
                                 str(tmp_path / "idx"), "--json").stdout)  # fmt: skip
    assert any(pr["path"] == str(edges) for pr in report["problems"])
