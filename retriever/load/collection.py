"""Load whole collections: parse every discovered skill, report problems, keep the rest.

One broken file never takes the load down: every problem (unreadable or unparseable file,
wrong type, duplicate id, handoff to a skill the collection does not have) becomes a
``LoadProblem`` naming the file and the reason, and the other skills still load.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from retriever.errors import EXPECTED_LAYOUTS
from retriever.load.changes import digest
from retriever.load.discover import scan, unreadable_problems
from retriever.load.files import FileProblem
from retriever.load.formats import BY_NAME
from retriever.load.source import SkillSource, display_path
from retriever.phrases import MAX_PHRASE_WORDS, too_long, words
from retriever.rules import long_phrases
from retriever.skill import LoadProblem, LoadReport, Skill

log = logging.getLogger(__name__)


def _load_one(source: SkillSource, problems: list[LoadProblem]) -> Skill:
    """Parse one skill with its format; ``FileProblem`` when its main file is unusable."""
    if source.problem:
        raise FileProblem(source.problem)
    problems.extend(LoadProblem(p, reason) for p, reason in source.notes)
    return BY_NAME[source.format].parse(source, problems)


def load_sources(sources: list[SkillSource], roots: tuple[str, ...] = ()) -> LoadReport:
    """Parse ``sources`` (as found by ``discover``) into a report of skills and problems."""
    problems: list[LoadProblem] = []
    skills: dict[str, Skill] = {}
    for source in sources:
        try:
            skill = _load_one(source, problems)
        except FileProblem as e:
            problems.append(
                LoadProblem(display_path(source.path), str(e), skipped=True, code="unreadable")
            )
            continue
        except Exception as e:  # noqa: BLE001 - one odd file must never stop the load
            log.debug("unexpected error loading %s", source.path, exc_info=True)
            problems.append(
                LoadProblem(
                    display_path(source.path),
                    f"cannot load skill: {e!r}",
                    skipped=True,
                    code="unreadable",
                )
            )
            continue
        kept = skills.get(skill.id)
        if kept is not None:
            problems.append(
                LoadProblem(
                    skill.path,
                    f"duplicate skill id '{skill.id}': the one from {kept.path} is kept, this "
                    "one is skipped (first root and first path win)",
                    skill.id,
                    skipped=True,
                    code="duplicate_id",
                )
            )
            continue
        skills[skill.id] = skill

    for skill in skills.values():
        problems.extend(_phrase_problems(skill))
        for rule in skill.handoffs:
            if rule.target not in skills:
                problems.append(
                    LoadProblem(
                        skill.path,
                        f"handoff to '{rule.target}', which is not in the collection "
                        f"({rule.origin}); it will be reported as unresolved",
                        skill.id,
                        code="unresolved_handoff",
                    )
                )
    return LoadReport(skills=tuple(skills.values()), problems=tuple(problems), roots=roots)


def _phrase_problems(skill: Skill) -> list[LoadProblem]:
    """Triggers and rule phrases too long to be matched as keywords (still embedded)."""
    out = []
    for i, trigger in enumerate(skill.triggers):
        if too_long(trigger):
            out.append(
                LoadProblem(
                    skill.path,
                    f"triggers[{i}] has {len(words(trigger)):,} words; keyword "
                    f"matching reads triggers of at most {MAX_PHRASE_WORDS} words, so this one "
                    "counts only semantically",
                    skill.id,
                    code="long_phrase",
                )
            )
    for rule in skill.handoffs:
        for phrase in long_phrases(rule.trigger):
            out.append(
                LoadProblem(
                    skill.path,
                    f"a phrase of the handoff rule to '{rule.target}' ({rule.origin}) "
                    f"has {len(words(phrase)):,} words; rule phrases of more than "
                    f"{MAX_PHRASE_WORDS} words are not matched",
                    skill.id,
                    code="long_phrase",
                )
            )
    return out


def load_collection(roots: list[Path] | tuple[Path, ...]) -> LoadReport:
    """Discover and load every skill under ``roots`` (in order: the first root wins a duplicate).

    Raises ``SkillLoadError`` only when a root itself is missing or not a folder.
    """
    sources, walk = scan(roots)
    report = load_sources(sources, tuple(str(Path(r).expanduser().resolve()) for r in roots))
    if walk.unreadable:
        report = replace(report, problems=unreadable_problems(walk) + report.problems)
    empty = [r for r in report.roots if not any(s.root == Path(r) for s in sources)]
    if empty:
        report = LoadReport(
            skills=report.skills,
            problems=report.problems
            + tuple(
                LoadProblem(
                    r,
                    f"no skills found here (expected {EXPECTED_LAYOUTS})",
                    code="empty_root",
                )
                for r in empty
            ),
            roots=report.roots,
        )
    return report


def corpus_fingerprint(
    sources: list[SkillSource], known: dict[str, tuple[list[int], str]] | None = None
) -> str:
    """A hash of every indexed file's path and content, and of the roots they were found in.

    ``known``: ``{path: (stamp, sha256)}`` recorded by an earlier build (``changes``); a
    file whose metadata stamp is the recorded one is not read again. The fingerprint is the
    same either way: it is a hash of contents.
    """
    return digest(sources, known)[0]
