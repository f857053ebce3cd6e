"""The context a prompt hook adds: the top skills and their best patterns as Markdown under
our own heading, within a character budget. One home for the command hook searching
in-process and the server's hook routes, so both add the very same text."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retriever.api import SkillRetriever

DEFAULT_K = 3
# Claude Code passes up to 10,000 characters of a hook's output whole (more goes to a file)
# and Codex about 2,500 tokens; the top skills' headers and best patterns fit well within.
DEFAULT_MAX_CHARS = 4000
DEFAULT_MIN_WORDS = 3
MAX_PROMPT_CHARS = 20_000  # the search reads 2,000 words at most anyway
PREAMBLE = (
    "# Skills that fit this prompt\n"
    "Found by skill-retriever in your skill collection; follow what applies, ignore the rest."
)
# The same, when the result's confidence is low: possibly relevant, said as such.
PREAMBLE_LOW = (
    "# Skills that may fit this prompt (low confidence)\n"
    "Found by skill-retriever in your skill collection; nothing clearly fits, so use these "
    "only where they plainly apply."
)
# what either preamble takes of the budget, with the blank line after it
PREAMBLE_CHARS = max(len(PREAMBLE), len(PREAMBLE_LOW)) + 2
MIN_MAX_CHARS = PREAMBLE_CHARS + 200  # room for the preamble and one skill's heading


def markdown_budget(max_chars: int) -> int:
    """The characters the rendering may take once the preamble is in; ``ValueError`` when
    ``max_chars`` leaves no room for a skill."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must leave room for a skill (at least {MIN_MAX_CHARS})")
    return max_chars - PREAMBLE_CHARS


def context_for(retriever: SkillRetriever, prompt: str, k: int, max_chars: int) -> str:
    """What to add for ``prompt`` ("" when nothing fits or the query is unusable)."""
    from retriever.errors import QueryError

    budget = markdown_budget(max_chars)
    try:
        result = retriever.search(prompt.strip()[:MAX_PROMPT_CHARS], k=k)
    except QueryError:  # nothing left to search once cleaned (only symbols, say)
        return ""
    if result.no_match:
        return ""
    return with_preamble(result.query, retriever.render_markdown(result, max_chars=budget))


def with_preamble(query: str, markdown: str) -> str:
    """Our heading instead of the rendering's, which repeats the whole prompt; a
    low-confidence rendering keeps saying that its skills are only possibly relevant."""
    from retriever.present.results import POSSIBLY_RELEVANT

    preamble = PREAMBLE
    possibly = f"# Possibly relevant skills for: {query}\n{POSSIBLY_RELEVANT}"
    echo = f"# Skills for: {query}"
    if markdown.startswith(possibly):
        markdown = markdown[len(possibly) :].lstrip("\n")
        preamble = PREAMBLE_LOW
    elif markdown.startswith(echo):
        markdown = markdown[len(echo) :].lstrip("\n")
    return f"{preamble}\n\n{markdown}" if markdown.strip() else ""
