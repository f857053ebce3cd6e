"""``retrieve mcp``: the retriever as an MCP server (official ``mcp`` SDK).

Two read-only tools, ``search_skills`` (compact JSON text, and the same as structured
content under an output schema) and ``get_skill`` (Markdown), and every skill as a resource
``skill://ID``. Served over stdio here (``serve``); ``retriever.serve.http`` mounts the same
server on streamable HTTP.

The model and the index are opened once, when the server starts; each tool call is then a
query of a few milliseconds. A bad value (an empty query, k out of range, an unknown skill
id or section) is answered with a JSON-RPC "invalid params" error; an argument of the wrong
type or a missing one is refused by the SDK's schema validation as a tool error
(``isError``), as the MCP specification recommends so that a model can correct its call.
Either way the server keeps serving.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from retriever.api import SkillRetriever
from retriever.errors import IndexNotReadyError, QueryError, RetrieverError
from retriever.present.compact import compact_result, search_output_model
from retriever.search.query import MAX_K, check_k

if TYPE_CHECKING:
    from retriever.serve.live import LiveRetriever

log = logging.getLogger(__name__)

SEARCH_DESCRIPTION = (
    "Find the expert skills that fit a task. Call this before starting any non-trivial "
    "software, data, security, infrastructure or product task, or when stuck on a bug or "
    "symptom: describe the task or problem in plain words (e.g. 'my webhook handler processes "
    "the same event twice'). Returns the known problems (gotchas, failed checks) the "
    "description matches with their fixes, the best skills (id, name, score, why they "
    "matched), the patterns and anti-patterns inside them that fit, and handoffs to other "
    "skills the rules call for. Then call get_skill with an id to load that skill's full "
    "guidance."
)
GET_DESCRIPTION = (
    "Load one skill's guidance as Markdown, to follow it for the current task. Use an id "
    "returned by search_skills. Optionally pass sections to load only some of: description, "
    "identity, triggers, patterns, anti_patterns, sharp_edges, validations, handoffs, body."
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


def _current_of(source: SkillRetriever | LiveRetriever) -> Callable[[], SkillRetriever]:
    """The retriever to answer with, read at each call (a live one is swapped on reload)."""
    from retriever.serve.live import LiveRetriever

    if isinstance(source, LiveRetriever):
        return lambda: source.current
    return lambda: source


def skill_uri(skill_id: str) -> str:
    return "skill://" + quote(skill_id, safe="")


def build_server(source: SkillRetriever | LiveRetriever, *, gate: Any = None):
    """An ``MCPServer`` with the two tools and the skills as resources, bound to a retriever
    (or a ``LiveRetriever``, whose current index each call reads). ``gate``, an anyio
    semaphore, bounds the searches run at once (the HTTP server shares one with its JSON
    routes)."""
    import contextlib
    import json
    from typing import Annotated

    import anyio.to_thread
    from mcp.server.mcpserver import MCPServer
    from mcp_types import CallToolResult, TextContent, ToolAnnotations
    from mcp_types import Resource as ResourceInfo

    from retriever import __version__
    from retriever.present.skill import skill_markdown

    current = _current_of(source)
    read_only = ToolAnnotations(
        read_only_hint=True,  # a search changes nothing
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=False,  # only the local collection is read
    )

    class SkillServer(MCPServer):
        async def list_resources(self) -> list[ResourceInfo]:
            # Listed from the index being served at the time of the call: a reload adds
            # and removes skills, which fixed registrations could not follow. None while
            # the first index is being built.
            try:
                skills = current().skills
            except IndexNotReadyError:
                return []
            return [
                ResourceInfo(
                    uri=skill_uri(s.id),
                    name=s.id,
                    title=s.name,
                    description=s.description[:300],
                    mime_type="text/markdown",
                )
                for s in skills
            ]

    from retriever.serve.mcp_skills import skills_extension, skills_middleware

    skills = skills_extension(current)  # SEP-2640: skills/list, skills/get, skill files
    server = SkillServer(
        name="skill-retriever",
        extensions=[skills],
        middleware=[skills_middleware(skills)],
        version=__version__,
        instructions="Look up expert skills for a task with search_skills, then load one "
        "with get_skill (or read the resource skill://ID).",
        log_level="WARNING",
    )

    async def search_skills(query: str, k: int = 5):
        try:
            check_k(k, MAX_K)
        except QueryError as e:
            raise _invalid(str(e)) from e
        try:
            retriever = current()
        except IndexNotReadyError as e:
            # a result the agent reads, not a protocol error: the call was right, the index
            # is not ready yet (how far it is, and to ask again, are in the text)
            return CallToolResult(content=[TextContent(type="text", text=str(e))], is_error=True)
        try:
            async with gate if gate is not None else contextlib.nullcontext():
                result = await anyio.to_thread.run_sync(retriever.search, query, k)
            data = compact_result(result)
        except RetrieverError as e:
            raise _invalid(str(e)) from e
        # The text stays the compact JSON agents read; the same dict is the structured
        # content, checked by the SDK against the output schema.
        text = _text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=data
        )

    # Annotations given as objects: the SDK reads them with ``eval_str``, which could not
    # see a model defined in a function (this module postpones annotations to strings).
    search_skills.__annotations__ = {
        "query": str,
        "k": int,
        "return": Annotated[CallToolResult, search_output_model()],
    }
    server.add_tool(
        search_skills,
        name="search_skills",
        title="Search skills",
        description=SEARCH_DESCRIPTION,
        annotations=read_only,
    )

    @server.tool(
        name="get_skill",
        title="Load a skill",
        description=GET_DESCRIPTION,
        annotations=read_only,
        structured_output=False,  # Markdown for the prompt, nothing to structure
    )
    def get_skill(id: str, sections: list[str] | None = None) -> str:  # noqa: A002 - MCP arg
        try:
            return skill_markdown(
                current().skill(_text(id)), [_text(s) for s in sections] if sections else None
            )
        except (RetrieverError, ValueError) as e:
            raise _invalid(str(e)) from e

    @server.resource(
        "skill://{id}",
        name="skill",
        title="A skill's guidance",
        description="One skill as Markdown: description, identity, triggers, patterns, "
        "anti-patterns, handoffs",
        mime_type="text/markdown",
    )
    def read_skill(id: str) -> str:  # noqa: A002 - the URI template's variable
        try:
            return skill_markdown(current().skill(_text(unquote(id))))
        except RetrieverError as e:
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


def mend_surrogate_escapes(data: bytes) -> bytes:
    """JSON bytes with every lone surrogate escape replaced by ``\\ufffd`` (same length;
    escaped backslashes and escaped surrogate pairs kept): the SDK's parser refuses them."""
    return _ESCAPES.sub(_mend, data)


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
            self._pending = mend_surrogate_escapes(self._source.readline())
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def serve(source: SkillRetriever | LiveRetriever) -> None:
    """Serve over stdio until the client closes the connection."""
    sys.stdin = io.TextIOWrapper(
        io.BufferedReader(_MendedLines(sys.stdin.buffer)), encoding="utf-8", errors="replace"
    )
    build_server(source).run("stdio")
