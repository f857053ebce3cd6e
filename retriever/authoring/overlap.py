"""``retrieve lint --overlap``: near-twin skills, and how much they collide.

A pair of skills is a near twin when their cards are very close (cosine of the card vectors
at least ``CARD_TWIN``), when they share two or more triggers, or when they share one and
the self-evaluation (``selfeval``) saw questions of one ranked under the other. Each finding
names the shared triggers and the two closest texts of the pair, says how many of their own
questions went to the other, and hints at the fix: merge the two, or sharpen the triggers and
description of one. Findings are sorted by that collision count.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from retriever.authoring.lint import WARNING, Finding, trigger_owners

if TYPE_CHECKING:
    from retriever.authoring.selfeval import SelfEvalReport
    from retriever.index.tables import SkillIndex

# Card cosines above this are rare in real collections (3 pairs of 106,491 at 0.85 in the
# 462-skill corpus, 10 at 0.80) and mark skills that say the same thing.
CARD_TWIN = 0.80
CHECK = "near-twin"
# The documented bar for a collection: no pair loses more than this share of its questions
# to each other in `retrieve eval --self` (the bundled collection is held to it by a test).
COLLISION_LIMIT = 0.25


def collision_share(report: SelfEvalReport, a: str, b: str) -> float:
    """The share of the questions of ``a`` and ``b`` that ranked the other first."""
    lost = sum(p["count"] for p in report.pairs if {p["skill"], p["taken_by"]} == {a, b})
    asked = {s.skill_id: s.questions for s in report.per_skill}
    total = asked.get(a, 0) + asked.get(b, 0)
    return lost / total if total else 0.0


def overlap_findings(index: SkillIndex, report: SelfEvalReport | None = None) -> list[Finding]:
    """The near-twin pairs of ``index``'s skills, most colliding first."""
    import numpy as np

    docs = index.documents
    vectors = index.vectors.all_vectors()
    rows_of: dict[str, list[int]] = defaultdict(list)
    card_row: dict[str, int] = {}
    for row, d in enumerate(docs):
        rows_of[d.skill_id].append(row)
        if d.kind == "card":
            card_row[d.skill_id] = row
    skills = [s for s in index.skills if s.id in card_row]
    ids = [s.id for s in skills]
    cards = vectors[[card_row[sid] for sid in ids]]
    similar = cards @ cards.T
    number = {s.id: n for n, s in enumerate(skills)}
    owners = {t: [number[s.id] for s in ss] for t, ss in trigger_owners(skills).items()}
    shared: dict[tuple[int, int], set[str]] = defaultdict(set)
    for t, ns in owners.items():
        for i in ns:
            for j in ns:
                if i < j:
                    shared[i, j].add(t)
    collided: dict[frozenset[str], int] = report.collisions() if report else {}
    candidates = set(shared) | {
        (int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(similar, 1) >= CARD_TWIN), strict=True)
    }
    found = []
    for i, j in candidates:
        a, b = ids[i], ids[j]
        common = shared.get((i, j), set())
        lost = collided.get(frozenset((a, b)), 0)
        card = float(similar[i, j])
        if not (card >= CARD_TWIN or len(common) >= 2 or (common and lost)):
            continue
        found.append((lost, card, a, b, common))
    found.sort(key=lambda f: (-f[0], -f[1], f[2], f[3]))
    by_id = {s.id: s for s in skills}
    out = []
    for lost, card, a, b, common in found:
        # the closest texts other than triggers, which are named above when shared
        ra = [r for r in rows_of[a] if docs[r].kind != "trigger"] or rows_of[a]
        rb = [r for r in rows_of[b] if docs[r].kind != "trigger"] or rows_of[b]
        pair = vectors[ra] @ vectors[rb].T
        x, y = np.unravel_index(int(np.argmax(pair)), pair.shape)
        da, db = docs[ra[int(x)]], docs[rb[int(y)]]
        parts = [f"'{a}' and '{b}' are near twins: cards {card:.2f} similar"]
        if common:
            parts.append("shared triggers " + ", ".join(f"'{t}'" for t in sorted(common)))
        parts.append(
            f"closest texts {a} {da.field} '{da.text[:70]}' and {b} {db.field} "
            f"'{db.text[:70]}' ({float(pair[x, y]):.2f})"
        )
        if report is not None:
            share = collision_share(report, a, b)
            parts.append(
                f"in eval --self {lost} of their questions ranked the other first ({share:.0%})"
            )
        hint = (
            "merge them"
            if card >= CARD_TWIN
            else "sharpen the triggers and the "
            "description of one so that each says what only it covers"
        )
        out.append(
            Finding(
                WARNING,
                CHECK,
                a,
                by_id[a].path,
                "; ".join(parts)
                + f". Hint: {hint}"
                + (" (or merge them)" if card < CARD_TWIN else ""),
            )
        )
    return out
