"""How far a build is: the estimate from a timed sample, the count, the lines a log gets."""

from __future__ import annotations

import io
import time

import numpy as np
from conftest import CountingEmbedder

from retriever.index.onnx import sample_batches
from retriever.index.progress import BuildProgress, duration_words


def test_duration_words_say_an_estimate_as_a_person_would():
    assert duration_words(3) == "a few seconds"
    assert duration_words(42) == "about 40 s"
    assert duration_words(150) == "about 2.5 minutes"
    assert duration_words(1400) == "about 23 minutes"


def test_the_sample_is_spread_over_every_length():
    picked = sample_batches(1000, workers=2)
    assert picked[0] == 0 and picked[-1] == 999  # the shortest and the longest
    assert len(picked) == 30  # 3 % of the runs
    gaps = np.diff(picked)
    assert gaps.min() >= 30 and gaps.max() <= 36  # evenly spread
    assert sample_batches(10, workers=2) == sorted(set(sample_batches(10, workers=2)))
    assert len(sample_batches(10, workers=2)) == 6  # at least 3 per worker
    assert sample_batches(0) == []


def test_encode_tracked_estimates_first_then_counts_every_text():
    """The default: a sample spread over the texts' lengths is embedded and timed first,
    the estimate told, then the rest; every text once, in its own row."""
    embedder = CountingEmbedder()
    texts = [f"text {i} " + "word " * (i % 50) for i in range(1000)]
    progress = BuildProgress()
    told: list[tuple[float, int]] = []
    progress.on_estimate = lambda seconds: told.append((seconds, progress.done))
    vectors = embedder.encode_tracked(texts, progress)
    assert np.allclose(vectors, embedder.encode(texts))
    assert sorted(embedder.seen[: len(texts)]) == sorted(texts)  # each embedded once
    assert len(told) == 1 and told[0][0] > 0
    assert told[0][1] == 0  # told before any text was counted
    assert progress.done == progress.total == 1000 and progress.phase == "saving"


def test_lines_every_few_seconds_when_not_a_terminal():
    stream = io.StringIO()
    progress = BuildProgress(show=True, stream=stream, every=0.0)
    progress.begin(200)
    progress.estimated(4.0)
    progress.advance(50)
    time.sleep(0.01)
    progress.advance(50)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("retrieve: 100 of 200 texts embedded, ")
    assert "texts/s" in lines[-1] and "left" in lines[-1]
    snapshot = progress.snapshot()
    assert snapshot["embedded"] == 100 and snapshot["total"] == 200
    assert snapshot["phase"] == "embedding" and snapshot["seconds_left"] is not None
    assert "being built: 100 of 200 texts embedded" in progress.describe()


def test_quiet_progress_writes_nothing_and_still_counts():
    stream = io.StringIO()
    progress = BuildProgress(stream=stream, every=0.0)
    progress.begin(10)
    progress.advance(10)
    progress.finish()
    assert stream.getvalue() == "" and progress.done == 10 and progress.phase == "ready"


def test_time_left_comes_from_the_estimate_until_a_tenth_is_done():
    progress = BuildProgress()
    assert progress.seconds_left() is None
    progress.begin(1000)
    progress.estimated(100.0)
    left = progress.seconds_left()
    assert left is not None and 99.0 <= left <= 100.0
    progress.advance(500)  # half done within milliseconds: the rate says almost nothing left
    left = progress.seconds_left()
    assert left is not None and left < 5.0
