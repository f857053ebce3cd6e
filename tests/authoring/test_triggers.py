"""`retrieve eval --triggers`: skill-creator trigger evals read where authors keep them, and
each skill's recall, false triggers and the skill that took each miss."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import BUNDLED, write
from helpers import retrieve

from retriever.authoring.trigger_files import (
    find_trigger_files,
    read_trigger_evals,
    skill_folders,
)
from retriever.authoring.triggers import Ranked, evaluate_triggers
from retriever.errors import QueryError
from retriever.load import load_collection

SAMPLES = sorted(BUNDLED.rglob("evals/trigger-evals.json"))


def _collection(root: Path):
    for sid in ("pdf-tools", "spreadsheets"):
        write(
            root / sid / "SKILL.md",
            f"---\nname: {sid}\ndescription: Work with {sid}. Use when asked about {sid}.\n---\n"
            "# Body\n",
        )
    return load_collection([root]).skills


def _read(path, skills):
    return read_trigger_evals(path, skill_folders(skills), [s.id for s in skills])


def test_a_list_in_the_skill_folder_is_that_skills(tmp_path):
    skills = _collection(tmp_path / "skills")
    write(
        tmp_path / "skills/pdf-tools/evals/trigger-evals.json",
        json.dumps(
            [
                {"query": "merge these two PDFs", "should_trigger": True},
                {"query": "convert json to yaml", "should_trigger": False},
            ]
        ),
    )
    # skill-creator's workspace beside the skill, with its own file name
    write(
        tmp_path / "spreadsheets-workspace/trigger_evals.json",
        json.dumps([{"query": "add a profit column to q4.xlsx", "should_trigger": True}]),
    )
    cases = _read(tmp_path, skills)
    assert [(c.skill_id, c.query, c.should_trigger) for c in cases] == [
        ("pdf-tools", "merge these two PDFs", True),
        ("pdf-tools", "convert json to yaml", False),
        ("spreadsheets", "add a profit column to q4.xlsx", True),
    ]
    assert cases[1].where.endswith("trigger-evals.json[1]")


def test_jsonl_and_the_wrapped_shape_name_their_skill(tmp_path):
    skills = _collection(tmp_path / "skills")
    jsonl = write(
        tmp_path / "all.jsonl",
        '{"query": "split a pdf", "should_trigger": true, "skill": "pdf-tools"}\n\n'
        '{"query": "pivot table", "should_trigger": false, "skill": "pdf-tools"}\n',
    )
    assert [(c.skill_id, c.should_trigger, c.where) for c in _read(jsonl, skills)] == [
        ("pdf-tools", True, f"{jsonl}:1"),
        ("pdf-tools", False, f"{jsonl}:3"),
    ]
    wrapped = write(
        tmp_path / "w.json",
        json.dumps(
            {
                "skill_name": "spreadsheets",
                "evals": [{"query": "sum col C", "should_trigger": True}],
            }
        ),
    )
    assert [c.skill_id for c in _read(wrapped, skills)] == ["spreadsheets"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "not valid JSON"),
        ('{"a": 1}', "expected a JSON list of"),
        ('[{"query": "x", "should_trigger": "yes"}]',
         "[0]: 'should_trigger' must be true or false, not 'yes'"),
        ('[{"query": " ", "should_trigger": true}]', "[0]: 'query' must be a non-empty string"),
        ('[{"query": "x", "should_trigger": true, "skill": "pdf-tool"}]',
         "skill 'pdf-tool' is not in the collection (did you mean pdf-tools?)"),
        ('{"skill_name": "pdf-tools", "evals": [{"prompt": "p", "expected_output": "o"}]}',
         "output-quality evals.json"),
        ('[{"query": "x", "should_trigger": true}]', "cannot tell which skill this query is for"),
    ],
)  # fmt: skip
def test_bad_input_names_the_file_the_item_and_the_value(tmp_path, text, message):
    skills = _collection(tmp_path / "skills")
    bad = write(tmp_path / "elsewhere/bad.json", text)
    with pytest.raises(QueryError) as e:
        _read(bad, skills)
    assert str(bad) in str(e.value) and message in str(e.value)


def test_a_folder_without_trigger_evals_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(QueryError, match="no trigger evals under .*trigger-evals.json"):
        find_trigger_files(tmp_path / "empty")
    with pytest.raises(QueryError, match="not found"):
        find_trigger_files(tmp_path / "missing")


def test_recall_false_triggers_and_who_took_each_miss(tmp_path):
    skills = _collection(tmp_path / "skills")
    cases = _read(
        write(
            tmp_path / "t.jsonl",
            "\n".join(
                json.dumps({"query": q, "should_trigger": s, "skill": "pdf-tools"})
                for q, s in [("top", True), ("fourth", True), ("nothing fits", True),
                             ("other first", False), ("far", False)]
            ),
        ),
        skills,
    )  # fmt: skip
    answers = {
        "top": Ranked(("pdf-tools", "spreadsheets"), False),
        "fourth": Ranked(("a", "b", "c", "pdf-tools"), False),
        "nothing fits": Ranked(("pdf-tools",), True),  # first, but no match adds nothing
        "other first": Ranked(("spreadsheets", "pdf-tools"), False),  # in the top 3
        "far": Ranked(("spreadsheets",), False),
    }
    report = evaluate_triggers(cases, answers.__getitem__, k=3)
    (s,) = report.per_skill
    assert (s.should, s.hits, s.should_not, s.false_triggers) == (3, 1, 2, 1)
    assert s.recall == pytest.approx(1 / 3) and report.passed == 2 and report.cases == 5
    assert [(m["query"], m["taken_by"], m["rank"], m["no_match"]) for m in s.misses] == [
        ("fourth", "a", 4, False),
        ("nothing fits", None, 1, True),
    ]
    assert s.false == [{"query": "other first", "rank": 2, "where": f"{tmp_path}/t.jsonl:4"}]
    assert evaluate_triggers(cases, answers.__getitem__, k=4).per_skill[0].hits == 2


def test_the_bundled_samples_are_measured_as_the_search_ranks_them(bundled):
    """The sample evals shipped with the bundled skills, asked of the real model: each
    case's verdict is what a search with the hook's k says."""
    assert len(SAMPLES) >= 4
    cases = read_trigger_evals(
        BUNDLED, skill_folders(bundled.skills), [s.id for s in bundled.skills]
    )

    def search(q):
        r = bundled.search(q, k=10)
        return Ranked(tuple(h.id for h in r.skills if h.via != "handoff"), r.no_match)

    report = evaluate_triggers(cases, search, k=3)
    assert report.cases == len(cases) >= 40 and len(report.per_skill) == len(SAMPLES)
    for c in cases:
        r = bundled.search(c.query, k=3)
        top = [h.id for h in r.skills if h.via != "handoff"][:3]
        triggered = c.skill_id in top and not r.no_match
        s = next(x for x in report.per_skill if x.skill_id == c.skill_id)
        if c.should_trigger and not triggered:
            assert c.query in [m["query"] for m in s.misses]
        if not c.should_trigger and triggered:
            assert c.query in [f["query"] for f in s.false]
    # measured: 22 of 24 should-trigger queries trigger, 1 false trigger of 20
    assert report.total.recall >= 0.8 and report.total.false_triggers <= 3


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: dict[str, str] = {}
        self.attrs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.attrs.append(a)
        if tag == "a" and a.get("data-file"):
            self.links[a["data-file"]] = a["href"] or ""
        for name in ("src", "href"):
            assert not (a.get(name) or "").startswith("http"), "no external assets"


def test_cli_eval_triggers_text_json_and_html(tmp_path, bundled_index, bundled):
    page = tmp_path / "triggers.html"
    p = retrieve(
        "eval", "--triggers", str(BUNDLED), "--json", "--html", str(page),
        "--index", str(bundled_index),
    )  # fmt: skip
    data = json.loads(p.stdout)
    assert data["k"] == 3 and data["cases"] == data["passed"] + data["failed"] >= 40
    assert {s["skill_id"] for s in data["per_skill"]} == {
        "webhooks", "caching", "rate-limiting", "authentication",
    }  # fmt: skip
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    assert "script" not in parser.tags and "link" not in parser.tags
    assert any(a.get("data-cases") == str(data["cases"]) for a in parser.attrs)
    # every skill links to the file it is written in
    paths = {s.id: s.path for s in bundled.skills}
    for sid in ("webhooks", "caching"):
        url = urlparse(parser.links[sid])
        assert url.scheme == "file" and Path(unquote(url.path)) == Path(paths[sid]).absolute()
    misses = sum(len(s["misses"]) for s in data["per_skill"])
    assert sum("data-miss" in a for a in parser.attrs) == misses
    text = retrieve("eval", "--triggers", str(BUNDLED), "--index", str(bundled_index)).stdout
    assert f"passed {data['passed']} of {data['cases']}" in text and "recall" in text
    bad = retrieve("eval", "--triggers", str(tmp_path), "--index", str(bundled_index), check=False)
    assert bad.returncode == 2 and f"no trigger evals under {tmp_path}" in bad.stderr
