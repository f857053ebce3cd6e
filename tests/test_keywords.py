"""Whole-word trigger matching."""

import pytest

from retriever.keywords import PhraseMatcher, contains_phrase, words


@pytest.mark.parametrize("text, phrase, expected", [
    ("The cache is stale", "cache", True),
    ("THE CACHE", "cache", True),
    ("results were cached", "cache", False),  # never a substring inside a word
    ("__pycache__ folder", "cache", False),
    ("set Cache-Control headers", "cache-control", True),
    ("set cache control headers", "cache-control", True),
    ("a thundering herd hit us", "thundering herd", True),
    ("herd thundering", "thundering herd", False),  # order matters
    ("written in c++ and c#", "c++", True),
    ("written in c", "c++", False),
    ("I use c++", "c", False),
    ("react, vue", "react", True),
    ("reactive streams", "react", False),
    ("", "cache", False),
])
def test_whole_words(text, phrase, expected):
    assert contains_phrase(text, phrase) is expected


def test_words():
    assert words("Node.js & C++ / CI-CD_pipeline") == ("node", "js", "c++", "ci", "cd", "pipeline")


def test_matcher_returns_keys_and_the_matched_words():
    m = PhraseMatcher([("cache", ("a", 0)), ("cache stampede", ("a", 1)), ("redis", ("b", 0)),
                       ("stampede", ("c", 0))])
    found = m.find("Our cache stampede took Redis down")
    assert found == {("a", 0): ("cache",), ("a", 1): ("cache", "stampede"),
                     ("b", 0): ("redis",), ("c", 0): ("stampede",)}
    assert m.find("nothing here") == {}
