"""What each agent sends a prompt hook and takes back, as its own documentation says.

One ``Agent`` per agent we hook into; everything agent-specific about the wire lives here
(the command hook, the HTTP routes and ``--print-config`` all read it):

- **Claude Code** (code.claude.com/docs/en/hooks): ``UserPromptSubmit``, the event as JSON
  on stdin or as the body of a ``type: "http"`` hook's POST; context back as
  ``hookSpecificOutput.additionalContext``; ``timeout`` in seconds; settings in
  ``~/.claude/settings.json`` or ``.claude/settings.json``.
- **Codex CLI** (developers.openai.com/codex/hooks): ``UserPromptSubmit`` with Claude Code's
  wire shape, from ``~/.codex/hooks.json`` or ``<repo>/.codex/hooks.json``; ``command``
  handlers only (no ``http``); its output schema refuses unknown keys at both levels
  (``additionalProperties: false``), so nothing but ``hookEventName`` and
  ``additionalContext`` is ever written.
- **Gemini CLI** (google-gemini/gemini-cli docs/hooks/reference.md): ``BeforeAgent`` with
  ``prompt``; ``hookSpecificOutput.additionalContext`` back; ``command`` hooks only, their
  ``timeout`` in milliseconds; stdout must be the JSON object alone.

Standard library only: the command hook imports this on every prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Agent:
    name: str  # `retrieve hook NAME`, and the route /hooks/NAME
    title: str
    event: str  # hook_event_name in, hookEventName out
    settings: str  # where the entry goes, as the agent's docs say
    timeout_per_second: int  # the settings' timeout unit: 1 (seconds) or 1000 (ms)
    http: bool  # whether the agent has an HTTP hook type
    matcher: str | None = None  # the matcher its lifecycle entries need, if any
    name_field: bool = False  # whether a hook entry carries a "name"


AGENTS = {
    a.name: a
    for a in (
        Agent(
            "claude-code",
            "Claude Code",
            "UserPromptSubmit",
            "~/.claude/settings.json (every project) or .claude/settings.json (this project)",
            1,
            http=True,
        ),
        Agent(
            "codex",
            "Codex CLI",
            "UserPromptSubmit",
            "~/.codex/hooks.json (every project) or <repo>/.codex/hooks.json (this project); "
            "Codex runs a new or changed hook only once you trust it in /hooks (builds from "
            "before hooks were on by default also need [features] codex_hooks = true in "
            "config.toml)",
            1,
            http=False,
        ),
        Agent(
            "gemini",
            "Gemini CLI",
            "BeforeAgent",
            "~/.gemini/settings.json (every project) or .gemini/settings.json (this project)",
            1000,
            http=False,
            matcher="*",
            name_field=True,
        ),
    )
}


class EventError(ValueError):
    """An event we cannot read (not an object, no prompt): said in one line."""


def agent_named(name: str) -> Agent:
    try:
        return AGENTS[name]
    except KeyError:
        raise EventError(f"unknown agent {name!r}: one of {', '.join(AGENTS)}") from None


def parse_event(data: bytes) -> dict[str, Any]:
    """The event object of a hook's stdin or a route's body, or ``EventError``."""
    try:
        event = json.loads(data.decode("utf-8", "replace"))
    except ValueError as e:
        raise EventError(f"the hook input is not JSON ({e})") from e
    except RecursionError as e:  # '[' * 100000
        raise EventError("the hook input is not JSON we read: nested too deeply") from e
    if not isinstance(event, dict):
        raise EventError("the hook input is not a JSON object")
    return event


def prompt_of(agent: Agent, event: dict[str, Any]) -> str | None:
    """The prompt to search for; ``None`` for another event (registered under the wrong
    one: nothing to add)."""
    if event.get("hook_event_name", agent.event) != agent.event:
        return None
    prompt = event.get("prompt")
    if not isinstance(prompt, str):
        raise EventError('the hook input has no "prompt" string')
    return prompt


def cwd_of(event: dict[str, Any]) -> str | None:
    """The folder the agent runs in (every agent sends ``cwd``); ``None`` if absent."""
    cwd = event.get("cwd")
    return cwd if isinstance(cwd, str) and cwd else None


def worth_searching(prompt: str, min_words: int) -> bool:
    """Not a slash command (``/clear``, ``/review``: the agent's own), and long enough to
    say what the task is."""
    text = prompt.strip()
    return bool(text) and not text.startswith("/") and len(text.split()) >= min_words


def output(agent: Agent, context: str) -> dict[str, Any]:
    """The hook's answer: the context, or ``{}`` (nothing to add) when it is empty. Exactly
    the keys every agent's schema allows (Codex's refuses any other)."""
    if not context:
        return {}
    return {"hookSpecificOutput": {"hookEventName": agent.event, "additionalContext": context}}


def output_text(answer: dict[str, Any]) -> str:
    """``answer`` as the hook prints it (and a route sends it): ASCII JSON, lone surrogates
    replaced, so it always decodes."""
    return json.dumps(answer, ensure_ascii=True).encode("utf-8", "replace").decode()


def checked_output(agent: Agent, answer: Any, max_chars: int) -> dict[str, Any]:
    """``answer`` if it is exactly an ``output`` of ``agent`` within ``max_chars``, else
    ``EventError``: what a server sends is checked before the hook prints it."""
    if answer == {}:
        return {}
    if not isinstance(answer, dict) or set(answer) != {"hookSpecificOutput"}:
        raise EventError("the server's answer is not a hook output")
    inner = answer["hookSpecificOutput"]
    if not isinstance(inner, dict) or set(inner) != {"hookEventName", "additionalContext"}:
        raise EventError("the server's answer is not a hook output")
    context = inner["additionalContext"]
    if inner["hookEventName"] != agent.event or not isinstance(context, str) or not context:
        raise EventError("the server's answer is for another event or has no context")
    if len(context) > max_chars:
        raise EventError(f"the server's context is over the {max_chars} characters asked for")
    return output(agent, context)


def command_entry(agent: Agent, command: str, timeout_s: float) -> dict[str, Any]:
    """The settings entry that runs ``command`` on every prompt."""
    hook: dict[str, Any] = {"type": "command", "command": command}
    if agent.name_field:
        hook = {"name": "skill-retriever", **hook}
    hook["timeout"] = round(timeout_s * agent.timeout_per_second)
    return _entry(agent, hook)


def http_entry(agent: Agent, url: str, token_env: str, timeout_s: float) -> dict[str, Any]:
    """Claude Code's ``type: "http"`` entry: the token comes from the environment variable
    ``token_env`` (listed in ``allowedEnvVars``, the only way Claude Code interpolates one),
    never written into the file."""
    hook = {
        "type": "http",
        "url": url,
        "headers": {"Authorization": f"Bearer ${token_env}"},
        "allowedEnvVars": [token_env],
        "timeout": round(timeout_s * agent.timeout_per_second),
    }
    return _entry(agent, hook)


def _entry(agent: Agent, hook: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = {"hooks": [hook]}
    if agent.matcher is not None:
        group = {"matcher": agent.matcher, **group}
    return {"hooks": {agent.event: [group]}}
