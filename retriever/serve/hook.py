"""``retrieve hook AGENT``: the skills for each prompt, as Claude Code's, Codex's or Gemini
CLI's prompt hook.

The agent runs the command on every prompt with the event as JSON on stdin (its wire format:
``retriever.serve.agents``). On exit 0 it adds ``hookSpecificOutput.additionalContext`` from
stdout to the model's context; exit 2 would block the prompt. So this command always exits
0: an error of any kind prints nothing on stdout and one line on stderr; a slash command, a
prompt of a few words, or a prompt nothing in the collection fits prints nothing at all.

It is paid on every prompt, so it is quick and bounded. When a ``retrieve serve`` runs for
the same index it forwards the event to that server's ``POST /hooks/AGENT`` and prints the
answer once checked: this path imports the standard library and nothing else of ours that
loads a model or an index (``python -X importtime`` shows it). Otherwise it searches
in-process on the existing index, never building the user's (that takes minutes). Either way
the project's own skill folders under the event's ``cwd`` are searched with the user's
(``serve.projects``). Past ``--timeout`` seconds it gives up.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

from retriever.serve import agents
from retriever.serve.agents import Agent
from retriever.serve.context import (
    DEFAULT_K,
    DEFAULT_MAX_CHARS,
    DEFAULT_MIN_WORDS,
    MAX_PROMPT_CHARS,
)

DEFAULT_TIMEOUT_S = 5.0
MAX_EVENT_BYTES = 8 << 20
SERVER_TIMEOUT_S = 1.5  # then the in-process search, which takes about a second
HTTP_TIMEOUT_S = 30  # an HTTP hook's entry: a project's first prompt may build its index
TOKEN_ENV = "SKILL_RETRIEVER_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8765"


class HookError(Exception):
    """A reason to add nothing, said on stderr in one line."""


def run_hook(agent_name: str, args: Any) -> int:
    """The hook command of ``agent_name``; returns 0 whatever happens (``args`` from
    ``retrieve hook``), except that ``--print-config`` misused is a user error (2)."""
    logging.disable(logging.CRITICAL)  # stderr carries one line at most: ours
    warnings.simplefilter("ignore")
    agent = agents.AGENTS[agent_name]
    output = _Output(args.timeout or DEFAULT_TIMEOUT_S)
    if args.print_config:
        return print_config(agent, args)
    if getattr(args, "http", None) is not None:
        output.fail("--http goes with --print-config")
        return 0
    try:
        output.start_clock()
        event = read_event(sys.stdin.buffer)
        prompt = agents.prompt_of(agent, event)
        min_words = args.min_words or DEFAULT_MIN_WORDS
        if prompt is None or not agents.worth_searching(prompt, min_words):
            output.finish(None)
            return 0
        answer = find_answer(agent, prompt, agents.cwd_of(event), args, output)
        output.finish(agents.output_text(answer) + "\n" if answer else None)
    except BaseException as e:  # noqa: BLE001 - nothing may break the user's prompt
        output.fail(_one_line(e))
    return 0


def run_claude_code(args: Any) -> int:
    return run_hook("claude-code", args)


# -- the event --------------------------------------------------------------------------------


def read_event(stream) -> dict[str, Any]:
    data = stream.read(MAX_EVENT_BYTES + 1)
    if len(data) > MAX_EVENT_BYTES:
        raise HookError(f"the hook input is over {MAX_EVENT_BYTES} bytes")
    return agents.parse_event(data)


# -- the answer -------------------------------------------------------------------------------


def find_answer(
    agent: Agent, prompt: str, cwd: str | None, args: Any, output: _Output
) -> dict[str, Any]:
    """The hook's output for ``prompt`` (``{}``: nothing to add): from a running server of
    the same index when there is one, else searched here."""
    from retriever.serve.context import markdown_budget
    from retriever.serve.discovery import find_server

    k = args.k or DEFAULT_K
    max_chars = args.max_chars or DEFAULT_MAX_CHARS
    try:
        markdown_budget(max_chars)
    except ValueError as e:
        raise HookError(str(e).replace("max_chars", "--max-chars")) from None
    left = output.deadline - time.monotonic()
    started = time.monotonic()
    # only a server that proves it is the one its discovery file names: a stale file may
    # point at a port another process (another collection's server) holds now
    server = find_server(index_folder(args), timeout=min(SERVER_TIMEOUT_S, max(0.1, left / 2)))
    if server is not None:
        # a project's first prompt may build its index there: all but a second is its
        wait = max(0.1, left - (time.monotonic() - started) - 1.0)
        try:
            return ask_server(server, agent, prompt, cwd, args, k, max_chars, wait)
        except Exception:  # noqa: BLE001 - any bad reply: search here, as if none ran
            pass
    return answer_here(agent, prompt, cwd, args, k, max_chars)


def index_folder(args: Any) -> Path:
    """The index folder ``SkillRetriever.open`` would use for these options, worked out
    without loading anything (so the path to a running server stays cheap)."""
    if args.index:  # resolving the model (a folder walk for a model on disk) is not needed
        return Path(args.index).expanduser().resolve()
    from retriever.index.embed import resolve_model
    from retriever.paths import index_folder as folder_of
    from retriever.paths import resolve_roots

    model_id, _ = resolve_model(args.model)
    return folder_of(resolve_roots(args.skills), model_id).resolve()


def reply_limit(max_chars: int) -> int:
    """The most bytes a hook answer of ``max_chars`` can honestly take: each character up
    to 6 bytes as a JSON escape, and the keys."""
    return 4096 + 6 * max_chars


def ask_server(
    server, agent: Agent, prompt: str, cwd: str | None, args: Any, k: int, max_chars: int,
    wait: float,
) -> dict[str, Any]:  # fmt: skip
    """The server's answer from ``POST /hooks/AGENT``, which is what this command prints.

    Only what the hook needs is sent (the prompt cut as the search would cut it, and the
    folder). Nothing in the reply is trusted: it is read up to ``reply_limit`` bytes, and
    anything but exactly the agent's output within ``max_chars`` is a ``HookError`` (the
    caller then searches here)."""
    import urllib.parse

    from retriever.serve.loopback import request

    event = {"hook_event_name": agent.event, "prompt": prompt[:MAX_PROMPT_CHARS], "cwd": cwd}
    query = urllib.parse.urlencode(
        {
            "k": k,
            "max_chars": max_chars,
            "min_words": args.min_words or DEFAULT_MIN_WORDS,
            "wait": f"{max(0.0, wait - 0.5):.2f}",
        }
    )
    headers = {"Content-Type": "application/json"}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    status, raw = request(
        server.url,
        "POST",
        f"/hooks/{agent.name}?{query}",
        body=json.dumps(event).encode(),
        headers=headers,
        timeout=wait,
        limit=reply_limit(max_chars),
    )
    if status == 503:  # its first index is being built: nothing yet, and no build here
        return {}
    if status != 200:
        raise HookError(f"the server answered {status}")
    return agents.checked_output(agent, json.loads(raw), max_chars)


def answer_here(
    agent: Agent, prompt: str, cwd: str | None, args: Any, k: int, max_chars: int
) -> dict[str, Any]:
    """The output searched in this process on the indexes on disk.

    The user's index must be there and up to date: building one takes minutes, far too long
    for a prompt. A project's own folders are searched with the user's roots when the index
    of that set is built; when it is not, it is built by a ``retrieve index`` of its own,
    started in the background (only the project's texts are embedded: the shared cache has
    the rest), and this prompt gets the user's skills alone, with a line on stderr."""
    from retriever.api import SkillRetriever
    from retriever.errors import IndexError_, StaleIndexError
    from retriever.index.embed import make_embedder
    from retriever.paths import project_skill_roots, resolve_roots
    from retriever.serve.context import context_for

    embedder = make_embedder(args.model, args.backend)
    if not embedder.runtime().ready:
        # the ONNX export is made on first use and takes longer than any prompt should
        # wait: cut short each time, it would be started again on every prompt.
        # `retrieve index` makes it, and the index too when that is missing or stale.
        raise HookError(
            "the model's fast ONNX export is not made yet; make it (and the index, if "
            f"needed) once with: {build_command(args)}"
        )
    verify = bool(getattr(args, "verify", False))
    user_roots = resolve_roots(args.skills)
    project = project_skill_roots(cwd, exclude=user_roots)
    retriever = None
    if project:
        roots = [*user_roots, *project]
        try:
            retriever = SkillRetriever.open(
                roots, rebuild="never", embedder=embedder, progress=False, verify=verify
            )
        except (StaleIndexError, IndexError_):
            started = start_build(roots, args)
            _stderr_line(
                f"the project's skills ({', '.join(map(str, project))}) are "
                + ("being indexed" if started else "not indexed")
                + "; this prompt searched the user's skills only"
            )
    if retriever is None:
        try:
            retriever = SkillRetriever.open(
                args.skills,
                index_dir=args.index,
                rebuild="never",
                embedder=embedder,
                progress=False,
                verify=verify,
            )
        except StaleIndexError as e:  # our own advice instead of the library's
            raise HookError(f"{e.why}; build it with: {build_command(args)}") from e
    return agents.output(agent, context_for(retriever, prompt, k, max_chars))


