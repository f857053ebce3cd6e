"""Handoff rules: decide which rules of the top skills fire for a query.

A rule's trigger is read (``retriever.rules``) one of two ways:
- a keyword alternation: ``"security audit|penetration"``, ``"frontend or ui or component"``,
  ``"cdn, edge"`` or a short phrase of up to ``MAX_KEYWORD_WORDS`` words. It fires when one of
  its phrases stands in the query as whole words (see ``keywords``);
- a natural-language condition (``when: The consumer must survive duplicates``): it fires when
  the query's embedding is close enough to the rule's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.phrases import PhraseMatcher, words
from retriever.rules import CompiledRule, compile_rules
from retriever.skill import Skill

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Fired:
    """A rule that fired: its source, target, score and why."""

    rule: CompiledRule
    score: float  # 1.0 for a keyword rule, the cosine for a natural-language rule
    reason: str


class HandoffRules:
    """The rules of a collection, compiled once per index, and which of them fire."""

    def __init__(self, skills: Iterable[Skill], rule_vectors: np.ndarray) -> None:
        self.rule_vectors = rule_vectors
        self.by_skill: dict[str, list[CompiledRule]] = defaultdict(list)
        for c in compile_rules(skills):
            self.by_skill[c.skill_id].append(c)
        # keyed by whether the phrase has one word: a lone common word ('write', 'database')
        # does not fire a rule on its own (see ``fire``)
        self._phrases = PhraseMatcher(
            (p, (c.skill_id, c.row, len(words(p)) == 1))
            for cs in self.by_skill.values()
            for c in cs
            for p in c.phrases
        )

    def fire(
        self,
        query: str,
        query_vector: np.ndarray,
        sources: list[str],
        threshold: float,
        target_similarity: Callable[[str], float] | None = None,
        lone_word_threshold: float = 0.0,
    ) -> list[Fired]:
        """The rules of ``sources`` (skill ids, best first) that fire for the query; one per
        (source, target), the best scoring kept, in the order of their sources.

        A keyword rule fires when one of its phrases of two or more words stands in the
        query, or one of its one-word phrases does and the query is at least
        ``lone_word_threshold`` similar to the rule's target (``target_similarity``: the
        target's best document cosine): a lone word such as 'write' or 'database' occurs in
        queries about anything. A natural-language rule fires when its vector's cosine with
        the query reaches ``threshold``. A skill's rule to itself never fires.
        """
        found: dict[int, dict[bool, tuple[str, ...]]] = defaultdict(dict)
        for (sid, row, lone), gram in self._phrases.find(query).items():
            if sid in sources:
                found[row][lone] = gram
        best: dict[tuple[str, str], Fired] = {}
        for sid in sources:
            for c in self.by_skill.get(sid, ()):
                if c.rule.target == sid:
                    continue
                if c.is_keyword:
                    grams = found.get(c.row, {})
                    fired = None
                    if False in grams:
                        gram = grams[False]
                        fired = Fired(
                            c,
                            1.0,
                            f"'{' '.join(gram)}' in the query matches rule '{c.rule.trigger}'",
                        )
                    elif True in grams:
                        near = (
                            target_similarity(c.rule.target)
                            if target_similarity is not None
                            else 1.0
                        )
                        if near >= lone_word_threshold:
                            fired = Fired(
                                c,
                                1.0,
                                f"'{grams[True][0]}' in the query matches rule "
                                f"'{c.rule.trigger}', and the query is {near:.2f} similar to "
                                f"{c.rule.target}",
                            )
                    if fired is None:
                        continue
                else:
                    score = float(self.rule_vectors[c.row] @ query_vector)
                    if score < threshold:
                        continue
                    fired = Fired(
                        c, score, f"the query resembles the rule '{c.rule.trigger}' ({score:.2f})"
                    )
                key = (sid, c.rule.target)
                if key not in best or fired.score > best[key].score:
                    best[key] = fired
        return sorted(best.values(), key=lambda f: (sources.index(f.rule.skill_id), -f.score))
