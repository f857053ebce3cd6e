"""Handoff rules: decide which rules of the top skills fire for a query.

A rule's trigger is read (``retriever.rules``) one of two ways:
- a keyword alternation: ``"security audit|penetration"``, ``"frontend or ui or component"``,
  ``"cdn, edge"`` or a short phrase of up to ``MAX_KEYWORD_WORDS`` words. It fires when one of
  its phrases stands in the query as whole words (see ``keywords``);
- a natural-language condition (``when: The consumer must survive duplicates``): it fires when
  the query's embedding is close enough to the rule's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.phrases import PhraseMatcher, words
from retriever.rules import CompiledRule, compile_rules
from retriever.skill import Skill

if TYPE_CHECKING:
    import numpy as np

# A one-word rule phrase ('publish', 'deploy', 'database') is asked for when a request cue
# stands at most ``CUE_WINDOW`` words before it in its clause ("we also need help with the
# database", "then deploy it"), and its clause does not say the work is not wanted or
# already done ("no video this time", "the backend already runs"). Written after reading
# the cases of benchmarks/queries/handoffs-lone.jsonl; the 64 older cases, not read for it,
# move 0.85/0.88 -> 0.91/0.94 precision/recall (benchmarks/handoffs.py).
REQUEST_CUES = frozenset(
    {"need", "needs", "want", "wants", "help", "please", "also", "then", "next", "now",
     "how", "plan", "add", "let"}
)  # fmt: skip
NOT_ASKED = frozenset({"no", "not", "without", "never", "nothing", "already"})
CUE_WINDOW = 6
_CLAUSE_END = re.compile(r"[;.,:!?]")


def _clauses(text: str) -> list[tuple[str, ...]]:
    """The words of each clause of ``text`` (split at ; . , : ! ?), "n't" read as "not"."""
    text = re.sub(r"n[\u2019']t\b", " not", text.lower())
    return [words(part) for part in _CLAUSE_END.split(text)]


def word_asked(text: str, word: str) -> bool | None:
    """Whether ``text`` asks for ``word`` (one lower-case word): ``True`` when a clause holds
    it after a request cue (at most ``CUE_WINDOW`` words before) and says nothing of the work
    being unwanted or done; ``False`` when every clause holding it says so (``NOT_ASKED``),
    or none holds it; ``None`` (neither) otherwise."""
    found = False
    for clause in _clauses(text):
        if word not in clause:
            continue
        if NOT_ASKED.intersection(clause):
            continue
        found = True
        at = clause.index(word)
        if REQUEST_CUES.intersection(clause[max(0, at - CUE_WINDOW) : at]):
            return True
    return None if found else False


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
        asked_threshold: float | None = None,
    ) -> list[Fired]:
        """The rules of ``sources`` (skill ids, best first) that fire for the query; one per
        (source, target), the best scoring kept, in the order of their sources.

        A keyword rule fires when one of its phrases of two or more words stands in the
        query. A lone word such as 'write' or 'database' occurs in queries about anything,
        so a rule matched only by one-word phrases fires when the query asks for that work
        (``word_asked``) and is at least ``asked_threshold`` similar to the rule's target
        (``target_similarity``: the target's best document cosine), or, asked or not, is at
        least ``lone_word_threshold`` similar to it; never when every clause holding the
        word says the work is unwanted or done. ``asked_threshold=None`` reads no request
        cues (the rule before them: similarity alone). A natural-language rule fires when
        its vector's cosine with the query reaches ``threshold``. A skill's rule to itself
        never fires.
        """
        found: dict[int, dict[bool, list[tuple[str, ...]]]] = defaultdict(dict)
        for (sid, row, lone), gram in self._phrases.find(query).items():
            if sid in sources:
                found[row].setdefault(lone, []).append(gram)
        best: dict[tuple[str, str], Fired] = {}
        for sid in sources:
            for c in self.by_skill.get(sid, ()):
                if c.rule.target == sid:
                    continue
                if c.is_keyword:
                    grams = found.get(c.row, {})
                    fired = None
                    if False in grams:
                        gram = grams[False][0]
                        fired = Fired(
                            c,
                            1.0,
                            f"'{' '.join(gram)}' in the query matches rule '{c.rule.trigger}'",
                        )
                    elif True in grams:
                        fired = self._lone_word(
                            c, query, [g[0] for g in grams[True]], target_similarity,
                            lone_word_threshold, asked_threshold,
                        )  # fmt: skip
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

    @staticmethod
    def _lone_word(
        c: CompiledRule,
        query: str,
        found: list[str],
        target_similarity: Callable[[str], float] | None,
        lone_word_threshold: float,
        asked_threshold: float | None,
    ) -> Fired | None:
        """A keyword rule matched only by one-word phrases (``found``, the words): fired or
        not (see ``fire``)."""
        near = target_similarity(c.rule.target) if target_similarity is not None else 1.0
        if asked_threshold is None:  # similarity alone
            asked: dict[str, bool | None] = dict.fromkeys(found)
        else:
            asked = {w: word_asked(query, w) for w in found}
        open_words = [w for w in found if asked[w] is not False]
        if not open_words:  # every clause with the words says the work is unwanted or done
            return None
        wanted = [w for w in open_words if asked[w]]
        if wanted and asked_threshold is not None and near >= asked_threshold:
            why = f"the query asks for '{wanted[0]}' (rule '{c.rule.trigger}')"
        elif near >= lone_word_threshold:
            why = f"'{open_words[0]}' in the query matches rule '{c.rule.trigger}'"
        else:
            return None
        return Fired(c, 1.0, f"{why}, and the query is {near:.2f} similar to {c.rule.target}")
