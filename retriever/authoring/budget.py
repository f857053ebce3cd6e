"""``retrieve lint --budget``: what a collection's names and descriptions cost in Claude
Code's skill listing, and which skills would be listed by name only.

The figures followed (Claude Code docs, code.claude.com/docs/en/skills, "Skill descriptions
are cut short"; settings reference ``skillListingBudgetFraction`` and
``skillListingMaxDescChars``; environment variables ``SLASH_COMMAND_TOOL_CHAR_BUDGET``):

- the listing always holds every skill's name; descriptions are shortened to fit a
  character budget that "scales at 1% of the model's context window"
  (``skillListingBudgetFraction``, default 0.01), "with a fallback of 8,000 characters";
  ``SLASH_COMMAND_TOOL_CHAR_BUDGET`` sets a fixed character count instead;
- each entry's ``description`` and ``when_to_use`` together are cut at 1,536 characters
  (``skillListingMaxDescChars``) whatever the budget;
- over budget, Claude Code "drops descriptions starting with the skills you invoke least";
- a skill with ``disable-model-invocation: true`` has its "description not in context".

Not documented, so assumed here and said in the output: a budget in characters from a
context window in tokens uses 4 characters a token (1% of 200,000 tokens is then the 8,000
fallback); names and descriptions are counted as written, without separators; and in a new
install, where no skill has been invoked, the skills listed last lose their descriptions
first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retriever.authoring.lint import NOTE, WARNING, Finding
from retriever.skill import Skill

FRACTION = 0.01  # skillListingBudgetFraction's default
FALLBACK = 8_000  # characters, when the context window is unknown
ENTRY_CAP = 1_536  # skillListingMaxDescChars's default: description + when_to_use
CHARS_PER_TOKEN = 4  # assumed: not documented
ENV = "SLASH_COMMAND_TOOL_CHAR_BUDGET"
NAMED = 12  # skills named in the summary


@dataclass
class ListingBudget:
    budget: int
    basis: str  # where the budget comes from, in words
    names: int  # characters of every listed skill's name
    descriptions: int  # characters of their descriptions (+ when_to_use), after the cap
    listed: list[str]  # listed skill ids, in listing order
    kept: list[str]  # skills whose descriptions fit, in listing order
    name_only: list[str]  # skills listed by name only, those losing theirs first first
    capped: dict[str, int] = field(default_factory=dict)  # id -> characters before the cap
    hidden: list[str] = field(default_factory=list)  # disable-model-invocation: true

    @property
    def total(self) -> int:
        return self.names + self.descriptions

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "basis": self.basis,
            "characters": self.total,
            "names": self.names,
            "descriptions": self.descriptions,
            "skills": len(self.listed),
            "descriptions_kept": len(self.kept),
            "name_only": self.name_only,
            "capped": self.capped,
            "not_listed": self.hidden,
        }


def budget_of(context_tokens: int | None = None) -> tuple[int, str]:
    """The listing's character budget and what it rests on: ``$SLASH_COMMAND_TOOL_CHAR_BUDGET``
    when set, else 1% of ``context_tokens`` at ``CHARS_PER_TOKEN``, else the fallback."""
    fixed = os.environ.get(ENV, "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) <= 0:
            raise ValueError(f"{ENV}={fixed!r} is not a positive number of characters")
        return int(fixed), f"{ENV}={int(fixed):,}"
    if context_tokens:
        chars = int(context_tokens * FRACTION * CHARS_PER_TOKEN)
        return chars, (
            f"1% of a {context_tokens:,}-token context window at {CHARS_PER_TOKEN} "
            "characters a token"
        )
    return FALLBACK, (
        "Claude Code's fallback when the context window is unknown, the same as 1% of a "
        f"200,000-token window at {CHARS_PER_TOKEN} characters a token"
    )


def listing_budget(skills: Sequence[Skill], budget: int, basis: str) -> ListingBudget:
    """Lay the listing out: every name, then descriptions in listing order until the budget
    is spent; the rest are listed by name only."""
    listed, hidden, capped = [], [], {}
    texts: dict[str, int] = {}
    for s in skills:
        meta = _front_matter(s)
        if meta.get("disable-model-invocation") is True:
            hidden.append(s.id)
            continue
        extra = meta.get("when_to_use")
        text = s.description + (f" {extra}" if isinstance(extra, str) and extra.strip() else "")
        if len(text) > ENTRY_CAP:
            capped[s.id] = len(text)
        listed.append(s)
        texts[s.id] = min(len(text), ENTRY_CAP)
    names = sum(len(s.name) for s in listed)
    left = budget - names
    kept: list[str] = []
    for s in listed:
        if texts[s.id] > left:
            break
        kept.append(s.id)
        left -= texts[s.id]
    lost = [s.id for s in reversed(listed[len(kept) :])]
    return ListingBudget(
        budget,
        basis,
        names,
        sum(texts.values()),
        [s.id for s in listed],
        kept,
        lost,
        capped,
        hidden,
    )


def budget_findings(b: ListingBudget, skills: Sequence[Skill]) -> list[Finding]:
    """A warning for each entry Claude Code cuts, and a note for the budget."""
    path = {s.id: s.path for s in skills}
    out = [
        Finding(
            WARNING,
            "listing-cap",
            sid,
            path[sid],
            f"description and when_to_use are {n:,} characters; Claude Code's skill listing "
            f"cuts each entry at {ENTRY_CAP:,}: put the key use case first",
        )
        for sid, n in b.capped.items()
    ]
    over = b.total / b.budget if b.budget else float("inf")
    head = (
        f"{len(b.listed)} skills take {b.total:,} characters of Claude Code's skill listing "
        f"(names {b.names:,}, descriptions {b.descriptions:,}) against a budget of "
        f"{b.budget:,} ({b.basis})"
    )
    if not b.name_only:
        message = f"{head}: every description fits ({over:.0%} of the budget)"
    else:
        named = ", ".join(b.name_only[:NAMED])
        more = f", and {len(b.name_only) - NAMED} more" if len(b.name_only) > NAMED else ""
        fit = (
            f"the names alone take {b.names:,}, so no description fits"
            if b.names >= b.budget
            else f"only {len(b.kept)} of {len(b.listed)} descriptions fit"
        )
        message = (
            f"{head}: {over:.1f} times the budget. Every name is listed, but {fit}: "
            f"{len(b.name_only)} skills would be listed by name only, so "
            "Claude would rarely pick them on its own. Claude Code drops the descriptions of "
            "the skills invoked least; in a new install, taking the last listed first: "
            f"{named}{more}. Per-prompt retrieval (retrieve hook claude-code) shows the "
            "skills that fit each prompt instead"
        )
    return [*out, Finding(NOTE, "listing-budget", "", "", message)]


def _front_matter(skill: Skill) -> dict[str, Any]:
    """A SKILL.md skill's front matter (``when_to_use``, ``disable-model-invocation`` are not
    part of the normalised skill); empty for other formats or an unreadable file."""
    if not skill.path.endswith("SKILL.md"):
        return {}
    from retriever.load.files import FileProblem, parse_yaml, read_text
    from retriever.load.formats.skill_md import split_front_matter

    try:
        front, _ = split_front_matter(read_text(Path(skill.path)))
        meta = parse_yaml(front) if front else {}
    except (FileProblem, ValueError, OSError):
        return {}  # the load report already says what is wrong with the file
    return meta if isinstance(meta, dict) else {}
