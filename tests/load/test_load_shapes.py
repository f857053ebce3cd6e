"""Loading: every shape of the spawner and SKILL.md formats, and every kind of load problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write

from retriever.errors import SkillLoadError
from retriever.load import discover, load_collection


def load_one(root: Path):
    report = load_collection([root])
    assert len(report.skills) == 1, report.problems
    return report.skills[0], report.problems


def test_list_shapes_and_why_instead(tmp_path):
    write(
        tmp_path / "backend/caching/skill.yaml",
        """
        id: caching
        name: Caching
        description: Cache things safely.
        identity: You are a caching expert. You have seen stampedes.
        owns: [cache-invalidation]
        tags: [redis]
        triggers: [cache, thundering herd]
        patterns:
          - name: Cache-Aside
            description: App reads cache then DB
            when: Fine-grained control
            example: "redis.get(key)"
        anti_patterns:
          - name: No TTL
            description: Keys never expire
            why: Stale forever
            instead: Always set a TTL
        handoffs:
          - trigger: "redis cluster|replication"
            to: infra
            context: Needs cluster provisioning
    """,
    )
    skill, problems = load_one(tmp_path)
    assert skill.id == "caching" and skill.format == "spawner"
    assert skill.triggers == ("cache", "thundering herd")
    assert skill.role == "You are a caching expert."
    p = skill.patterns[0]
    assert (p.name, p.description, p.when, p.example) == (
        "Cache-Aside",
        "App reads cache then DB",
        "Fine-grained control",
        "redis.get(key)",
    )
    a = skill.anti_patterns[0]
    assert (a.name, a.description, a.why, a.instead) == (
        "No TTL",
        "Keys never expire",
        "Stale forever",
        "Always set a TTL",
    )
    h = skill.handoffs[0]
    assert (h.target, h.trigger, h.context) == (
        "infra",
        "redis cluster|replication",
        "Needs cluster provisioning",
    )
    # the target is not in the collection: reported, rule kept
    assert [pr.skill_id for pr in problems] == ["caching"]
    assert "'infra'" in problems[0].reason


def test_map_shapes_identity_map_and_missing_id(tmp_path):
    write(
        tmp_path / "ai/recs/skill.yaml",
        """
        name: Recommendations
        identity:
          role: Recommendation Systems Engineer
          personality: Pragmatic.
          principles: [Measure offline and online]
        triggers:
          keywords: [recommendation, collaborative filtering]
          file_patterns: ["**/recs/**"]
        patterns:
          collaborative_filtering_setup:
            description: Embeddings from interactions
            when: You have interaction data
            pattern: "code here"
          golden_rules:
            - rule: Start simple
              reason: Baselines win
        anti_patterns:
          cold_start_ignored:
            problem: New users get nothing
            solution: Fall back to popularity
        handoffs:
          receives_from:
            - skill: product
              receives: Requirements
          hands_to:
            - skill: search
              provides: Vector search infrastructure
    """,
    )
    skill, _ = load_one(tmp_path)
    assert skill.id == "recs"  # no id: the folder name
    assert skill.description == "Recommendation Systems Engineer"  # no description: the role
    assert skill.triggers == ("recommendation", "collaborative filtering")  # globs left out
    assert [p.name for p in skill.patterns] == ["Collaborative filtering setup", "Golden rules"]
    assert skill.patterns[0].when == "You have interaction data"
    assert skill.patterns[0].example == "code here"
    assert "Start simple" in skill.patterns[1].description
    a = skill.anti_patterns[0]
    assert (a.name, a.description, a.instead) == (
        "Cold start ignored",
        "New users get nothing",
        "Fall back to popularity",
    )
    # receives_from is incoming work, not a handoff; hands_to without a trigger uses its text
    assert [(h.target, h.trigger) for h in skill.handoffs] == [
        ("search", "Vector search infrastructure")
    ]


@pytest.mark.parametrize(
    "rule, expected",
    [
        ({"trigger": "a|b", "to": "x", "context": "c"}, ("x", "a|b", "c", "")),
        ({"when": "Need x", "to": "x", "context": "c"}, ("x", "Need x", "c", "")),
        (
            {"trigger": "t", "to": "x", "context_template": "ct", "priority": "high"},
            ("x", "t", "ct", "high"),
        ),
        ({"when": "w", "to": "x", "pass": "p"}, ("x", "w", "p", "")),
        ({"skill": "x", "trigger": "t"}, ("x", "t", "", "")),
        ({"skill": "x", "when": "w"}, ("x", "w", "", "")),
        ({"situation": "s", "delegate_to": "x", "context": "c"}, ("x", "s", "c", "")),
        ({"trigger": "t", "to": "x skill", "provides": "p"}, ("x", "t", "p", "")),
    ],
)
def test_handoff_key_shapes(tmp_path, rule, expected):
    import yaml

    write(
        tmp_path / "s/a/skill.yaml",
        yaml.safe_dump({"id": "a", "name": "A", "description": "d", "handoffs": [rule]}),
    )
    skill, _ = load_one(tmp_path)
    h = skill.handoffs[0]
    assert (h.target, h.trigger, h.context, h.priority) == expected


def test_collaboration_delegation_triggers_and_phrases(tmp_path):
    write(tmp_path / "s/a/skill.yaml", "id: a\nname: A\ndescription: d\ntriggers: [alpha]\n")
    write(
        tmp_path / "s/a/collaboration.yaml",
        """
        skill: a
        delegation_triggers:
          - trigger: "security audit|penetration"
            delegate_to: sec
            context: Audit it
          - phrase: real-time updates
            confidence: high
    """,
    )
    skill, problems = load_one(tmp_path)
    assert [(h.target, h.trigger, h.origin) for h in skill.handoffs] == [
        ("sec", "security audit|penetration", "collaboration.yaml:delegation_triggers[0]")
    ]
    assert skill.triggers == ("alpha", "real-time updates")


def test_skill_md_block_scalar_and_body(tmp_path):
    write(
        tmp_path / "pdf-tools/SKILL.md",
        """
        ---
        name: pdf-tools
        description: |
          Extract text and tables from PDF files.
          Use when the user mentions PDFs.
        tags: [pdf, documents]
        ---
        # PDF tools

        Intro paragraph.

        ## Extracting tables
        Use camelot for lattice tables.
    """,
    )
    skill, problems = load_one(tmp_path)
    assert problems == ()
    assert skill.format == "skill-md" and skill.id == "pdf-tools"
    assert skill.description.startswith("Extract text and tables from PDF files.\nUse when")
    assert "## Extracting tables" in skill.body
    assert skill.tags == ("pdf", "documents")


def test_skill_md_id_is_folder_name_and_description_fallback(tmp_path):
    write(tmp_path / "docx/SKILL.md", "---\nname: docx-official\n---\n# T\n\nFirst para.\n")
    skill, _ = load_one(tmp_path)
    assert (skill.id, skill.name, skill.description) == ("docx", "docx-official", "First para.")


def test_flat_layout(tmp_path):
    write(tmp_path / "agents/crew/crew.yaml", "id: crew\nname: Crew\ndescription: d\n")
    write(
        tmp_path / "agents/crew/crew-collaboration.yaml",
        """
        delegation_triggers:
          - trigger: graph
            delegate_to: other
    """,
    )
    write(tmp_path / "agents/crew/crew-validations.yaml", "validations: []\n")
    write(tmp_path / "agents/crew/crew-sharp-edges.yaml", "sharp_edges: []\n")
    sources = discover([tmp_path])
    assert [(s.format, s.path.name, s.collaboration.name) for s in sources] == [
        ("spawner-flat", "crew.yaml", "crew-collaboration.yaml")
    ]
    skill, _ = load_one(tmp_path)
    assert skill.handoffs[0].target == "other"


def test_problems_are_reported_and_the_rest_loads(tmp_path):
    write(tmp_path / "a/good/skill.yaml", "id: good\nname: Good\ndescription: fine\n")
    write(tmp_path / "a/broken/skill.yaml", "id: broken\nname: [unclosed\n")
    write(tmp_path / "a/listy/skill.yaml", "- just\n- a list\n")
    write(tmp_path / "a/zdup/skill.yaml", "id: good\nname: Dup\ndescription: again\n")
    write(tmp_path / "a/badid/skill.yaml", "id: 42\nname: Bad id\ndescription: d\n")
    (tmp_path / "a/latin1").mkdir()
    (tmp_path / "a/latin1/skill.yaml").write_bytes(b"id: latin1\nname: caf\xe9\n")
    report = load_collection([tmp_path])
    assert sorted(s.id for s in report.skills) == ["badid", "good"]
    reasons = {Path(p.path).parent.name: p.reason for p in report.problems}
    assert "invalid YAML" in reasons["broken"] and "line 3" in reasons["broken"]
    assert "expected a map" in reasons["listy"] and "list" in reasons["listy"]
    assert "duplicate skill id 'good'" in reasons["zdup"]
    assert "field 'id' should be a one-line name" in reasons["badid"]
    assert "not valid UTF-8" in reasons["latin1"]
    assert report.by_id()["good"].name == "Good"  # the first one is kept


def test_duplicate_across_roots_first_root_wins(tmp_path):
    write(tmp_path / "one/x/skill.yaml", "id: x\nname: One\ndescription: d\n")
    write(tmp_path / "two/x/skill.yaml", "id: x\nname: Two\ndescription: d\n")
    report = load_collection([tmp_path / "one", tmp_path / "two"])
    assert [s.name for s in report.skills] == ["One"]
    assert "duplicate skill id 'x'" in report.problems[0].reason


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(SkillLoadError, match="not found"):
        load_collection([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    report = load_collection([tmp_path / "empty"])
    assert report.skills == () and "no skills found" in report.problems[0].reason


def test_safe_yaml_only(tmp_path):
    write(
        tmp_path / "a/evil/skill.yaml",
        "id: evil\nname: !!python/object/apply:os.system ['echo pwned']\n",
    )
    report = load_collection([tmp_path])
    assert report.skills == ()
    assert "invalid YAML" in report.problems[0].reason
