"""How far a build is: for the person waiting, and for servers that answer meanwhile.

A first build of a large collection takes minutes; what a user should see is how many texts
it embeds, how long that will take on this machine, and how far it has come. The estimate is
measured, not guessed: the embedder first embeds a sample of the very texts it was given
(spread over their lengths; the vectors are the build's own) on this machine as busy as it
is now, and ``estimated`` is told the seconds the sample predicts for all of them.

While texts are embedded, ``BuildProgress`` draws a bar on a terminal (tqdm) and otherwise
(a CI log, a server's stderr, a pipe) writes one line every ``every`` seconds with texts/s
and the time left. A server that answers before its index is built (``serve.live``) reads
``snapshot`` and ``describe``; the counts are updated from the embedding threads, under a
lock.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

log = logging.getLogger(__name__)

# Seconds between two progress lines when stderr is not a terminal.
LINE_EVERY_S = 10.0


# The first-line estimate times this share of a build's texts (or runs), spread over their
# lengths, and scales it up; the sample's vectors are the build's own.
SAMPLE_SHARE = 0.03


def spread_sample(count: int, least: int) -> list[int]:
    """Which of ``count`` items, ordered by length, the estimate times: ``SAMPLE_SHARE`` of
    them and at least ``least``, evenly spread from the shortest to the longest, so that
    every length is in the sample as often as in the build."""
    if count <= 0:
        return []
    want = min(count, max(least, math.ceil(SAMPLE_SHARE * count)))
    if want == 1:
        return [0]
    return sorted({round(i * (count - 1) / (want - 1)) for i in range(want)})


def duration_words(seconds: float) -> str:
    """``seconds`` as a person says an estimate of it."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 100:
        return f"about {max(10, 5 * round(seconds / 5))} s"
    minutes = seconds / 60
    if minutes < 10:
        return f"about {round(minutes * 2) / 2:g} minutes"
    return f"about {round(minutes)} minutes"


class BuildProgress:
    """The texts a build embeds, counted as they are done.

    ``show``: draw the bar (or write the lines) on ``stream`` (default stderr); quiet
    otherwise, the counts are kept all the same. Phases: ``"starting"`` (the roots are read,
    the model loaded), ``"embedding"``, ``"ready"`` (or ``"failed"``).
    """

    def __init__(
        self, *, show: bool = False, stream: IO[str] | None = None, every: float = LINE_EVERY_S
    ) -> None:
        self.show = show
        self.stream = stream
        self.every = every
        self.phase = "starting"
        self.total = 0
        self.done = 0
        self.estimate: float | None = None  # seconds, from the timed sample
        self._started: float | None = None
        self._last_line = 0.0
        self._bar: Any = None
        self._lock = threading.Lock()
        # told the estimate as soon as it is known (the build's first line)
        self.on_estimate: Callable[[float], None] | None = None

    @classmethod
    def of(cls, progress: bool | BuildProgress | None) -> BuildProgress:
        """``progress`` as given to a build: a ``BuildProgress`` as is, a flag as ``show``."""
        return progress if isinstance(progress, BuildProgress) else cls(show=bool(progress))

    # -- told by the embedder ----------------------------------------------------------------

    def begin(self, total: int) -> None:
        """``total`` texts are about to be embedded."""
        with self._lock:
            self.phase, self.total, self.done = "embedding", total, 0
            self._started = self._last_line = time.monotonic()
        if self.show and total and self._terminal():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc="embedding", unit="text", file=self._out())
            except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
                self._bar = None

    def estimated(self, seconds: float) -> None:
        """The timed sample says embedding every text takes ``seconds``."""
        with self._lock:
            self.estimate = seconds
        if self.on_estimate is not None:
            self.on_estimate(seconds)

    def advance(self, n: int) -> None:
        """``n`` more texts are embedded."""
        with self._lock:
            self.done += n
            now = time.monotonic()
            due = self.show and self._bar is None and now - self._last_line >= self.every
            if due:
                self._last_line = now
        if self._bar is not None:
            self._bar.update(n)
        elif due:
            print(f"retrieve: {self.describe_counts()}", file=self._out(), flush=True)

    def embedded(self) -> None:
        """Every text is embedded; the index is being put together and saved."""
        self.finish("saving")

    def finish(self, phase: str = "ready") -> None:
        with self._lock:
            self.phase = phase
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- read by people and servers ----------------------------------------------------------

    def seconds_left(self) -> float | None:
        """From the rate so far once a tenth is done (the machine's load moves), else from
        the sample's estimate."""
        with self._lock:
            done, total, started, estimate = self.done, self.total, self._started, self.estimate
        if started is None or not total:
            return None
        elapsed = time.monotonic() - started
        if done >= max(1, total // 10) and elapsed > 0:
            return (total - done) * elapsed / done
        if estimate is not None:
            return max(0.0, estimate - elapsed)
        return None

    def rate(self) -> float | None:
        with self._lock:
            done, started = self.done, self._started
        if started is None or not done:
            return None
        elapsed = time.monotonic() - started
        return done / elapsed if elapsed > 0 else None

    def describe_counts(self) -> str:
        """``"4,200 of 14,769 texts embedded, 95 texts/s, about 1.5 minutes left"``."""
        parts = [f"{self.done:,} of {self.total:,} texts embedded"]
        rate = self.rate()
        if rate is not None:
            parts.append(f"{rate:.0f} texts/s")
        left = self.seconds_left()
        if left is not None:
            parts.append(f"{duration_words(left)} left")
        return ", ".join(parts)

    def describe(self) -> str:
        """What the build is doing, in a sentence for a client that asked too early."""
        if self.phase == "embedding":
            return f"the skill index is being built: {self.describe_counts()}"
        if self.phase == "starting":
            return "the skill index is being opened (reading the skill files, loading the model)"
        if self.phase == "saving":
            return f"the skill index is being saved ({self.total:,} texts embedded)"
        return f"the skill index is {self.phase}"

    def snapshot(self) -> dict[str, Any]:
        left = self.seconds_left()
        return {
            "phase": self.phase,
            "embedded": self.done,
            "total": self.total,
            "seconds_left": None if left is None else round(left, 1),
        }

    def _out(self) -> IO[str]:
        return self.stream or sys.stderr

    def _terminal(self) -> bool:
        try:
            return self._out().isatty() and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            return False
