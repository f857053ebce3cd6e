"""`retrieve lint --budget`: the characters a collection takes in Claude Code's skill listing
and which skills would be listed by name only."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED, write
from helpers import retrieve

from retriever.authoring.budget import (
    ENTRY_CAP,
    ENV,
    FALLBACK,
    budget_findings,
    budget_of,
    listing_budget,
)
from retriever.load import load_collection


def _skill_md(root, sid, description, extra=""):
    write(root / sid / "SKILL.md", f"---\nname: {sid}\ndescription: {description}\n{extra}---\n")


def test_the_budget_follows_claude_codes_figures(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert budget_of()[0] == FALLBACK == 8_000
    assert budget_of(1_000_000)[0] == 40_000  # 1% of the window, 4 characters a token
    monkeypatch.setenv(ENV, "12000")
    assert budget_of(1_000_000) == (12_000, f"{ENV}=12,000")  # the variable wins
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(ValueError, match=f"{ENV}='lots' is not a positive number"):
        budget_of()


def test_names_first_then_descriptions_until_the_budget_is_spent(tmp_path):
    root = tmp_path / "s"
    _skill_md(root, "aaa", "x" * 100)
    _skill_md(root, "bbb", "y" * 100, "when_to_use: " + "w" * 49 + "\n")  # counts: 150
    _skill_md(root, "ccc", "z" * 100)
    _skill_md(root, "ddd", "q" * 2000)  # cut at the cap, and told
    _skill_md(root, "hidden", "h" * 500, "disable-model-invocation: true\n")
    skills = load_collection([root]).skills
    b = listing_budget(skills, 12 + 250, "test")
    assert b.listed == ["aaa", "bbb", "ccc", "ddd"] and b.hidden == ["hidden"]
    assert b.names == 12 and b.descriptions == 100 + 150 + 100 + ENTRY_CAP
    assert b.kept == ["aaa", "bbb"] and b.name_only == ["ddd", "ccc"]  # last listed first
    assert b.capped == {"ddd": 2000}
    findings = budget_findings(b, skills)
    assert [(f.severity, f.check, f.skill_id) for f in findings] == [
        ("warning", "listing-cap", "ddd"),
        ("note", "listing-budget", ""),
    ]
    assert "only 2 of 4 descriptions fit: 2 skills would be listed by name only" in (
        findings[1].message
    )
    roomy = listing_budget(skills, 10_000, "test")
    assert roomy.name_only == [] and "every description fits" in (
        budget_findings(roomy, skills)[-1].message
    )


def test_cli_lint_budget_on_the_bundled_collection():
    unset = {ENV: ""}  # whatever the developer's shell sets for Claude Code
    p = retrieve("lint", "--budget", "--no-reach", "--json", "--skills", str(BUNDLED), env=unset)
    data = json.loads(p.stdout)
    b = data["budget"]
    skills = load_collection([BUNDLED]).skills
    assert b["skills"] == len(skills) and b["budget"] == FALLBACK
    assert b["names"] == sum(len(s.name) for s in skills)
    assert b["characters"] == b["names"] + b["descriptions"]
    assert b["descriptions_kept"] + len(b["name_only"]) == b["skills"]
    assert p.returncode == 0  # the budget is a note, never a failure
    text = retrieve("lint", "--budget", "--no-reach", "--context-window", "1000000",
                    "--skills", str(BUNDLED), env=unset).stdout  # fmt: skip
    assert "against a budget of 40,000" in text and "every description fits" in text
    bad = retrieve("lint", "--context-window", "5", "--skills", str(BUNDLED), check=False)
    assert bad.returncode == 2 and "--context-window goes with --budget" in bad.stderr