def start_build(roots: list[Path], args: Any) -> bool:
    """Start ``retrieve index`` of ``roots`` in a session of its own (it outlives this hook),
    unless one started for them is still running; whether one runs now."""
    import hashlib
    import subprocess

    from retriever.paths import index_home
    from retriever.serve.discovery import alive

    key = hashlib.sha256("\n".join(map(str, roots)).encode(errors="surrogateescape"))
    marker = index_home() / "building" / f"{key.hexdigest()[:16]}.pid"
    try:
        if alive(int(marker.read_text())):
            return True
    except (OSError, ValueError):
        pass
    words = [*_retrieve_command(), "--quiet", "index"]
    words += [w for r in roots for w in ("--skills", str(r))]
    if args.model:
        words += ["--model", args.model]
    if args.backend:
        words += ["--backend", args.backend]
    try:
        child = subprocess.Popen(
            words,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(child.pid))
    except OSError:
        return False
    return True


# -- the configuration ------------------------------------------------------------------------


def _passed_options(args: Any) -> list[str]:
    """The options given on this command line, paths made absolute (the hook runs in each
    project's folder)."""
    out: list[str] = []
    for root in args.skills or []:
        out += ["--skills", str(Path(root).expanduser().resolve())]
    if args.index:
        out += ["--index", str(Path(args.index).expanduser().resolve())]
    if args.model:
        model = Path(args.model).expanduser()
        out += ["--model", str(model.resolve()) if model.exists() else args.model]
    if args.backend:
        out += ["--backend", args.backend]
    return out


