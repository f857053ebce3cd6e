"""A project's set (the user's roots plus its own folders), built from the served index: the
same collection and the same answers as a build from scratch, an index a later open takes
as up to date, and only the project's files read."""

from __future__ import annotations

from conftest import BUNDLED, write

from retriever.serve.projects import ProjectRetrievers, open_set

QUERIES = [
    "my webhook handler processes the same event twice",
    "the nightly zephyr ledger batch disagrees with the bank statement export",
    "cache invalidation strategy for redis",
]


def _project(root):
    (root / ".git").mkdir(parents=True)
    write(
        root / ".agents" / "skills" / "zephyr-ledger" / "SKILL.md",
        """
        ---
        name: zephyr-ledger
        description: Reconcile the Zephyr ledger's nightly batch against the bank export
        ---
        # Zephyr ledger

        Compare the settlement dates first, then the ledger's rounding rules.
        """,
    )
    # a skill of the same id as a user's: the user's is kept, as the first root wins
    write(
        root / ".claude" / "skills" / "webhooks" / "SKILL.md",
        """
        ---
        name: webhooks
        description: The project's own webhook notes
        ---
        # Webhooks here
        """,
    )
    return root


def test_a_set_built_from_the_served_index_matches_a_build_from_scratch(
    tmp_path, own_home, bundled
):
    from retriever import SkillRetriever

    project = _project(tmp_path / "repo")
    pool = ProjectRetrievers(lambda: bundled, [BUNDLED])
    key = pool.project_roots(str(project / "."))
    assert [p.name for p in key] == ["skills", "skills"] and all(p.is_dir() for p in key)
    roots = [BUNDLED.resolve(), *key]

    fast = open_set(bundled, roots, key)
    assert fast.rebuilt_because == "the project's skills added"
    assert fast.manifest.counts.embedded <= 10  # the project's texts, the rest reused
    whole = SkillRetriever.open(
        roots, index_dir=tmp_path / "whole", embedder=bundled.embedder, rebuild="always"
    )
    assert [s.id for s in fast.skills] == [s.id for s in whole.skills]
    assert fast.skill("webhooks").collection == str(BUNDLED.resolve())  # the user's kept
    assert any(p.code == "duplicate_id" for p in fast.problems)
    for query in QUERIES:
        a, b = fast.search(query, k=5), whole.search(query, k=5)
        assert [(h.id, h.score) for h in a.skills] == [(h.id, h.score) for h in b.skills]
    assert fast.search(QUERIES[1], k=1).skills[0].id == "zephyr-ledger"
    # a later open (another server, the command hook) takes the built index as it is
    again = SkillRetriever.open(roots, embedder=bundled.embedder, rebuild="never")
    assert again.rebuilt_because is None and len(again.skills) == len(fast.skills)
    assert open_set(bundled, roots, key).rebuilt_because is None
