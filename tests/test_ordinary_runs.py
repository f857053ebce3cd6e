"""Ordinary runs never crash, hang or mislead (issue: the defects found by trying to break it).

Each test here failed on the code before its fix; docs/reliability.md lists them with what
happens now.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED, write
from helpers import EMPTY_HOME, python, retrieve
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.errors import IndexError_, ModelError, QueryError, StaleIndexError
from retriever.load import load_collection

# -- 1. crashes and hangs on ordinary runs --------------------------------------------------


def test_no_module_is_imported_off_the_main_thread_while_opening(bundled_index, bundled):
    """The import race: the warm-up thread imported numpy (through onnxruntime) while the
    main thread imported FAISS, which killed about one cold start in five."""
    p = python(f"""
        import builtins, sys, threading
        seen = []
        real = builtins.__import__
        def spy(name, *args, **kwargs):
            if threading.current_thread() is not threading.main_thread() \\
                    and name not in sys.modules:
                seen.append((threading.current_thread().name, name))
            return real(name, *args, **kwargs)
        builtins.__import__ = spy
        from retriever import SkillRetriever
        r = SkillRetriever.open({str(BUNDLED)!r}, index_dir={str(bundled_index)!r},
                                rebuild="never")
        r.search("my webhook handler processes the same event twice")
        builtins.__import__ = real
        print(seen)
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_an_error_exit_joins_the_warm_up_thread_first(tmp_path, bundled_index, bundled):
    """The abort at exit: a failed open left the warm-up thread inside onnxruntime while the
    process exited ("terminate called without an active exception", exit 134)."""
    damaged = tmp_path / "idx"
    shutil.copytree(bundled_index, damaged, symlinks=True)
    f = damaged / "current" / "vectors.faiss"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    p = python(f"""
        import threading
        from retriever import SkillRetriever
        from retriever.errors import StaleIndexError
        try:
            SkillRetriever.open({str(BUNDLED)!r}, index_dir={str(damaged)!r}, rebuild="never")
        except StaleIndexError:
            print([t.name for t in threading.enumerate() if t is not threading.main_thread()])
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
    cli = retrieve("search", "webhook", "--index", str(damaged), "--no-rebuild", check=False)
    assert cli.returncode == 2 and "does not match the manifest" in cli.stderr
    assert "terminate called" not in cli.stderr


@pytest.mark.parametrize("name", ["skill.yaml", "SKILL.md"])
def test_a_fifo_in_a_skill_files_place_is_skipped_with_a_problem(tmp_path, name):
    root = write_mini(tmp_path / "skills")
    (root / "odd/pipe").mkdir(parents=True)
    os.mkfifo(root / "odd/pipe" / name)
    os.mkfifo(root / "backend/queues/collaboration.yaml")  # a side file: left out, reported
    report = load_collection([root])  # before the fix: waited forever for a writer
    assert sorted(s.id for s in report.skills) == ["queues", "security", "webhooks"]
    reasons = {p.path: p.reason for p in report.problems}
    assert reasons[str(root / "odd/pipe" / name)] == "is a FIFO, not a regular file; not read"
    assert reasons[str(root / "backend/queues/collaboration.yaml")] == (
        "is a FIFO, not a regular file; not read"
    )
    assert retrieve("show", "queues", "--skills", str(root)).returncode == 0
    lint = retrieve("lint", "--no-reach", "--skills", str(root), check=False)
    assert lint.returncode == 1 and "is a FIFO" in lint.stdout


def test_a_lone_surrogate_in_the_query_is_cleaned(bundled):
    r = bundled.search("redis \udcff cache", k=3)  # what a command line makes of byte 0xff
    assert r.skills[0].id == "caching" and r.query == "redis cache"
    assert "characters that are not valid Unicode were removed from the query" in r.notes
    with pytest.raises(QueryError, match="query must be a string"):
        bundled.search(b"redis cache")  # type: ignore[arg-type]


def test_a_lone_surrogate_on_the_command_line(bundled_index, bundled):
    p = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"retriever.cli",
            b"search",
            b"redis \xff cache",
            b"--json",
            b"--index",
            str(bundled_index).encode(),
        ],
        capture_output=True,
        timeout=120,
        env={**os.environ, "HOME": EMPTY_HOME},
    )
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["skills"][0]["id"] == "caching"


def mcp_exchange(
    index_dir: Path, messages: list[dict], want: set[int], timeout: float = 120
) -> dict[int, dict]:
    """Send raw JSON-RPC lines to ``retrieve mcp`` and collect the replies with ids in
    ``want`` (stdin stays open until they came, as a client keeps it)."""
    import selectors
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "retriever.cli", "-q", "mcp", "--index", str(index_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": EMPTY_HOME},
    )
    replies: dict[int, dict] = {}
    try:
        for m in messages:  # json.dumps escapes "\ud800" as the six characters a client sends
            proc.stdin.write(json.dumps(m) + "\n")
        proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not want <= set(replies) and time.monotonic() < deadline:
            if sel.select(timeout=1):
                line = proc.stdout.readline()
                if not line:
                    break
                reply = json.loads(line)
                replies[reply.get("id")] = reply
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return replies


def test_mcp_answers_queries_and_ids_holding_lone_surrogates(bundled_index, bundled):
    """Raw JSON-RPC lines, as a client writes them: ``\\ud800`` escapes decode to lone
    surrogates, whose echo in an error message could not be written, so no reply came."""
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "search_skills",
                "arguments": {"query": "redis \ud800 cache", "k": 2},
            },
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_skill", "arguments": {"id": "\udcff"}},
        },
    ]
    replies = mcp_exchange(bundled_index, lines, want={1, 2, 3})
    found = json.loads(replies[2]["result"]["content"][0]["text"])
    assert found["skills"][0]["id"] == "caching"
    assert replies[3]["error"]["code"] == -32602
    assert "unknown skill id" in replies[3]["error"]["message"]


def test_a_folder_name_that_is_not_utf8_costs_one_problem(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    bad = os.fsencode(root) + b"/odd/bad\xffname"
    os.makedirs(bad)
    with open(bad + b"/skill.yaml", "w") as f:
        f.write("id: odd\nname: Odd\ndescription: d\n")
    r = SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)
    assert sorted(s.id for s in r.skills) == ["queues", "security", "webhooks"]
    problem = next(p for p in r.problems if "UTF-8" in p.reason)
    assert problem.path.endswith("odd/bad\\xffname/skill.yaml") and problem.skipped
    json.dumps([p.path for p in r.problems], ensure_ascii=False).encode("utf-8")


# -- 2. inputs that blew up in time ---------------------------------------------------------


def test_long_runs_of_spaces_and_words_in_rules_and_triggers(tmp_path):
    """82 s to build and 45 s a search (a quadratic split), 245 s for a 5,000-word query
    against a 3,000-word trigger (matching every n-gram). Run in a fresh process with a
    generous bound: this is a hang detector, the numbers are in benchmarks/stress.py."""
    root = tmp_path / "skills"
    write(
        root / "a/contracts/skill.yaml",
        f"""
        id: contracts
        name: Contracts
        description: Reviewing contracts
        triggers: ["{" ".join(["clause"] * 3000)}", contract law]
        handoffs:
          - trigger: "contract{" " * 40_000}review"
            to: legal
          - trigger: "nda|{" ".join(["term"] * 20)}"
            to: legal
    """,
    )
    write(root / "a/legal/skill.yaml", "id: legal\nname: Legal\ndescription: Law\n")
    # the 5,000 words; the handoff phrases at its start survive the cut to 2,000
    query = "contract review nda " + " ".join(["clause"] * 4997)
    p = python(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import FakeEmbedder
        from retriever import SkillRetriever
        r = SkillRetriever.open({str(root)!r}, index_dir={str(tmp_path / "idx")!r},
                                embedder=FakeEmbedder())
        res = r.search({query!r}, k=1)  # legal unlisted: a handoff to it is shown
        print(sorted(h.reason for h in res.handoffs))
        print(sorted(p.reason for p in r.problems))
    """,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    handoffs, problems = p.stdout.strip().splitlines()
    assert "'contract review' in the query matches rule" in handoffs
    assert "triggers[0] has 3,000 words; keyword matching reads triggers of at most 12" in problems
    assert "a phrase of the handoff rule to 'legal'" in problems and "has 20 words" in problems


# -- 3. tracebacks where a clear line belongs -----------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` mounted read-only over itself (needs root), else skip."""
    if (
        subprocess.run(
            ["mount", "--bind", str(folder), str(folder)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot bind-mount here (not root?)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def immutable(folder: Path):
    """``folder`` made immutable with chattr (root, ext4), else skip."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("lock_out", [read_only, immutable])
def test_a_stale_index_in_a_folder_that_cannot_be_written(tmp_path, fake_embedder, lock_out):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    write(root / "backend/queues/skill.yaml", "id: queues\nname: Q\ndescription: changed\n")
    with lock_out(idx), pytest.raises(StaleIndexError) as e:
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    message = str(e.value)
    assert (
        "needs a rebuild (the skill files changed since it was built) but cannot be "
        "rebuilt there" in message
    )
    assert "retrieve index --skills ... --index" in message


def test_index_pointing_at_a_regular_file(tmp_path, fake_embedder):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(IndexError_, match="is a file, not a folder"):
        SkillRetriever.open(write_mini(tmp_path / "s"), index_dir=f, embedder=fake_embedder)
    p = retrieve("search", "x", "--index", str(f), check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "is a file" in p.stderr


def test_an_unknown_model_name_fails_at_once_and_once(tmp_path):
    from retriever.index.embed import make_embedder

    with pytest.raises(ModelError, match="neither a folder nor in the Hugging Face cache"):
        make_embedder("no-such-org/no-such-model")
    p = retrieve(
        "search",
        "x",
        "--model",
        "no-such-org/no-such-model",
        "--index",
        str(tmp_path / "i"),
        check=False,
    )
    assert p.returncode == 2 and p.stderr.count("no-such-org/no-such-model") == 2  # 1 line
    assert len(p.stderr.strip().splitlines()) == 1


# -- 4. what a failed build leaves behind, and odd names ------------------------------------


def test_leftovers_of_killed_builds_are_cleaned_before_building(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    (idx / ".tmp-v-20260101T000000-dead00").mkdir()  # a build killed while writing
    (idx / ".tmp-v-20260101T000000-dead00" / "vectors.faiss").write_bytes(b"\0" * 1000)
    (idx / "v-20260101T000000-orphan").mkdir()  # a version no link points at
    os.symlink("v-nowhere", idx / ".current-abc123")  # a swap that died half-way
    current = os.readlink(idx / "current")
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="always")
    names = sorted(p.name for p in idx.iterdir())
    assert names == sorted([".lock", "current", os.readlink(idx / "current"), current])


def test_a_real_folder_named_current_is_read_and_then_replaced(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "idx", copy)  # follows the link: `current` is a folder now
    assert (copy / "current").is_dir() and not (copy / "current").is_symlink()
    r = SkillRetriever.open(root, index_dir=copy, embedder=fake_embedder, rebuild="never")
    assert r.search("webhook").skills[0].id == "webhooks"
    SkillRetriever.open(root, index_dir=copy, embedder=fake_embedder, rebuild="always")
    assert (copy / "current").is_symlink()
    SkillRetriever.open(root, index_dir=copy, embedder=fake_embedder, rebuild="never")


def test_a_lock_file_that_is_a_symlink_is_never_followed(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    idx.mkdir()
    outside = tmp_path / "outside" / "owned"
    outside.parent.mkdir()
    os.symlink(outside, idx / ".lock")
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    assert not outside.exists()  # before: created outside the index folder
    assert (idx / ".lock").is_file() and not (idx / ".lock").is_symlink()


def test_skill_md_folder_names_with_control_characters(tmp_path):
    for name in ("esc\x1b[2Jname", "new\nline", "tab\tbed"):
        write(tmp_path / name / "SKILL.md", "---\nname: n\ndescription: d\n---\nbody\n")
    report = load_collection([tmp_path])
    assert sorted(s.id for s in report.skills) == ["esc-[2Jname", "new-line", "tab-bed"]
    assert len(report.problems) == 3
    assert all("is not a usable id" in p.reason for p in report.problems)


def test_terminal_escapes_in_skill_text_never_reach_the_terminal(tmp_path):
    write(
        tmp_path / "evil/SKILL.md",
        '---\nname: "Evil\\e[2J\\e]0;owned\\a"\n'
        'description: "clears \\e[2J the screen"\n---\nbody\n',
    )
    p = retrieve(
        "search", "clears the screen", "--skills", str(tmp_path), "--index", str(tmp_path / "idx")
    )
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "evil" in p.stdout
    p = retrieve("show", "evil", "--skills", str(tmp_path))
    assert "\x1b" not in p.stdout and "Evil" in p.stdout


def test_a_query_of_emoji_then_a_word_is_not_empty(bundled):
    r = bundled.search("🚀" * 10_000 + " redis", k=5)
    assert "caching" in r.skill_ids


# -- 5. output that contradicted itself -----------------------------------------------------


def test_shown_scores_never_cross_a_threshold():
    from retriever.present.results import shown

    assert shown(0.4199) == "0.41" and shown(0.41996) == "0.42" and shown(0.42) == "0.42"
    assert shown(-0.0001) == "-0.01" and shown(0.5) == "0.50"


def test_no_match_is_said_once_and_agrees_with_the_numbers(bundled):
    from retriever.present.results import shown
    from retriever.present.terminal import format_result
    from retriever.search.rank import ScoringConfig

    r = bundled.search("how do I bake sourdough bread at home", k=3)
    assert r.no_match
    text = format_result(r)
    assert text.count("NO MATCH") == 1 and text.count("fits this query") == 1
    best = max(s.score for s in r.skills)
    needed = ScoringConfig().no_match_threshold
    assert f"(best skill {shown(best, 3)} + " in text and f"under the {needed} needed" in text
    assert f"score {shown(best, 3)}" in text  # the number the note quotes is the one listed
    assert r.confidence == "none"
    # the example: a clear winner, its score shown above the threshold, is an
    # answer (before: NO MATCH over a first result at 0.555)
    r = bundled.search("the search box returns irrelevant results for product names", k=3)
    assert r.skills[0].id == "search" and not r.no_match and r.confidence != "none"


def test_best_patterns_across_skills_are_best_first(bundled):
    for q in (
        "my webhook handler processes the same event twice",
        "the search box returns irrelevant results for product names",
        "payment webhook signature failing and need a security audit",
    ):
        scores = [p.score for p in bundled.search(q, k=5).patterns]
        assert scores == sorted(scores, reverse=True) and len(scores) >= 3


def test_handoff_targets_are_listed_apart_from_the_ranking(bundled):
    from retriever.present.terminal import format_result

    q = "pods keep restarting over and over a few seconds after they start"
    r = bundled.search(q, k=3)
    joined = [s for s in r.skills if s.via == "handoff"]
    assert joined, "the bundled rules hand this query off"
    assert [s.via for s in r.skills][:3] == [s.via for s in r.skills[:3]] and all(
        s.via != "handoff" for s in r.skills[:3]
    )
    text = format_result(r)
    ranked_part, handed = text.split("Handed off to (by the rules below, not ranked):")
    assert all(
        f" {s.id} " not in ranked_part.split("\n", 1)[1] or s.id in r.skill_ids[:3] for s in joined
    )
    assert all(f"- {s.id}" in handed for s in joined)


def test_search_says_when_skill_files_could_not_be_loaded(tmp_path):
    root = write_mini(tmp_path / "skills")
    write(root / "broken/one/skill.yaml", "name: [unclosed\n")
    p = retrieve("search", "webhook", "--skills", str(root), "--index", str(tmp_path / "i"))
    assert (
        "1 skill file could not be loaded and is left out; `retrieve index` lists why" in p.stderr
    )


def test_no_match_gives_no_langchain_documents_and_mcp_says_it(bundled):
    pytest.importorskip("langchain_core", reason="the langchain extra is not installed")
    from retriever.integrations.langchain import SkillLangChainRetriever
    from retriever.present.compact import compact_result

    q = "how do I bake sourdough bread at home"
    assert SkillLangChainRetriever(skill_retriever=bundled, k=3).invoke(q) == []
    compact = compact_result(bundled.search(q, k=3))
    assert compact["no_match"] is True and compact["skills"] == []
    assert compact["nearest"] and "fits this query" in compact["notes"][0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "x", "--json", "--markdown"], "not allowed with argument --json"),
        (["search", "x", "--max-chars", "100"], "--max-chars and --max-tokens go with --markdown"),
        (["search", "x", "--markdown", "--max-chars", "-5"], "must be at least 1, not -5"),
        (["search", "x", "--markdown", "--max-tokens", "0"], "must be at least 1, not 0"),
        (["search", "x", "-k", "0"], "must be at least 1, not 0"),
        (["serach", "x"], "unknown command 'serach'; did you mean 'search'?"),
    ],
)
def test_options_that_make_no_sense_are_refused_in_one_line(args, message):
    p = retrieve(*args, check=False)
    assert p.returncode == 2 and message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_lint_and_show_on_an_empty_folder(tmp_path):
    (tmp_path / "empty/a").mkdir(parents=True)
    p = retrieve("lint", "--skills", str(tmp_path / "empty"), "--no-reach", check=False)
    assert p.returncode == 1 and "0 skills: 1 error, 0 warnings" in p.stdout
    p = retrieve("show", "x", "--skills", str(tmp_path / "empty"), check=False)
    assert p.returncode == 2 and "no skills found under" in p.stderr
