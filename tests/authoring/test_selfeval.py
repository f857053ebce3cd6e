"""For skill authors: the collection's own questions, each asked of an index without it, the
confusion pairs, near twins, and the self-contained HTML page."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from conftest import write

from retriever import SkillRetriever
from retriever.authoring.overlap import COLLISION_LIMIT, collision_share, overlap_findings
from retriever.authoring.report import render_html
from retriever.authoring.selfeval import fold_of, self_evaluate, self_questions


def twins(root):
    write(
        root / "a/zoo/skill.yaml",
        """
        id: zoo
        name: Zoo keeping
        description: Feeding animals
        triggers: [zoo]
        """,
    )
    write(
        root / "a/zoo/validations.yaml",
        "validations: [{id: z, message: zebra quokka platypus diet}]\n",
    )
    write(
        root / "a/wild/skill.yaml",
        """
        id: wild
        name: Wildlife
        description: Tracking animals in the wild
        triggers: [wildlife]
        patterns:
          - name: Zebra and quokka counts
            description: Count zebra quokka herds
        """,
    )
    write(
        root / "a/wild/collaboration.yaml",
        "receives_from: [{skill: zoo, context: released animals need tracking}]\n",
    )
    return root


def test_a_question_is_asked_of_an_index_without_it(tmp_path, fake_embedder):
    r = SkillRetriever.open(twins(tmp_path), index_dir=tmp_path / "idx", embedder=fake_embedder)
    questions = self_questions(r.skills)
    assert sorted((q.skill_id, q.source, q.field) for q in questions) == [
        ("wild", "receives", "receives[0]"),
        ("zoo", "validation", "validations[0]"),
    ]
    # with its own check indexed the question would find zoo; without it, wild's pattern wins
    assert r.search("zebra quokka platypus diet", k=2).skill_ids[0] == "zoo"
    report = self_evaluate(r.index, r.embedder, folds=2)
    asked = next(i for i, q in enumerate(questions) if q.skill_id == "zoo")
    assert report.ranked[asked][0] == "wild"
    assert report.pairs[0] == {
        "skill": "zoo",
        "taken_by": "wild",
        "count": 1,
        "of": 1,
        "example": "zebra quokka platypus diet",
    }
    assert report.unreached == ["zoo"] and report.takers[0] == {"skill": "wild", "takes": 1}
    # an item's questions share its fold; the fold is stable across calls
    assert fold_of(questions[0], 2) == fold_of(questions[0], 2) in (0, 1)


@pytest.fixture(scope="module")
def bundled_report(bundled):
    return self_evaluate(bundled.index, bundled.embedder, folds=5)


def test_the_bundled_collection_answers_its_own_questions(bundled_report, bundled):
    rep = bundled_report
    assert rep.skills == len(bundled.skills) and rep.questions >= 150
    assert set(rep.by_source) == {"validation", "sharp_edge", "receives"}
    assert rep.overall["R@1"] >= 0.5 and rep.overall["MRR@10"] >= 0.65
    assert len(rep.per_skill) == len(bundled.skills)
    worst = rep.per_skill[0]
    assert worst.metrics["MRR@10"] == min(s.metrics["MRR@10"] for s in rep.per_skill)
    json.dumps(rep.to_dict())


def test_the_bundled_collection_has_no_near_twins_nor_bad_collisions(bundled, bundled_report):
    """The documented bar (README, `retrieve lint --overlap`): no near twins, and no pair
    loses more than COLLISION_LIMIT of its questions to each other."""
    assert overlap_findings(bundled.index, bundled_report) == []
    shares = [
        collision_share(bundled_report, p["skill"], p["taken_by"]) for p in bundled_report.pairs
    ]
    assert max(shares, default=0.0) <= COLLISION_LIMIT


def test_near_twins_are_named_with_their_shared_triggers(tmp_path, fake_embedder):
    for sid in ("alpha", "beta"):
        write(
            tmp_path / f"s/{sid}/skill.yaml",
            f"""
            id: {sid}
            name: Caching layer {sid}
            description: Caching layer for slow services
            triggers: [cache layer, cache invalidation, {sid} extra]
            """,
        )
    r = SkillRetriever.open(tmp_path / "s", index_dir=tmp_path / "idx", embedder=fake_embedder)
    found = overlap_findings(r.index)
    assert len(found) == 1 and found[0].check == "near-twin"
    message = found[0].message
    assert "'alpha' and 'beta' are near twins" in message
    assert "shared triggers 'cache invalidation', 'cache layer'" in message
    assert "Hint: merge them" in message


class _Numbers(HTMLParser):
    """The numbers the page marks with data- attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.overall: dict[str, float] = {}
        self.skills: dict[str, dict[str, float]] = {}
        self.tags: set[str] = set()
        self._skill: str | None = None
        self._metric: str | None = None
        self._source: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "tr":
            self._skill = a.get("data-skill")
        self._metric, self._source = a.get("data-metric"), a.get("data-source")
        for name in ("src", "href"):
            assert not (a.get(name) or "").startswith("http"), "no external assets"

    def handle_data(self, data):
        if self._metric and data.strip():
            value = float(data)
            if self._skill:
                self.skills.setdefault(self._skill, {})[self._metric] = value
            elif not self._source:
                self.overall[self._metric] = value
        self._metric = None


def test_the_html_page_holds_the_numbers_of_the_json(bundled_report):
    page = render_html(bundled_report, "bundled skills")
    parser = _Numbers()
    parser.feed(page)
    data = bundled_report.to_dict()
    assert parser.overall == {m: round(v, 3) for m, v in data["overall"].items() if m != "n"}
    for row in data["per_skill"][:10]:
        assert parser.skills[row["skill_id"]] == {
            m: round(row[m], 3) for m in ("R@1", "R@5", "MRR@10")
        }
    assert "svg" in parser.tags and "script" not in parser.tags  # a picture, no code


def test_cli_eval_self_json_and_html(tmp_path, bundled_index, bundled):
    from helpers import retrieve

    page = tmp_path / "self.html"
    p = retrieve("eval", "--self", "--json", "--html", str(page), "--index", str(bundled_index))
    data = json.loads(p.stdout)
    assert data["skills"] == len(bundled.skills) and data["questions"] >= 150
    assert {"overall", "by_source", "pairs", "unreached", "takers", "per_skill"} <= set(data)
    parser = _Numbers()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.overall == {m: round(v, 3) for m, v in data["overall"].items() if m != "n"}
    text = retrieve("eval", "--self", "--index", str(bundled_index)).stdout
    assert "Confusion pairs" in text and "Worst skills" in text
    bad = retrieve("eval", "--queries", "x.jsonl", "--html", "y", check=False)
    assert bad.returncode == 2 and "--html goes with --self" in bad.stderr


def test_cli_lint_overlap_passes_on_the_bundled_collection(bundled_index, bundled):
    from helpers import retrieve

    p = retrieve(
        "lint", "--overlap", "--no-reach", "--json", "--index", str(bundled_index), check=False
    )
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["findings"] == []
