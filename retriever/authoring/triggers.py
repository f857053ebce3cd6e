"""``retrieve eval --triggers``: would retrieval pick each skill for the queries its author
says should (and should not) trigger it?

A skill *triggers* on a query when it is among the top ``k`` ranked skills (default 3, what
``retrieve hook claude-code`` adds to a prompt) and the result is not a no-match (then the
hook adds nothing). Handoff targets joined to a result do not count: they are not ranked.
Per skill: **recall** (the share of its should-trigger queries that trigger it) and **false
triggers** (should-not-trigger queries that do), and for each miss the skill ranked first
instead. ``passed`` counts cases the way skill-creator's ``run_eval.py`` does: a
should-trigger query passes when it triggers, a should-not one when it does not.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from retriever.authoring.trigger_files import TriggerCase

DEFAULT_K = 3
SEEN = 10  # ranks read per query, to say where a missed skill was


@dataclass(frozen=True)
class Ranked:
    """What a search said about one query: the ranked skill ids and whether nothing fits."""

    ids: tuple[str, ...]
    no_match: bool


@dataclass
class Tally:
    """Should-trigger queries and how many triggered; should-not ones and how many did."""

    should: int = 0
    hits: int = 0
    should_not: int = 0
    false_triggers: int = 0

    @property
    def recall(self) -> float | None:
        return self.hits / self.should if self.should else None

    def tally_dict(self) -> dict[str, Any]:
        recall = self.recall
        return {
            "should_trigger": self.should,
            "triggered": self.hits,
            "recall": None if recall is None else round(recall, 4),
            "should_not_trigger": self.should_not,
            "false_triggers": self.false_triggers,
        }


@dataclass
class SkillTriggers(Tally):
    skill_id: str = ""
    misses: list[dict[str, Any]] = field(default_factory=list)  # {query, taken_by, rank, ...}
    false: list[dict[str, Any]] = field(default_factory=list)  # {query, rank}

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            **self.tally_dict(),
            "misses": self.misses,
            "false_trigger_queries": self.false,
        }


@dataclass
class TriggerReport:
    k: int
    cases: int
    passed: int
    seconds: float
    per_skill: list[SkillTriggers]  # worst first
    files: list[str] = field(default_factory=list)

    @property
    def total(self) -> Tally:
        s = self.per_skill
        return Tally(
            sum(x.should for x in s),
            sum(x.hits for x in s),
            sum(x.should_not for x in s),
            sum(x.false_triggers for x in s),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.cases - self.passed,
            **self.total.tally_dict(),
            "seconds": round(self.seconds, 1),
            "files": self.files,
            "per_skill": [s.to_dict() for s in self.per_skill],
        }


def evaluate_triggers(
    cases: Sequence[TriggerCase],
    search: Callable[[str], Ranked],
    k: int = DEFAULT_K,
    progress: Callable[[int], None] | None = None,
) -> TriggerReport:
    """Ask every distinct query once (``search`` ranks at least ``SEEN`` skills) and score
    each case against its skill."""
    started = time.perf_counter()
    answers: dict[str, Ranked] = {}
    for n, q in enumerate(dict.fromkeys(c.query for c in cases), 1):
        answers[q] = search(q)
        if progress:
            progress(n)
    skills: dict[str, SkillTriggers] = {}
    passed = 0
    for c in cases:
        s = skills.setdefault(c.skill_id, SkillTriggers(skill_id=c.skill_id))
        got = answers[c.query]
        rank = got.ids.index(c.skill_id) + 1 if c.skill_id in got.ids else None
        triggered = rank is not None and rank <= k and not got.no_match
        passed += triggered == c.should_trigger
        if c.should_trigger:
            s.should += 1
            s.hits += triggered
            if not triggered:
                first = got.ids[0] if got.ids else None
                s.misses.append(
                    {
                        "query": c.query,
                        # the no-match result adds nothing: no skill took the query
                        "taken_by": None if got.no_match else first,
                        "no_match": got.no_match,
                        "rank": rank,
                        "where": c.where,
                    }
                )
        else:
            s.should_not += 1
            s.false_triggers += triggered
            if triggered:
                s.false.append({"query": c.query, "rank": rank, "where": c.where})
    per_skill = sorted(
        skills.values(),
        key=lambda s: (
            1.0 if s.recall is None else s.recall,
            -s.false_triggers,
            s.skill_id,
        ),
    )
    return TriggerReport(k, len(cases), passed, time.perf_counter() - started, per_skill)


def takers(report: TriggerReport) -> dict[str, int]:
    """The skills ranked first on other skills' missed queries, and how often."""
    out: dict[str, int] = defaultdict(int)
    for s in report.per_skill:
        for m in s.misses:
            if m["taken_by"]:
                out[m["taken_by"]] += 1
    return dict(sorted(out.items(), key=lambda x: (-x[1], x[0])))
