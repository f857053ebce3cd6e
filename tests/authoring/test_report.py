"""The self-evaluation page: every skill links to its file, every confusion bar shows an
example question, and the page stays one file that needs nothing else."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from retriever.authoring.report import render_html
from retriever.authoring.selfeval import self_evaluate


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.examples: dict[str, str] = {}  # pair -> the example under its bar
        self._pair: str | None = None
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("href"):
            self.hrefs.append(a["href"])
        if a.get("src"):
            self.srcs.append(a["src"])
        if tag == "g" and a.get("data-pair"):
            self._pair = a["data-pair"]
        if tag == "text" and a.get("data-example") is not None and self._pair:
            self.examples[self._pair] = a["data-example"] or ""


@pytest.fixture(scope="module")
def page(bundled):
    report = self_evaluate(bundled.index, bundled.embedder, folds=5)
    paths = {s.id: s.path for s in bundled.skills}
    return report, paths, render_html(report, "bundled skills", paths)


def test_every_skill_links_to_its_file(page):
    report, paths, html = page
    parser = _Page()
    parser.feed(html)
    linked = {Path(unquote(urlparse(h).path)) for h in parser.hrefs}
    assert all(urlparse(h).scheme == "file" for h in parser.hrefs)
    assert all(p.is_file() for p in linked)
    # each skill in the worst-skills table links to the file it is written in
    for s in report.per_skill[:10]:
        assert Path(paths[s.skill_id]).absolute() in linked


def test_every_confusion_bar_shows_an_example_question(page):
    report, _, html = page
    parser = _Page()
    parser.feed(html)
    bars = report.pairs[:20]
    assert bars, "the bundled collection has confusion pairs to draw"
    assert parser.examples == {f"{p['skill']}|{p['taken_by']}": p["example"] for p in bars}


def test_the_page_is_self_contained(page):
    _, _, html = page
    parser = _Page()
    parser.feed(html)
    assert parser.srcs == [] and "script" not in parser.tags and "link" not in parser.tags
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
