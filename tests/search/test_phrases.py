"""Whole-word trigger matching."""

import pytest

from retriever.phrases import MAX_PHRASE_WORDS, PhraseMatcher, words


@pytest.mark.parametrize(
    "text, phrase, expected",
    [
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
    ],
)
def test_whole_words(text, phrase, expected):
    assert bool(PhraseMatcher([(phrase, 0)]).find(text)) is expected


def test_words():
    assert words("Node.js & C++ / CI-CD_pipeline") == ("node", "js", "c++", "ci", "cd", "pipeline")


def test_matcher_returns_keys_and_the_matched_words():
    m = PhraseMatcher(
        [
            ("cache", ("a", 0)),
            ("cache stampede", ("a", 1)),
            ("redis", ("b", 0)),
            ("stampede", ("c", 0)),
        ]
    )
    found = m.find("Our cache stampede took Redis down")
    assert found == {
        ("a", 0): ("cache",),
        ("a", 1): ("cache", "stampede"),
        ("b", 0): ("redis",),
        ("c", 0): ("stampede",),
    }
    assert m.find("nothing here") == {}


def test_phrases_longer_than_the_cap_are_never_matched():
    long = " ".join(["word"] * (MAX_PHRASE_WORDS + 1))
    m = PhraseMatcher([(long, "long"), ("word word", "short")])
    assert m.find(long) == {"short": ("word", "word")}


def test_matching_a_long_query_against_many_long_phrases_is_linear():
    """The issue's worst case: 3,000-word phrases and a 5,000-word query (245 s before).

    Not a timing assertion: the trie walks at most MAX_PHRASE_WORDS words from each query
    word, which a step counter on the text shows.
    """
    phrase = " ".join(["alpha"] * 3000)
    m = PhraseMatcher([(phrase, "huge"), (" ".join(["alpha"] * MAX_PHRASE_WORDS), "cap")])
    found = m.find(" ".join(["alpha"] * 5000))
    assert set(found) == {"cap"}  # the 3,000-word phrase is left out, the capped one found
