"""Stress test of ``retrieve serve --watch`` when a skills root is replaced whole.

Run from the repository root::

    python -m benchmarks.stress_watch                  # 5 replacements per method
    python -m benchmarks.stress_watch --repeats 10 --models-from ~/.cache/skill-retriever

Deploys and checkouts replace a folder rather than edit it. For each way of doing so, a
real ``retrieve serve --watch --port 0`` subprocess serves a temporary copy of the bundled
collection (``skills/``), and the root is replaced ``--repeats`` times by a copy holding a
distinctive edit: a new trigger phrase on one skill, made of nonsense words no skill has.

- ``rm+cp``: ``rm -rf R && cp -r NEW R``
- ``mv swap``: ``mv R R.old && mv NEW R``
- ``symlink``: ``ln -s NEW R.tmp && mv -T R.tmp R`` (R is a link from the start)

After each replacement ``POST /search`` is asked for the phrase until the trigger is among
the matches (served), or ``--timeout`` seconds pass (a failure); then the same is done for a
second phrase added in place to a file of the replacing folder (an edit after the
replacement, which needs the watch moved to the new folder). Printed per method: failures
and the median and slowest time from the command to the edit being served, and ``/health``
at the end. Every server has its own ``SKILL_RETRIEVER_HOME`` in a temporary folder;
``--models-from HOME`` links that home's ``models/`` (the ONNX export) instead of making it
again. Loopback only; the servers are stopped and the folder removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "skills"
SKILL = "css-layout"  # the skill whose triggers are edited


# -- the collection -------------------------------------------------------------------------


def add_trigger(root: Path, phrase: str) -> None:
    path = next(root.rglob(f"{SKILL}/skill.yaml"))
    text = path.read_text(encoding="utf-8")
    if "\ntriggers:\n" not in text:
        raise SystemExit(f"stress_watch: error: {path} has no triggers list to edit")
    path.write_text(text.replace("\ntriggers:\n", f"\ntriggers:\n  - {phrase}\n", 1), "utf-8")


def edited_copy(to: Path, phrase: str) -> Path:
    shutil.copytree(BUNDLED, to)
    add_trigger(to, phrase)
    return to


class Phrases:
    """Trigger phrases of nonsense words, each new one sharing no word with the others."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def __call__(self) -> str:
        word = "".join(self.random.choice(string.ascii_lowercase) for _ in range(9))
        return f"stress marker {word}"


# -- the server -----------------------------------------------------------------------------


def call(url: str, data: dict | None = None) -> dict:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


