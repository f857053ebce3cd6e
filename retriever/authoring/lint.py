"""``retrieve lint``: findings for skill authors, from the load report and from search itself.

Checks: files that do not load, duplicate ids and handoffs to missing skills (from the load
report); skills with no triggers or no description; the same trigger in several skills
(collisions); patterns and anti-patterns with no text; and, with an index, skills that no
realistic query reaches: in nobody's top 10 for their own name and triggers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from retriever.phrases import words
from retriever.skill import LoadReport, Skill

ERROR = "error"
WARNING = "warning"
REACH_QUERIES = 6  # the name and up to five triggers per skill
REACH_K = 10


@dataclass(frozen=True)
class Finding:
    severity: str
    check: str
    skill_id: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _load_findings(report: LoadReport) -> list[Finding]:
    out = []
    for p in report.problems:
        if p.code == "duplicate_id":
            check = "duplicate-id"
        elif p.code == "unresolved_handoff":
            check = "unknown-handoff-target"
        else:
            check = "load-problem"
        out.append(Finding(ERROR, check, p.skill_id, p.path, p.reason))
    return out


def _skill_findings(skill: Skill) -> list[Finding]:
    out = []

    def add(severity: str, check: str, message: str) -> None:
        out.append(Finding(severity, check, skill.id, skill.path, message))

    if not skill.description.strip():
        add(WARNING, "no-description", "no description (and no identity role to stand in)")
    if not skill.triggers:
        add(WARNING, "no-triggers", "no triggers: keyword fallback cannot reach this skill")
    for i, p in enumerate(skill.patterns):
        if not (p.description or p.when or p.example):
            add(WARNING, "empty-pattern", f"patterns[{i}] '{p.name}' has a name and no text")
    for i, a in enumerate(skill.anti_patterns):
        if not (a.description or a.why or a.instead):
            add(
                WARNING,
                "empty-anti-pattern",
                f"anti_patterns[{i}] '{a.name}' has a name and no text",
            )
    return out


def trigger_owners(skills: Sequence[Skill]) -> dict[str, list[Skill]]:
    """Each trigger, written as its words (case and punctuation aside), and the skills that
    have it, in skill order: what keyword matching sees as the same trigger."""
    owners: dict[str, list[Skill]] = defaultdict(list)
    for s in skills:
        for t in dict.fromkeys(" ".join(words(t)) for t in s.triggers):
            if t:
                owners[t].append(s)
    return owners


def _collisions(skills: tuple[Skill, ...]) -> list[Finding]:
    out = []
    for phrase, ss in sorted(trigger_owners(skills).items(), key=lambda x: tuple(x[0].split())):
        if len(ss) > 1:
            names = ", ".join(s.id for s in ss)
            out.append(
                Finding(
                    WARNING,
                    "trigger-collision",
                    ss[0].id,
                    ss[0].path,
                    f"trigger '{phrase}' is in {len(ss)} skills: {names}",
                )
            )
    return out


def reach_queries(skill: Skill) -> list[str]:
    """The realistic queries a skill should answer: its name and its first triggers."""
    return list(dict.fromkeys([skill.name, *skill.triggers[: REACH_QUERIES - 1]]))


def unreachable(
    skills: tuple[Skill, ...],
    rank: Callable[[str], list[str]],
    progress: Callable[[int], None] | None = None,
) -> list[Finding]:
    """Skills in nobody's top ``REACH_K`` for their own name and triggers."""
    out = []
    for n, s in enumerate(skills, 1):
        if not any(s.id in rank(q)[:REACH_K] for q in reach_queries(s) if words(q)):
            out.append(
                Finding(
                    WARNING,
                    "unreachable",
                    s.id,
                    s.path,
                    f"not in the top {REACH_K} for its own name or triggers "
                    f"({'; '.join(reach_queries(s))[:120]})",
                )
            )
        if progress:
            progress(n)
    return out


def lint(
    report: LoadReport,
    rank: Callable[[str], list[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Finding]:
    """Every finding for a loaded collection; ``rank`` (query -> skill ids) adds reachability."""
    findings = _load_findings(report)
    for s in report.skills:
        findings += _skill_findings(s)
    findings += _collisions(report.skills)
    if rank is not None:
        findings += unreachable(report.skills, rank, progress)
    return findings
