"""``retrieve lint --overlap``: the pairs of skills the retriever really confuses.

A pair is reported on evidence, not on resemblance alone:

- **they take each other's questions** in ``eval --self`` (``selfeval``): each ranked first
  on at least one of the other's own questions, together at least ``MIN_COLLISIONS`` of
  them and ``MIN_SHARE`` of all their questions. Every skill loses some questions to
  someone (on the 462 spawner skills R@1 is 0.46), so one stray question either way is
  noise; a pair trading a tenth of their questions is a confusion an author can fix;
- or **near-identical cards that share a trigger**: card vectors at least ``CARD_TWIN``
  similar and a trigger in common, so that the keyword fallback cannot tell them apart
  either. Cards alone are not enough: ``unity-llm-integration`` and
  ``unreal-llm-integration`` have cards 0.83 similar and lose nothing to each other.

Pairs are ranked by that evidence: the share of their questions they take from each other,
then the card similarity. The hint follows the evidence: **merge** only near-identical cards
that also collide (``MIN_SHARE`` of their questions); otherwise **sharpen** the description
or triggers of the skill that loses more, naming the words that collide (the shared
triggers, else the words both cards use).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retriever.authoring.lint import WARNING, Finding, trigger_owners
from retriever.phrases import words

if TYPE_CHECKING:
    from retriever.authoring.selfeval import SelfEvalReport
    from retriever.index.tables import SkillIndex

# Card cosines above this are rare in real collections (10 pairs of 106,491 at 0.80 in the
# 462-skill corpus, 3 at 0.85) and mark skills that say the same thing.
CARD_TWIN = 0.80
# Chosen on the 462 spawner skills' `eval --self` (6,093 questions): pairs trading questions
# both ways, 4 or more and 10% or more of their questions, are 75 of the 2,393 pairs that
# lost any question to each other; below that the pairs are mostly unrelated skills that
# each lost a stray question or two (debugging-master and tech-debt-manager, 2 + 1).
MIN_COLLISIONS = 4
MIN_SHARE = 0.10
CHECK = "near-twin"
# The documented bar for a collection: no pair loses more than this share of its questions
# to each other in `retrieve eval --self` (the bundled collection is held to it by a test).
COLLISION_LIMIT = 0.25
COMMON_WORDS = 6  # card words named in a hint


@dataclass(frozen=True)
class Twin:
    """One reported pair and its evidence."""

    a: str
    b: str
    card: float  # cosine of the card vectors
    shared: tuple[str, ...]  # shared triggers
    lost: dict[str, int]  # skill -> how many of its questions the other ranked first
    share: float  # the share of both skills' questions ranked under the other
    measured: bool = True  # eval --self was run (else ``lost`` is unknown, not zero)

    @property
    def collisions(self) -> int:
        return sum(self.lost.values())

    @property
    def merge(self) -> bool:
        """Near-identical cards that collide: a tenth of their questions in eval --self when
        it was run (one stray question is no reason to merge), else a shared trigger (all
        that is known then)."""
        collide = self.share >= MIN_SHARE if self.measured else bool(self.shared)
        return self.card >= CARD_TWIN and collide


def collision_share(report: SelfEvalReport, a: str, b: str) -> float:
    """The share of the questions of ``a`` and ``b`` that ranked the other first."""
    lost = sum(p["count"] for p in report.pairs if {p["skill"], p["taken_by"]} == {a, b})
    asked = {s.skill_id: s.questions for s in report.per_skill}
    total = asked.get(a, 0) + asked.get(b, 0)
    return lost / total if total else 0.0


def _lost(report: SelfEvalReport | None) -> dict[frozenset[str], dict[str, int]]:
    out: dict[frozenset[str], dict[str, int]] = defaultdict(dict)
    for p in report.pairs if report else ():
        out[frozenset((p["skill"], p["taken_by"]))][p["skill"]] = p["count"]
    return out


def find_twins(index: SkillIndex, report: SelfEvalReport | None = None) -> list[Twin]:
    """The pairs the evidence says are confused, most confused first. Without ``report``
    only the near-identical cards with a shared trigger can be told."""
    import numpy as np

    card_row = {d.skill_id: row for row, d in enumerate(index.documents) if d.kind == "card"}
    skills = [s for s in index.skills if s.id in card_row]
    ids = [s.id for s in skills]
    number = {sid: n for n, sid in enumerate(ids)}
    cards = index.vectors.all_vectors()[[card_row[sid] for sid in ids]]
    similar = cards @ cards.T
    shared: dict[frozenset[str], set[str]] = defaultdict(set)
    for t, owners in trigger_owners(skills).items():
        for x in owners:
            for y in owners:
                if x.id < y.id:
                    shared[frozenset((x.id, y.id))].add(t)
    asked = {s.skill_id: s.questions for s in report.per_skill} if report else {}
    lost = _lost(report)
    close = {
        frozenset((ids[i], ids[j]))
        for i, j in zip(*np.nonzero(np.triu(similar, 1) >= CARD_TWIN), strict=True)
    }
    twins = []
    for pair in set(lost) | close:
        a, b = sorted(pair)
        if a not in number or b not in number:
            continue
        taken = lost.get(pair, {})
        total = asked.get(a, 0) + asked.get(b, 0)
        share = sum(taken.values()) / total if total else 0.0
        card = float(similar[number[a], number[b]])
        trading = len(taken) == 2 and sum(taken.values()) >= MIN_COLLISIONS and share >= MIN_SHARE
        if trading or (pair in close and shared.get(pair)):
            common = tuple(sorted(shared.get(pair, ())))
            twins.append(Twin(a, b, card, common, taken, share, report is not None))
    twins.sort(key=lambda t: (-t.share, -t.collisions, -t.card, t.a, t.b))
    return twins


def overlap_findings(index: SkillIndex, report: SelfEvalReport | None = None) -> list[Finding]:
    """The twins of ``index``'s skills as lint findings, most confused first."""
    by_id = {s.id: s for s in index.skills}
    stop = index.lexical.stopwords
    out = []
    for t in find_twins(index, report):
        parts = [f"'{t.a}' and '{t.b}' are near twins"]
        if t.collisions:
            sides = " and ".join(
                f"{t.lost.get(x, 0)} of {x}'s went to {y}" for x, y in ((t.a, t.b), (t.b, t.a))
            )
            parts.append(
                f"in eval --self {t.collisions} of their own questions ranked the other first "
                f"({t.share:.0%}: {sides})"
            )
        parts.append(f"cards {t.card:.2f} similar")
        if t.shared:
            parts.append("shared triggers " + ", ".join(f"'{x}'" for x in t.shared))
        out.append(
            Finding(
                WARNING,
                CHECK,
                t.a,
                by_id[t.a].path,
                "; ".join(parts) + ". " + _hint(t, by_id, stop),
            )
        )
    return out


def _hint(t: Twin, by_id: dict, stop: frozenset[str]) -> str:
    if t.merge:
        why = "eval --self mixes them up" if t.measured else "they share triggers"
        return f"Hint: merge them: their cards say nearly the same thing and {why}"
    # the one that loses more of its questions is the one whose text must say what only it does
    loser, other = sorted((t.a, t.b), key=lambda x: (-t.lost.get(x, 0), x))
    if t.shared:
        collide = "the shared triggers " + ", ".join(f"'{x}'" for x in t.shared)
    else:
        common = _card_words(by_id[loser]) & _card_words(by_id[other])
        named = sorted(w for w in common if w not in stop and len(w) > 2)[:COMMON_WORDS]
        collide = (
            "the words both cards use: " + ", ".join(f"'{w}'" for w in named)
            if named
            else "what both cards say"
        )
    return (
        f"Hint: sharpen the description and triggers of '{loser}' so that they say what "
        f"'{other}' does not; they collide on {collide}"
    )


def _card_words(skill) -> set[str]:
    return set(words(f"{skill.name} {skill.description}"))
