"""``retrieve hook claude-code``: the skills for each prompt, as a Claude Code hook.

Claude Code runs the command on every ``UserPromptSubmit`` with the event as JSON on stdin
(``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name``, ``prompt``). On exit 0 it
adds ``hookSpecificOutput.additionalContext`` from stdout to the model's context; exit 2
would block the prompt. So this command always exits 0: an error of any kind prints
nothing on stdout and one line on stderr; a slash command, a prompt of a few words, or a
prompt nothing in the collection fits prints nothing at all.

It is paid on every prompt, so it is quick and bounded: when a ``retrieve serve`` runs for
the same index it asks that server (a few milliseconds, and this process never loads the
model); otherwise it searches in-process on the existing index, never building one. Past
``--timeout`` seconds it gives up.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

EVENT = "UserPromptSubmit"
DEFAULT_K = 3
# Claude Code passes up to 10,000 characters of a hook's output whole (more goes to a file);
# the top skills' headers and best patterns fit well within this.
DEFAULT_MAX_CHARS = 4000
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MIN_WORDS = 3
MAX_EVENT_BYTES = 8 << 20
MAX_PROMPT_CHARS = 20_000  # the search reads 2,000 words at most anyway
SERVER_TIMEOUT_S = 1.5  # then the in-process search, which takes about a second
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


class HookError(Exception):
    """A reason to add nothing, said on stderr in one line."""


def run_claude_code(args: Any) -> int:
    """The hook command; returns 0 whatever happens (``args`` from ``retrieve hook``)."""
    logging.disable(logging.CRITICAL)  # stderr carries one line at most: ours
    warnings.simplefilter("ignore")
    output = _Output(args.timeout or DEFAULT_TIMEOUT_S)
    try:
        if args.print_config:
            output.finish(json.dumps(settings_entry(args), indent=2) + "\n")
            return 0
        output.start_clock()
        prompt = prompt_of(read_event(sys.stdin.buffer))
        if prompt is None or not worth_searching(prompt, args.min_words or DEFAULT_MIN_WORDS):
            output.finish(None)
            return 0
        context = find_context(prompt, args, output.deadline)
        output.finish(_hook_json(context) if context else None)
    except BaseException as e:  # noqa: BLE001 - nothing may break the user's prompt
        output.fail(_one_line(e))
    return 0


# -- the event --------------------------------------------------------------------------------


def read_event(stream) -> dict[str, Any]:
    data = stream.read(MAX_EVENT_BYTES + 1)
    if len(data) > MAX_EVENT_BYTES:
        raise HookError(f"the hook input is over {MAX_EVENT_BYTES} bytes")
    try:
        event = json.loads(data.decode("utf-8", "replace"))
    except ValueError as e:
        raise HookError(f"the hook input is not JSON ({e})") from e
    if not isinstance(event, dict):
        raise HookError("the hook input is not a JSON object")
    return event


def prompt_of(event: dict[str, Any]) -> str | None:
    """The prompt to search for; ``None`` for another event (the hook was registered under
    the wrong one: nothing to add)."""
    name = event.get("hook_event_name", EVENT)
    if name != EVENT:
        return None
    prompt = event.get("prompt")
    if not isinstance(prompt, str):
        raise HookError('the hook input has no "prompt" string')
    return prompt


def worth_searching(prompt: str, min_words: int) -> bool:
    """Not a slash command (``/clear``, ``/review``: Claude Code's own), and long enough to
    say what the task is."""
    text = prompt.strip()
    return bool(text) and not text.startswith("/") and len(text.split()) >= min_words


# -- the context ------------------------------------------------------------------------------


def find_context(prompt: str, args: Any, deadline: float) -> str:
    """The Markdown to add for ``prompt`` ("" when nothing fits): from a running server of
    the same index when there is one, else searched here."""
    from retriever.serve.discovery import find_server

    query = prompt.strip()[:MAX_PROMPT_CHARS]
    k = args.k or DEFAULT_K
    budget = (args.max_chars or DEFAULT_MAX_CHARS) - PREAMBLE_CHARS
    if budget < 200:
        raise HookError(
            f"--max-chars must leave room for a skill (at least {PREAMBLE_CHARS + 200})"
        )
    wait = min(SERVER_TIMEOUT_S, max(0.1, (deadline - time.monotonic()) / 2))
    started = time.monotonic()
    # only a server that proves it is the one its discovery file names: a stale file may
    # point at a port another process (another collection's server) holds now
    server = find_server(index_folder(args), timeout=wait)
    if server is not None:
        wait = max(0.1, wait - (time.monotonic() - started))
        try:
            return _with_preamble(*ask_server(server, query, k, budget, wait))
        except Exception:  # noqa: BLE001 - any bad reply: search here, as if none ran
            pass
    return _with_preamble(*search_here(query, args, k, budget))


def index_folder(args: Any) -> Path:
    """The index folder ``SkillRetriever.open`` would use for these options, worked out
    without loading anything (so the path to a running server stays cheap)."""
    from retriever.index.embed import resolve_model
    from retriever.paths import index_folder as folder_of
    from retriever.paths import resolve_roots

    if args.index:  # resolving the model (a folder walk for a model on disk) is not needed
        return Path(args.index).expanduser().resolve()
    model_id, _ = resolve_model(args.model)
    return folder_of(resolve_roots(args.skills), model_id).resolve()


def reply_limit(k: int, budget: int) -> int:
    """The most bytes a ``/search`` reply for ``k`` skills and a ``budget`` of Markdown can
    honestly take: the result (each skill's matches, patterns and answers, a few KB) and
    the Markdown, each character up to 6 bytes as a JSON escape."""
    return 64 * 1024 + 16 * 1024 * k + 6 * budget


def ask_server(server, query: str, k: int, budget: int, timeout: float) -> tuple[str, str]:
    """``(query as searched, Markdown)`` from the server's ``POST /search``.

    Nothing in the reply is trusted: it is read up to ``reply_limit`` bytes, and anything
    but the documented shape, with Markdown within the budget asked for, is a ``HookError``
    (the caller then searches here)."""
    import urllib.error
    import urllib.request

    body = json.dumps({"query": query, "k": k, "max_chars": budget}).encode()
    headers = {"Content-Type": "application/json"}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    request = urllib.request.Request(f"{server.url}/search", body, headers, method="POST")
    limit = reply_limit(k, budget)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(limit + 1)
    except urllib.error.HTTPError as e:
        if e.code == 400:  # the query itself (say, only symbols): nothing to add
            return query, ""
        if e.code == 503:  # its first index is being built: nothing yet, and no build here
            return query, ""
        raise HookError(f"the server answered {e.code}") from e
    if len(raw) > limit:
        raise HookError(f"the server's reply is over {limit} bytes")
    return checked_reply(json.loads(raw), budget)


def checked_reply(result: Any, budget: int) -> tuple[str, str]:
    """``(query, Markdown)`` of a ``/search`` reply, or ``HookError`` for any other shape."""
    if not isinstance(result, dict):
        raise HookError("the server's reply is not a JSON object")
    query, no_match, markdown = result.get("query"), result.get("no_match"), result.get("markdown")
    if not isinstance(query, str) or not isinstance(no_match, bool):
        raise HookError("the server's reply has no query or no_match")
    if no_match:
        return query, ""
    if not isinstance(markdown, str):
        raise HookError("the server's reply has no markdown string")
    if len(markdown) > budget:
        raise HookError(f"the server's Markdown is over the {budget} characters asked for")
    return query, markdown


def search_here(query: str, args: Any, k: int, budget: int) -> tuple[str, str]:
    """``(query as searched, Markdown)`` from the index on disk, which must be there and up
    to date: building one takes minutes, far too long for a prompt."""
    from retriever.api import SkillRetriever
    from retriever.errors import QueryError, StaleIndexError
    from retriever.index.embed import make_embedder

    embedder = make_embedder(args.model, args.backend)
    if not embedder.runtime().ready:
        # the ONNX export is made on first use and takes longer than any prompt should
        # wait: cut short each time, it would be started again on every prompt.
        # `retrieve index` makes it, and the index too when that is missing or stale.
        raise HookError(
            "the model's fast ONNX export is not made yet; make it (and the index, if "
            f"needed) once with: {build_command(args)}"
        )
    try:
        retriever = SkillRetriever.open(
            args.skills,
            index_dir=args.index,
            rebuild="never",
            embedder=embedder,
            progress=False,
            verify=bool(getattr(args, "verify", False)),
        )
    except StaleIndexError as e:  # our own advice instead of the library's
        raise HookError(f"{e.why}; build it with: {build_command(args)}") from e
    try:
        result = retriever.search(query, k=k)
    except QueryError:
        return query, ""
    if result.no_match:
        return result.query, ""
    return result.query, retriever.render_markdown(result, max_chars=budget)


def _with_preamble(query: str, markdown: str) -> str:
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


def _hook_json(context: str) -> str:
    output = {"hookSpecificOutput": {"hookEventName": EVENT, "additionalContext": context}}
    # ASCII JSON (escapes for the rest) with lone surrogates replaced: always decodable
    return json.dumps(output, ensure_ascii=True).encode("utf-8", "replace").decode() + "\n"


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
    """How to run this ``retrieve``: its name when that is what PATH finds, else its path,
    else ``python -m retriever.cli`` (a source checkout)."""
    script = Path(sys.argv[0])
    if script.name == "retrieve":
        found = shutil.which("retrieve")
        if found and Path(found).resolve() == script.resolve():
            return ["retrieve"]
        return [str(script.resolve())]
    return [sys.executable, "-m", "retriever.cli"]


def build_command(args: Any) -> str:
    return shlex.join([*_retrieve_command(), "index", *_passed_options(args)])


def settings_entry(args: Any) -> dict[str, Any]:
    """The ``.claude/settings.json`` entry that runs this hook with these options.

    The index folder is always named: the default one depends on the environment
    (``$SKILL_RETRIEVER_HOME``, a source checkout), which Claude Code's may not share."""
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
    command = shlex.join([*_retrieve_command(), "hook", "claude-code", *options])
    timeout = int((args.timeout or DEFAULT_TIMEOUT_S) + 5)  # ours runs out first
    return {
        "hooks": {EVENT: [{"hooks": [{"type": "command", "command": command, "timeout": timeout}]}]}
    }


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
