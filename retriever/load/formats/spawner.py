"""The spawner formats: ``<dir>/skill.yaml`` (one folder per skill) and the flat layout
``<dir>/<id>.yaml``, each with side files beside it (``collaboration``, ``sharp-edges``,
``validations``; ``<id>-collaboration.yaml`` etc. in the flat layout).

Turning a parsed ``skill.yaml`` (and its ``collaboration.yaml``) into a ``Skill``:

Every shape the public spawner collection uses is accepted: ``patterns``, ``anti_patterns``,
``handoffs`` and ``triggers`` as lists or as maps keyed by name; ``identity`` as a string or a
map; anti-pattern fields ``why``/``instead`` or ``problem``/``solution`` (and their cousins);
handoffs keyed ``trigger``/``when``/``situation``/``condition``, ``to``/``skill``/
``delegate_to``, ``context``/``context_template``/``pass``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from retriever.load.files import FileProblem, load_map
from retriever.load.formats.base import SkillFormat
from retriever.load.ids import skill_id as choose_id
from retriever.load.shapes import (
    first_paragraph,
    first_sentence,
    first_text,
    humanize,
    named_items,
    strings_of,
    text_of,
)
from retriever.load.source import (
    COLLABORATION,
    SHARP_EDGES,
    SIDE_ROLES,
    VALIDATIONS,
    SkillSource,
)
from retriever.skill import (
    AntiPattern,
    Check,
    HandoffRule,
    LoadProblem,
    Pattern,
    Receives,
    SharpEdge,
    Skill,
)

SPAWNER = "spawner"
SPAWNER_FLAT = "spawner-flat"
SPAWNER_FILE = "skill.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

PATTERN_DESCRIPTION = ("description", "summary", "what")
PATTERN_WHEN = ("when", "when_to_use", "use_when", "context", "situation")
PATTERN_EXAMPLE = ("example", "implementation", "code_example", "pattern", "template", "code")

ANTI_NAME = ("name", "pattern", "title", "id")
ANTI_DESCRIPTION = ("description", "problem", "wrong", "summary")
ANTI_WHY = ("why", "why_bad", "why_harmful", "impact", "consequence", "problem", "risk")
ANTI_INSTEAD = (
    "instead",
    "what_to_do_instead",
    "solution",
    "fix",
    "what_to_do",
    "right",
    "alternative",
    "better",
)

HANDOFF_TARGET = ("to", "skill", "delegate_to", "target")
HANDOFF_TRIGGER = ("trigger", "when", "situation", "condition", "triggers")
HANDOFF_CONTEXT = ("context", "context_template", "pass", "handoff", "provides", "reason")
# Containers that describe work coming *to* this skill, not rules for handing work away.
INCOMING_KEYS = ("receives_from", "receives_context_from", "accept_from_others", "receives")
# Trigger maps sometimes list file globs beside keywords; globs are not phrases.
TRIGGER_SKIP_KEYS = ("file_patterns", "files", "globs", "paths", "file_globs")


def _pattern(hint: str, item: Any) -> Pattern | None:
    if isinstance(item, dict):
        name = first_text(item, "name", "title", "id") or humanize(hint)
        description = first_text(item, *PATTERN_DESCRIPTION)
        if not name and not description:
            return None
        if not description and not any(k in item for k in PATTERN_WHEN + PATTERN_EXAMPLE):
            # A map of loose facts (e.g. {"rule": ..., "reason": ...}): keep it as text.
            description = text_of({k: v for k, v in item.items() if k not in ("name", "title")})
        return Pattern(
            name=name or first_sentence(description, 80),
            description=description,
            when=first_text(item, *PATTERN_WHEN),
            example=first_text(item, *PATTERN_EXAMPLE),
        )
    text = text_of(item)
    if not text:
        return None
    if hint:  # a map entry whose value is a string or a list: the key names it
        return Pattern(name=humanize(hint), description=text)
    return Pattern(name=first_sentence(text, 80), description=text if len(text) > 80 else "")


def _anti_pattern(hint: str, item: Any) -> AntiPattern | None:
    if isinstance(item, dict):
        name = first_text(item, *ANTI_NAME) or humanize(hint)
        description = first_text(item, *ANTI_DESCRIPTION)
        why = first_text(item, *ANTI_WHY)
        if why == description:
            why = first_text(item, *(k for k in ANTI_WHY if k != "problem"))
        if not (name or description):
            return None
        return AntiPattern(
            name=name or first_sentence(description, 80),
            description=description,
            why=why,
            instead=first_text(item, *ANTI_INSTEAD),
        )
    text = text_of(item)
    if not text:
        return None
    if hint:
        return AntiPattern(name=humanize(hint), description=text)
    return AntiPattern(name=first_sentence(text, 80), description=text if len(text) > 80 else "")


def _clean_target(value: Any) -> str:
    """``"ai-safety-alignment skill"`` -> ``"ai-safety-alignment"``."""
    target = text_of(value)
    if target.lower().endswith(" skill"):
        target = target[: -len(" skill")].strip()
    return target


def handoff_rules(value: Any, origin: str) -> list[HandoffRule]:
    """Every handoff rule found in ``value``, however it is nested.

    A rule is a map with a target key (``to``/``skill``/``delegate_to``). Its trigger is the
    first of ``trigger``/``when``/``situation``/``condition``; a rule with no trigger (e.g.
    ``hands_to: [{skill, provides}]``) is triggered by its context text instead. Containers of
    incoming work (``receives_from`` ...) are skipped.
    """
    rules: list[HandoffRule] = []

    def walk(v: Any, where: str) -> None:
        if isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{where}[{i}]")
            return
        if not isinstance(v, dict):
            return
        target = next(
            (
                _clean_target(v[k])
                for k in HANDOFF_TARGET
                if isinstance(v.get(k), str) and v[k].strip()
            ),
            "",
        )
        if target:
            context = first_text(v, *HANDOFF_CONTEXT)
            trigger = first_text(v, *HANDOFF_TRIGGER) or context
            if trigger:
                rules.append(
                    HandoffRule(
                        target=target,
                        trigger=trigger,
                        context=context,
                        priority=text_of(v.get("priority")),
                        origin=where,
                    )
                )
            return
        for k, x in v.items():
            if str(k) not in INCOMING_KEYS:
                walk(x, f"{where}.{k}")

    walk(value, origin)
    return rules


def _identity(value: Any) -> tuple[str, str]:
    """The identity as text, and the role it names (a map's ``role``, or a first sentence)."""
    if isinstance(value, dict):
        role = text_of(value.get("role"))
        return text_of(value), role
    text = text_of(value)
    return text, first_sentence(text) if text else ""


def skill_from_spawner(
    data: dict[str, Any],
    collaboration: dict[str, Any] | None,
    *,
    skill_id: str,
    fmt: str,
    path: str,
    collection: str,
    collaboration_name: str = "collaboration.yaml",
    file_name: str = "skill.yaml",
) -> Skill:
    """Build a ``Skill`` from a parsed skill map; ``skill_id`` is already decided by the caller."""
    identity, role = _identity(data.get("identity"))
    description = text_of(data.get("description")) or role or first_paragraph(identity)
    name = text_of(data.get("name")) or humanize(skill_id)

    triggers = list(strings_of(data.get("triggers"), skip_keys=TRIGGER_SKIP_KEYS))
    handoffs = handoff_rules(data.get("handoffs"), f"{file_name}:handoffs")
    if collaboration:
        delegation = collaboration.get("delegation_triggers")
        handoffs += handoff_rules(delegation, f"{collaboration_name}:delegation_triggers")
        # Some collaboration files list phrases that call for *this* skill
        # ({phrase, confidence}); they are triggers of this skill, not handoffs.
        for _, item in named_items(delegation):
            if (
                isinstance(item, dict)
                and "phrase" in item
                and not any(k in item for k in HANDOFF_TARGET)
            ):
                phrase = text_of(item["phrase"])
                if phrase:
                    triggers.append(phrase)

    return Skill(
        id=skill_id,
        name=name,
        description=description,
        identity=identity,
        role=role,
        triggers=tuple(dict.fromkeys(triggers)),
        owns=strings_of(data.get("owns")),
        tags=strings_of(data.get("tags")),
        patterns=tuple(
            p for h, x in named_items(data.get("patterns")) if (p := _pattern(h, x)) is not None
        ),
        anti_patterns=tuple(
            a
            for h, x in named_items(data.get("anti_patterns"))
            if (a := _anti_pattern(h, x)) is not None
        ),
        handoffs=tuple(handoffs),
        format=fmt,
        path=path,
        collection=collection,
    )


def _is_side_file(stem: str) -> bool:
    return stem in SIDE_ROLES or any(stem.endswith("-" + s) for s in SIDE_ROLES)


class SpawnerFolderFormat(SkillFormat):
    """``<dir>/skill.yaml``, with ``collaboration.yaml`` and the other side files beside."""

    name = SPAWNER

    def find(self, folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
        if SPAWNER_FILE not in names:
            return [], False
        sides = tuple(
            (role, folder / f"{role}.yaml")
            for role in SIDE_ROLES
            if (folder / f"{role}.yaml").exists()
        )
        return [SkillSource(self.name, folder / SPAWNER_FILE, root, folder.name, sides)], True

    def parse(self, source: SkillSource, problems: list[LoadProblem]) -> Skill:
        return _parse(self.name, source, problems)


class SpawnerFlatFormat(SkillFormat):
    """``<dir>/<id>.yaml`` files, with ``<id>-collaboration.yaml`` etc. beside them."""

    name = SPAWNER_FLAT

    def find(self, folder: Path, names: list[str], root: Path) -> tuple[list[SkillSource], bool]:
        sources = []
        for name in sorted(names):
            stem, suffix = os.path.splitext(name)
            if suffix not in YAML_SUFFIXES or _is_side_file(stem) or name.startswith("."):
                continue
            sides = []
            for role in SIDE_ROLES:
                found = next(
                    (
                        folder / f"{stem}-{role}{s}"
                        for s in YAML_SUFFIXES
                        if (folder / f"{stem}-{role}{s}").exists()
                    ),
                    None,
                )
                if found is not None:
                    sides.append((role, found))
            sources.append(SkillSource(self.name, folder / name, root, stem, tuple(sides)))
        return sources, False

    def parse(self, source: SkillSource, problems: list[LoadProblem]) -> Skill:
        return _parse(self.name, source, problems)


def _side(source: SkillSource, role: str, problems: list[LoadProblem]) -> dict[str, Any] | None:
    """A side file's map, or ``None`` (absent, or broken: reported, the skill still loads)."""
    side = source.side(role)
    if side is None:
        return None
    try:
        return load_map(side, problems)
    except FileProblem as e:
        problems.append(LoadProblem(str(side), str(e), dropped=True, code="side_file"))
        return None


def _parse(fmt: str, source: SkillSource, problems: list[LoadProblem]) -> Skill:
    data = load_map(source.path, problems)
    collaboration = _side(source, COLLABORATION, problems)
    side = source.side(COLLABORATION)
    skill = skill_from_spawner(
        data,
        collaboration,
        skill_id=choose_id(data, source, problems),
        fmt=fmt,
        path=str(source.path),
        collection=str(source.root),
        file_name=source.path.name,
        collaboration_name=side.name if side else "",
    )
    return replace(
        skill,
        checks=checks_of(_side(source, VALIDATIONS, problems)),
        sharp_edges=sharp_edges_of(_side(source, SHARP_EDGES, problems)),
        receives=receives_of(collaboration),
    )


# Validation checks: what a check says it flags, and its fix, under the keys real files use.
CHECK_NAME = ("name", "title")
CHECK_MESSAGE = ("message", "description", "check", "suggestion")
CHECK_FIX = ("fix_action", "fix", "fix_hint", "fix_suggestion", "suggestion")
EDGE_SUMMARY = ("summary", "title", "name")
EDGE_SITUATION = ("situation", "context", "when")
EDGE_SOLUTION = ("solution", "fix", "mitigation", "instead", "what_to_do")
# How other skills hand work to this one (``receives_from`` and its cousins).
RECEIVES_KEYS = ("receives_from", "receives_context_from", "accept_from_others")
RECEIVES_CONTEXT = ("context", "when", "description")


def checks_of(data: dict[str, Any] | None) -> tuple[Check, ...]:
    """The checks of a ``validations.yaml`` (``validations:`` as a list or a map by name)."""
    out = []
    for hint, item in named_items((data or {}).get("validations")):
        if not isinstance(item, dict):
            continue
        name = first_text(item, *CHECK_NAME) or humanize(str(item.get("id") or hint))
        message = first_text(item, *CHECK_MESSAGE)
        fix = first_text(item, *CHECK_FIX)
        if fix == message:
            fix = ""
        if name or message:
            out.append(
                Check(name=name, message=message, fix=fix, severity=text_of(item.get("severity")))
            )
    return tuple(out)


def sharp_edges_of(data: dict[str, Any] | None) -> tuple[SharpEdge, ...]:
    """The gotchas of a ``sharp-edges.yaml`` (``sharp_edges:`` as a list or a map)."""
    out = []
    for hint, item in named_items((data or {}).get("sharp_edges")):
        if not isinstance(item, dict):
            continue
        summary = first_text(item, *EDGE_SUMMARY) or humanize(str(item.get("id") or hint))
        if not summary:
            continue
        out.append(
            SharpEdge(
                summary=summary,
                situation=first_text(item, *EDGE_SITUATION),
                symptoms=strings_of(item.get("symptoms")),
                why=first_text(item, "why", "cause"),
                solution=first_text(item, *EDGE_SOLUTION),
                severity=text_of(item.get("severity")),
            )
        )
    return tuple(out)


def receives_of(collaboration: dict[str, Any] | None) -> tuple[Receives, ...]:
    """The contexts in which other skills hand work to this one."""
    out = []
    for key in RECEIVES_KEYS:
        for _, item in named_items((collaboration or {}).get(key)):
            if not isinstance(item, dict):
                continue
            context = first_text(item, *RECEIVES_CONTEXT)
            if context:
                out.append(Receives(context=context, from_skill=text_of(item.get("skill"))))
    return tuple(dict.fromkeys(out))