class Server:
    """``retrieve serve --watch --port 0`` on ``skills`` with ``index``, in ``home``."""

    def __init__(self, skills: Path, index: Path, home: Path, log: Path) -> None:
        cmd = [sys.executable, "-m", "retriever.cli", "serve", "--watch", "--port", "0"]
        cmd += ["--host", "127.0.0.1", "--skills", str(skills), "--index", str(index)]
        env = {**os.environ, "SKILL_RETRIEVER_HOME": str(home), "PYTHONPATH": str(REPO)}
        self.log = log.open("w")
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO, env=env
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("serving "):
            self.stop()
            raise SystemExit(f"stress_watch: error: the server did not start ({line!r}; {log})")
        self.url = line.split(" at ", 1)[1].split(": ", 1)[0]

    def serves(self, phrase: str) -> bool:
        """Whether ``phrase`` is a trigger of the index served now."""
        body = call(f"{self.url}/search", {"query": phrase, "k": 3})
        return any(m.get("text") == phrase for s in body["skills"] for m in s["matches"])

    def health(self) -> dict:
        return call(f"{self.url}/health")

    def wait_watching(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.health()["watch"]["enabled"]:
            if time.monotonic() > deadline:
                raise SystemExit("stress_watch: error: the watch did not start")
            time.sleep(0.1)
        time.sleep(1.5)  # the watcher's first wake-up: its watches are in place

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def until_served(server: Server, phrase: str, started: float, timeout: float) -> float | None:
    """Seconds from ``started`` until ``phrase`` is served; ``None`` past ``timeout``."""
    while time.monotonic() - started < timeout:
        try:
            if server.serves(phrase):
                return time.monotonic() - started
        except OSError:  # a request refused or reset: asked again
            pass
        time.sleep(0.1)
    return None


# -- the ways a root is replaced ------------------------------------------------------------


def sh(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


def rm_cp(root: Path, new: Path) -> None:
    sh(f"rm -rf {shlex.quote(str(root))} && cp -r {shlex.quote(str(new))} {shlex.quote(str(root))}")


def mv_swap(root: Path, new: Path) -> None:
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)  # the previous swap's, before the clock starts
    r, o, n = (shlex.quote(str(p)) for p in (root, old, new))
    sh(f"mv {r} {o} && mv {n} {r}")


def symlink_switch(root: Path, new: Path) -> None:
    tmp = shlex.quote(str(root.with_name(root.name + ".tmp")))
    sh(f"ln -s {shlex.quote(str(new))} {tmp} && mv -T {tmp} {shlex.quote(str(root))}")


METHODS: dict[str, Callable[[Path, Path], None]] = {
    "rm+cp": rm_cp,
    "mv swap": mv_swap,
    "symlink": symlink_switch,
}


# -- one method -----------------------------------------------------------------------------


def run_method(
    name: str, work: Path, base_index: Path, home: Path, args: argparse.Namespace, phrase
) -> dict:
    folder = work / name.replace(" ", "-").replace("+", "-")
    folder.mkdir()
    root = folder / "skills"
    if name == "symlink":
        first = folder / "v0"
        shutil.copytree(BUNDLED, first)
        os.symlink(first, root)
    else:
        shutil.copytree(BUNDLED, root)
    index = folder / "index"
    shutil.copytree(base_index, index, symlinks=True)
    server = Server(root, index, home, folder / "server.log")
    replaced: list[float | None] = []
    edited: list[float | None] = []
    try:
        server.wait_watching()
        for i in range(args.repeats):
            first_phrase, later_phrase = phrase(), phrase()
            new = edited_copy(folder / f"new-{i}", first_phrase)  # made before the clock
            started = time.monotonic()
            METHODS[name](root, new)
            replaced.append(until_served(server, first_phrase, started, args.timeout))
            # an edit in place, in the folder now served: needs the watch moved to it
            started = time.monotonic()
            add_trigger(root.resolve(), later_phrase)
            edited.append(until_served(server, later_phrase, started, args.timeout))
            if name == "rm+cp":
                shutil.rmtree(new)
        health = server.health()
    finally:
        server.stop()
    return {"replaced": replaced, "edited": edited, "health": health, "log": folder / "server.log"}


def summary(times: list[float | None]) -> str:
    served = [t for t in times if t is not None]
    failed = len(times) - len(served)
    median = f"{statistics.median(served):.2f}" if served else "-"
    slowest = f"{max(served):.2f}" if served else "-"
    return f"{failed:>6} {median:>9} {slowest:>7}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stress_watch")
    parser.add_argument("--repeats", type=int, default=5, help="replacements per method")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per edit")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--models-from",
        type=Path,
        default=Path(os.environ["SKILL_RETRIEVER_HOME"])
        if os.environ.get("SKILL_RETRIEVER_HOME")
        else None,
        help="a SKILL_RETRIEVER_HOME whose models/ (the ONNX export) is reused "
        "(default: $SKILL_RETRIEVER_HOME)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="stress-watch-"))
    home = work / "home"
    home.mkdir()
    models = args.models_from / "models" if args.models_from else None
    if models is not None and models.is_dir():
        os.symlink(models.resolve(), home / "models")
    try:
        base_index = work / "index"
        env = {**os.environ, "SKILL_RETRIEVER_HOME": str(home), "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "retriever.cli", "-q", "index", "--skills", str(BUNDLED)]
        subprocess.run(
            cmd + ["--index", str(base_index)],
            check=True,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"stress_watch: retrieve serve --watch on a copy of {BUNDLED.name}/, "
            f"{args.repeats} replacements per method, timeout {args.timeout:g} s"
        )
        print(
            f"{'method':<9} {'replaced: failed':>16} {'median s':>9} {'max s':>7}"
            f"   {'then edited in place: failed':>28} {'median s':>9} {'max s':>7}"
        )
        phrase, failures = Phrases(args.seed), 0
        for name in args.methods:
            out = run_method(name, work, base_index, home, args, phrase)
            failures += sum(t is None for t in out["replaced"] + out["edited"])
            print(f"{name:<9} {summary(out['replaced']):>33}   {summary(out['edited']):>45}")
            watch = out["health"]["watch"]
            print(
                f"          /health at the end: stale {json.dumps(out['health']['stale'])}, "
                f"{out['health']['skills']} skills, generation {watch['generation']}, "
                f"last reload {(watch['last_reload'] or {}).get('outcome')}"
            )
        print(f"failures: {failures}")
        return 1 if failures else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
