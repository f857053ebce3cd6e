"""``POST /hooks/{agent}`` on ``retrieve serve``: an agent's prompt hook answered over HTTP.

The body is the event the agent sends (Claude Code POSTs it itself from a ``type: "http"``
hook; ``retrieve hook codex|gemini|claude-code`` forwards it when a server runs), the answer
the JSON object the command hook prints (``agents.output``), or ``{}`` when there is
nothing to add: a slash command, a short prompt, another event, nothing that fits. Claude
Code reads a 2xx JSON body as it reads a command hook's stdout.

Query parameters, all optional: ``k`` (skills, default 3), ``max_chars`` (the context's
budget, default 4000), ``min_words`` (default 3), ``wait`` (seconds a project's first build
may hold the answer, default 20). A body that is not an event (not JSON, not an object, no
``prompt`` string) or a bad parameter gets 400 ``{"error": ...}``; the guard of
``retrieve serve`` (token, body limit, Host check) applies first. Nothing an agent sends
gets a 5xx or a body that is not JSON: a failure inside is logged and answered ``{}``, as
if nothing fitted (the prompt goes on either way), and so is a prompt that comes while the
server's first index is being built (where ``/search`` answers 503).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from retriever.search.query import MAX_K
from retriever.serve import agents, context
from retriever.serve.projects import DEFAULT_WAIT_S, MAX_WAIT_S

if TYPE_CHECKING:
    from retriever.serve.projects import ProjectRetrievers

log = logging.getLogger(__name__)

HOOKS_PATH = "/hooks/{agent}"
MAX_MIN_WORDS = 1000


class BadParameter(ValueError):
    pass


def hook_options(params: Any) -> tuple[int, int, int, float]:
    """``(k, max_chars, min_words, wait)`` from the query string, or ``BadParameter``."""

    def number(name: str, default: float, low: float, high: float, kind: type = int) -> Any:
        raw = params.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise BadParameter(f"{name} must be a number, not {raw[:40]!r}") from None
        if not low <= value <= high:  # NaN fails this too
            raise BadParameter(f"{name} must be from {low:g} to {high:g}")
        return value

    return (
        number("k", context.DEFAULT_K, 1, MAX_K),
        number("max_chars", context.DEFAULT_MAX_CHARS, context.MIN_MAX_CHARS, 100_000),
        number("min_words", context.DEFAULT_MIN_WORDS, 1, MAX_MIN_WORDS),
        number("wait", DEFAULT_WAIT_S, 0, MAX_WAIT_S, float),
    )


def hook_routes(projects: ProjectRetrievers, gate: Any) -> list[Any]:
    """The Starlette routes; ``gate`` (an anyio semaphore) is the one ``/search`` and MCP
    share, so hook searches wait their turn with theirs."""
    import anyio.to_thread
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def reply(data: dict[str, Any], status: int = 200) -> Response:
        body = agents.output_text(data).encode()
        return Response(body, status_code=status, media_type="application/json")

    async def hook(request: Request) -> Response:
        name = request.path_params["agent"]
        if name not in agents.AGENTS:
            return reply(
                {"error": f"no hook for {name[:40]!r}: one of {', '.join(agents.AGENTS)}"}, 404
            )
        agent = agents.AGENTS[name]
        try:
            k, max_chars, min_words, wait = hook_options(request.query_params)
            event = agents.parse_event(await request.body())
            prompt = agents.prompt_of(agent, event)
        except (BadParameter, agents.EventError) as e:
            return reply({"error": str(e)}, 400)
        if prompt is None or not agents.worth_searching(prompt, min_words):
            return reply({})
        from retriever.errors import IndexNotReadyError

        try:
            cwd = agents.cwd_of(event)
            retriever = projects.ready(cwd)
            if retriever is None:  # a project's first prompt: its index is opened or built
                retriever = await anyio.to_thread.run_sync(projects.for_cwd, cwd, wait)
            async with gate:
                text = await anyio.to_thread.run_sync(
                    context.context_for, retriever, prompt, k, max_chars
                )
        except IndexNotReadyError:  # the server's first index is being built: nothing yet
            return reply({})
        except Exception:  # noqa: BLE001 - the prompt goes on; the log says what broke
            log.exception("the %s hook could not search; nothing added", agent.title)
            return reply({})
        return reply(agents.output(agent, text))

    return [Route(HOOKS_PATH, hook, methods=["POST"])]
