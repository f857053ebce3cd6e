"""``retrieve lint``: findings for skill authors, from the load report and from search itself.

Checks: files that do not load, duplicate ids and handoffs to missing skills (from the load
report); skills with no triggers or no description; the same trigger in several skills
(collisions); patterns and anti-patterns with no text; and, with an index, skills that no
realistic query reaches: in nobody's top 10 for their own name and triggers.

Handoffs to skills outside the collection are how collections are published (a skill hands
off to skills users install separately: 257 such handoffs in the 462 spawner skills), so by
default they are one ``note`` (not a failure) naming the most referred targets; a target
spelled almost like a skill of the collection is a typo and stays an error, with the id it
probably means. ``strict`` lists every one as an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from retriever.load.formats.skill_md import SKILL_MD
from retriever.phrases import words
from retriever.skill import LoadReport, Skill

ERROR = "error"
WARNING = "warning"
NOTE = "note"  # said once, never a failure (the exit code counts errors and warnings)
# An unknown target is taken for a misspelt id of the collection only when it is that id
# but for one letter, punctuation, or a folder before it ('ai/llm-architect'): looser
# likenesses name other skills (on the 462 spawner skills two edits offered 'nft-systems' for
# 'vfx-systems' and 'qa-engineering' for 'ml-engineering', a difflib ratio of 0.85
# 'ui-design' for 'audio-design').
TYPO_EDITS = 1
NAMED_TARGETS = 8  # external targets a note names
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


def _load_findings(report: LoadReport, strict: bool) -> list[Finding]:
    out = []
    for p in report.problems:
        if p.code == "duplicate_id":
            check = "duplicate-id"
        elif p.code == "unresolved_handoff":
            if not strict:
                continue  # told below, from the rules themselves
            check = "unknown-handoff-target"
        else:
            check = "load-problem"
        out.append(Finding(ERROR, check, p.skill_id, p.path, p.reason))
    if not strict:
        out += _handoff_findings(report.skills)
    return out


def _handoff_findings(skills: Sequence[Skill]) -> list[Finding]:
    """Misspelt handoff targets (errors), and one note for the targets outside the
    collection."""
    ids = [s.id for s in skills]
    known = set(ids)
    out: list[Finding] = []
    outside: dict[str, int] = defaultdict(int)
    for s in skills:
        for rule in s.handoffs:
            if rule.target in known:
                continue
            close = meant(rule.target, ids)
            if close:
                out.append(
                    Finding(
                        ERROR,
                        "unknown-handoff-target",
                        s.id,
                        s.path,
                        f"handoff to '{rule.target}' ({rule.origin}), which is not in the "
                        f"collection: did you mean '{close}'?",
                    )
                )
            else:
                outside[rule.target] += 1
    if outside:
        n = sum(outside.values())
        top = sorted(outside.items(), key=lambda x: (-x[1], x[0]))[:NAMED_TARGETS]
        named = ", ".join(f"{t} ({c})" for t, c in top)
        more = f", and {len(outside) - len(top)} more" if len(outside) > len(top) else ""
        out.append(
            Finding(
                NOTE,
                "external-handoffs",
                "",
                "",
                f"{n} handoff{'s' * (n != 1)} to {len(outside)} skill"
                f"{'s' * (len(outside) != 1)} not in this collection, which users install "
                f"separately (--strict lists each): {named}{more}",
            )
        )
    return out


def meant(target: str, ids: Sequence[str]) -> str | None:
    """The id of the collection that ``target`` misspells, if one plainly is."""
    import difflib

    def plain(text: str) -> str:
        return "".join(words(text))

    last = target.rsplit("/", 1)[-1]
    for sid in ids:
        if last == sid or plain(target) == plain(sid):
            return sid
    for sid in difflib.get_close_matches(target, ids, n=3, cutoff=0.8):
        if _edits(target, sid) <= TYPO_EDITS:
            return sid
    return None


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (the few candidates difflib leaves are short ids)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _skill_findings(skill: Skill) -> list[Finding]:
    out = []

    def add(severity: str, check: str, message: str) -> None:
        out.append(Finding(severity, check, skill.id, skill.path, message))

    if not skill.description.strip():
        add(WARNING, "no-description", "no description (and no identity role to stand in)")
    # Agent Skills (SKILL.md) have no triggers field: their description is what routes
    # them, so a missing trigger is no finding there (1,430 on the 1,434-skill corpus)
    if not skill.triggers and skill.format != SKILL_MD:
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
    *,
    strict: bool = False,
) -> list[Finding]:
    """Every finding for a loaded collection; ``rank`` (query -> skill ids) adds reachability;
    ``strict`` lists each handoff to a skill outside the collection as an error."""
    findings = _load_findings(report, strict)
    for s in report.skills:
        findings += _skill_findings(s)
    findings += _collisions(report.skills)
    if rank is not None:
        findings += unreachable(report.skills, rank, progress)
    return findings