def _retrieve_command() -> list[str]:
    """This ``retrieve`` by its absolute path (an agent may run the hook outside the
    virtual environment, where a bare ``retrieve`` is not on PATH), or the interpreter
    running ``-m retriever.cli`` (a source checkout)."""
    script = Path(sys.argv[0])
    if script.name == "retrieve" and script.is_file():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "retriever.cli"]


def build_command(args: Any) -> str:
    return shlex.join([*_retrieve_command(), "index", *_passed_options(args)])


def _hook_options(args: Any) -> list[str]:
    options = _passed_options(args)
    if not args.index:
        options += ["--index", str(index_folder(args))]
    if args.k:
        options += ["-k", str(args.k)]
    if args.max_chars:
        options += ["--max-chars", str(args.max_chars)]
    if args.min_words:
        options += ["--min-words", str(args.min_words)]
    if args.timeout:
        options += ["--timeout", f"{args.timeout:g}"]
    return options


def settings_entry(agent: Agent, args: Any) -> dict[str, Any]:
    """The settings entry that runs this hook with these options, for ``agent``.

    The index folder is always named: the default one depends on the environment
    (``$SKILL_RETRIEVER_HOME``, a source checkout), which the agent's may not share."""
    if getattr(args, "http", None) is not None:
        return http_settings_entry(agent, args)
    command = shlex.join([*_retrieve_command(), "hook", agent.name, *_hook_options(args)])
    return agents.command_entry(agent, command, (args.timeout or DEFAULT_TIMEOUT_S) + 5)


