"""``retrieve mcp``: the retriever as an MCP server over stdio (official ``mcp`` SDK).

The model and the index are opened once, when the server starts; each tool call is then a
query of a few milliseconds. A bad call (empty query, unknown skill id, unknown section) is
answered with a JSON-RPC "invalid params" error; the server keeps serving.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from typing import Any

from retriever.api import SkillRetriever
from retriever.errors import RetrieverError

log = logging.getLogger(__name__)

SEARCH_DESCRIPTION = (
    "Find the expert skills that fit a task. Call this before starting any non-trivial "
    "software, data, security, infrastructure or product task, or when stuck on a bug or "
    "symptom: describe the task or problem in plain words (e.g. 'my webhook handler processes "
    "the same event twice'). Returns the best skills (id, name, score, why they matched), the "
    "patterns and anti-patterns inside them that fit, and handoffs to other skills the rules "
    "call for. Then call get_skill with an id to load that skill's full guidance."
)
GET_DESCRIPTION = (
    "Load one skill's guidance as Markdown, to follow it for the current task. Use an id "
    "returned by search_skills. Optionally pass sections to load only some of: description, "
    "identity, triggers, patterns, anti_patterns, handoffs, body."
)


def _invalid(message: str) -> Exception:
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    return MCPError(INVALID_PARAMS, message)


def _text(value: str) -> str:
    """``value`` with lone surrogates (JSON's "\\ud800" escapes decode to them) replaced:
    an error message that echoed one could not be written as UTF-8, and the reply would
    never reach the client."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value


def compact_result(result) -> dict[str, Any]:
    """The search result in a compact form for an agent's context."""
    skills = []
    for s in result.skills:
        why = s.matches[0] if s.matches else None
        skills.append(
            {
                "id": s.id,
                "name": s.name,
                "score": round(s.score, 3),
                "via": s.via,
                "description": s.description[:300],
                "why": f"{why.field}: {why.text[:160]}" if why else "",
                "patterns": [
                    {"name": p.name, "kind": p.kind, "score": round(p.score, 3)} for p in s.patterns
                ],
            }
        )
    handoffs = [
        {"from": h.from_skill, "to": h.to_skill, "reason": h.reason, "resolved": h.resolved}
        for h in result.handoffs
    ]
    if result.no_match:
        # Said first, and the nearest skills kept apart from answers, so that an agent
        # cannot take them for guidance that fits.
        return {
            "query": result.query,
            "no_match": True,
            "skills": [],
            "handoffs": [],
            "notes": list(result.notes),
            "nearest": [s["id"] for s in skills],
        }
    out: dict[str, Any] = {"query": result.query, "skills": skills, "handoffs": handoffs}
    if result.notes:
        out["notes"] = list(result.notes)
    return out


def build_server(retriever: SkillRetriever):
    """An ``MCPServer`` with the two tools bound to an opened retriever."""
    from mcp.server.mcpserver import MCPServer

    from retriever import __version__
    from retriever.render import render_skill

    server = MCPServer(
        name="skill-retriever",
        version=__version__,
        instructions="Look up expert skills for a task with search_skills, then load one "
        "with get_skill.",
        log_level="WARNING",
    )

    @server.tool(name="search_skills", description=SEARCH_DESCRIPTION)
    def search_skills(query: str, k: int = 5) -> dict[str, Any]:
        if not 1 <= k <= 50:
            raise _invalid(f"k must be between 1 and 50, not {k}")
        try:
            return compact_result(retriever.search(query, k=k))
        except RetrieverError as e:
            raise _invalid(str(e)) from e

    @server.tool(name="get_skill", description=GET_DESCRIPTION)
    def get_skill(id: str, sections: list[str] | None = None) -> str:  # noqa: A002 - MCP arg
        try:
            return render_skill(
                retriever.skill(_text(id)), [_text(s) for s in sections] if sections else None
            )
        except (RetrieverError, ValueError) as e:
            raise _invalid(str(e)) from e

    return server


# In a JSON text: an escaped backslash (kept), a surrogate pair written as two escapes
# (kept), or a lone surrogate escape (replaced by U+FFFD).
_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def _mend(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    return b"\\ufffd" if len(text) == 6 else text


class _MendedLines(io.RawIOBase):
    """Standard input with lone surrogate escapes (``"\\ud800"``) replaced in each line.

    The SDK's JSON parser refuses them and drops the whole message, so a client that sent
    one never got a reply; mended, the request is answered (its text cleaned like any
    query).
    """

    def __init__(self, source: Any) -> None:  # a binary stream: sys.stdin.buffer
        self._source = source
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = _ESCAPES.sub(_mend, self._source.readline())
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def serve(retriever: SkillRetriever) -> None:
    """Serve over stdio until the client closes the connection."""
    sys.stdin = io.TextIOWrapper(
        io.BufferedReader(_MendedLines(sys.stdin.buffer)), encoding="utf-8", errors="replace"
    )
    build_server(retriever).run("stdio")
