"""How a handoff rule's trigger is read: a keyword alternation or a natural-language
condition. Read once per index (``compile_rules``): the index embeds the natural-language
rules, the loader reports phrases too long to match, and the query path fires them
(``search.handoffs``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from retriever.phrases import too_long, words
from retriever.skill import HandoffRule, Skill

MAX_KEYWORD_WORDS = 3
_OR = re.compile(r" ?\| ?| or | ?, ?| ?/ ?", re.I)


def rule_phrases(trigger: str) -> tuple[str, ...]:
    """The keyword phrases of a trigger, or ``()`` when it is a natural-language condition.

    Phrases longer than keyword matching reads (``keywords.MAX_PHRASE_WORDS``) are left out
    (the loader reports them, see ``long_phrases``).
    """
    return tuple(p for p in _alternatives(trigger) if not too_long(p))


def long_phrases(trigger: str) -> list[str]:
    """The phrases of a keyword rule too long to be matched as keywords."""
    return [p for p in _alternatives(trigger) if too_long(p)]


def _alternatives(trigger: str) -> list[str]:
    # White space is folded first: the splitting pattern's ``\s*`` around a separator would
    # otherwise retry a long run of spaces at every position (quadratic in its length).
    text = " ".join(trigger.split())
    if not text:
        return []
    if "|" in text:
        return [p for p in re.split(r" ?\| ?", text) if words(p)]
    parts = [p for p in _OR.split(text) if words(p)]
    if parts and all(len(words(p)) <= MAX_KEYWORD_WORDS for p in parts):
        return parts
    return []


@dataclass(frozen=True)
class CompiledRule:
    """A handoff rule with its reading decided once per index: its keyword phrases, or none
    (a natural-language rule, matched by its vector)."""

    skill_id: str
    rule: HandoffRule
    row: int  # row of the rule's vector in the index's rule matrix
    phrases: tuple[str, ...]  # empty: matched semantically

    @property
    def is_keyword(self) -> bool:
        return bool(self.phrases)


def compile_rules(skills: Iterable[Skill]) -> list[CompiledRule]:
    """Every rule of ``skills``, numbered in the one order the index's rule matrix uses
    (skills in order, then each skill's rules)."""
    rules: list[CompiledRule] = []
    for skill in skills:
        for rule in skill.handoffs:
            rules.append(CompiledRule(skill.id, rule, len(rules), rule_phrases(rule.trigger)))
    return rules