def http_settings_entry(agent: Agent, args: Any) -> dict[str, Any]:
    """Claude Code's ``type: "http"`` entry for ``--http [URL]``: the URL given, else that
    of a ``retrieve serve`` running for this index, else the default address."""
    import urllib.parse

    if not agent.http:
        raise HookError(
            f"{agent.title} runs command hooks only (no HTTP hook type in its docs); drop "
            "--http: its command hook asks a running `retrieve serve` by itself"
        )
    url = args.http
    if not url:
        from retriever.serve.discovery import find_server

        server = find_server(index_folder(args), timeout=1.0)
        url = server.url if server is not None else DEFAULT_URL
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HookError(f"--http {url}: expected a server's URL, e.g. {DEFAULT_URL}")
    query = {
        name: value
        for name, value in (
            ("k", args.k),
            ("max_chars", args.max_chars),
            ("min_words", args.min_words),
        )
        if value
    }
    route = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/hooks/{agent.name}"
    if query:
        route += "?" + urllib.parse.urlencode(query)
    return agents.http_entry(agent, route, TOKEN_ENV, HTTP_TIMEOUT_S)


def print_config(agent: Agent, args: Any) -> int:
    """Print the entry on stdout (JSON alone, to paste or pipe) and where it goes on
    stderr; 2 on a user error."""
    try:
        entry = settings_entry(agent, args)
    except BaseException as e:  # noqa: BLE001 - one line, like every user error
        _stderr_line(_one_line(e))
        return 2
    sys.stdout.write(json.dumps(entry, indent=2) + "\n")
    note = f"add this to {agent.settings}"
    if getattr(args, "http", None) is not None:
        note += f"; the server's token, if it has one, is read from ${TOKEN_ENV}"
    _stderr_line(note)
    return 0


# -- output -------------------------------------------------------------------------------


def _one_line(e: BaseException) -> str:
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, SystemExit):
        return f"exited ({e.code})"
    from retriever.errors import RetrieverError

    text = str(e) or type(e).__name__
    if not isinstance(e, (HookError, RetrieverError)):
        text = f"{type(e).__name__}: {text}"
    return " ".join(text.split())


class _Output:
    """Writes stdout once, and gives up at the deadline: whichever comes first wins.

    The deadline is kept by a thread that ends the process with ``os._exit(0)``: a search
    can be stuck in native code (onnxruntime, a slow disk) where no Python exception
    reaches it.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._lock = threading.Lock()
        self._done = False

    def start_clock(self) -> None:
        threading.Thread(target=self._expire, name="hook-deadline", daemon=True).start()

    def _expire(self) -> None:
        time.sleep(max(0.0, self.deadline - time.monotonic()))
        with self._lock:
            if self._done:
                return
            self._done = True
            _stderr_line(f"gave up after {self.timeout:g} s (--timeout); nothing added")
            _exit_now()

    def finish(self, text: str | None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            if text:
                try:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                except BrokenPipeError:
                    _silence_stdout()

    def fail(self, message: str) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            _stderr_line(message)


def _stderr_line(message: str) -> None:
    try:
        sys.stderr.write(f"retrieve hook: {message}\n".encode("utf-8", "replace").decode())
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null: the interpreter's final flush would
    otherwise print a traceback-like warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _exit_now() -> NoReturn:
    sys.stderr.flush()
    os._exit(0)
