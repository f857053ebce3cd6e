"""Live reload with real file edits, the real watcher (watchfiles) and the real model: an
edit is served within a bounded time, no query fails during the swap, a broken edit keeps
the last good index serving, and a root that goes away and comes back is watched again."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, wait_for

pytest.importorskip("watchfiles", reason="the serve extra is not installed")

SKILL = "css-layout"
PHRASE = "quarterly zebra census spreadsheet"  # in no skill until the edit adds it
WAIT_S = 60


@pytest.fixture
def live(tmp_path, bundled_index, bundled):
    """A copy of the bundled collection, its index (reusing the session's vectors), served
    live and watched."""
    from retriever import SkillRetriever
    from retriever.serve.live import LiveRetriever, SkillWatcher

    skills = tmp_path / "skills"
    shutil.copytree(BUNDLED, skills)
    index = tmp_path / "index"
    shutil.copytree(bundled_index, index, symlinks=True)
    retriever = SkillRetriever.open(skills, index_dir=index, embedder=bundled.embedder)
    live = LiveRetriever(retriever, [skills.resolve()])
    watcher = SkillWatcher(live, step_ms=100).start()
    assert watcher.ready.wait(10)
    yield live
    watcher.stop()


def skill_file(live) -> Path:
    return Path(live.current.skill(SKILL).path)


def add_trigger(path: Path, phrase: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert "\ntriggers:\n" in text
    path.write_text(text.replace("\ntriggers:\n", f"\ntriggers:\n  - {phrase}\n", 1), "utf-8")


def top(live, query: str) -> str | None:
    result = live.current.search(query, k=3)
    return None if result.no_match or not result.skills else result.skills[0].id


def test_an_edited_trigger_is_served_with_no_failed_query_during_the_swap(live):
    assert top(live, PHRASE) != SKILL
    failures, answers = [], []
    stop = threading.Event()

    def keep_querying() -> None:  # as a server's clients would, across the swap
        while not stop.is_set():
            try:
                answers.append(top(live, PHRASE))
            except Exception as e:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(repr(e))

    querying = threading.Thread(target=keep_querying)
    querying.start()
    try:
        started = time.monotonic()
        add_trigger(skill_file(live), PHRASE)
        wait_for(lambda: top(live, PHRASE) == SKILL, "the new trigger is served")
        took = time.monotonic() - started
    finally:
        stop.set()
        querying.join(10)
    assert failures == []
    assert answers and answers[-1] == SKILL and SKILL not in answers[:1]
    assert live.generation == 1 and live.held_because is None
    # one swap; a later batch of the same edit's events may rescan and find nothing changed
    assert live.last_reload.outcome in ("reloaded", "unchanged") and took < WAIT_S
    assert live.freshness() == (False, None)


def test_a_broken_edit_keeps_the_last_good_index_serving(live):
    from retriever.serve.http import health

    path = skill_file(live)
    good = path.read_text(encoding="utf-8")
    before = live.current
    path.write_text(good + "\nname: [this list is never closed\n", encoding="utf-8")
    wait_for(lambda: live.held_because, "the broken edit is reported")
    assert str(path) in live.held_because and "does not load" in live.held_because
    assert live.current is before and live.generation == 0
    assert top(live, "css grid layout with flexbox alignment") == SKILL  # still served
    report = health(live)
    assert report["stale"] is True and report["stale_because"] == live.held_because
    assert report["watch"]["last_reload"]["outcome"] == "held"

    add_trigger(path, PHRASE)  # still broken: still held
    time.sleep(1.5)
    assert live.current is before
    path.write_text(good, encoding="utf-8")  # mended as it was: nothing to rebuild
    wait_for(lambda: live.held_because is None, "the mended file clears the report")
    assert live.current is before and health(live)["stale"] is False
    add_trigger(path, PHRASE)
    wait_for(lambda: top(live, PHRASE) == SKILL, "a good edit is served again")


def test_a_broken_side_file_keeps_the_last_good_index_serving(live):
    """A sharp-edges.yaml saved half-way would drop the skill's gotchas from the index: held,
    like a broken skill.yaml."""
    edges = skill_file(live).with_name("sharp-edges.yaml")
    good = edges.read_text(encoding="utf-8")
    before = live.current
    edges.write_text(good + "\n  - [this list is never closed\n", encoding="utf-8")
    wait_for(lambda: live.held_because, "the broken side file is reported")
    assert str(edges) in live.held_because and "does not load" in live.held_because
    assert live.current is before and live.freshness()[0] is True
    edges.write_text(good, encoding="utf-8")
    wait_for(lambda: live.held_because is None, "the mended file clears the report")


def test_a_new_skill_that_never_loaded_does_not_hold_reloads(live):
    """A broken skill that appears while serving is reported, and edits elsewhere are still
    served: only a file that loaded before holds the index."""
    root = live.roots[0]
    newbie = root / "backend" / "newbie" / "skill.yaml"
    newbie.parent.mkdir()
    newbie.write_text("id: newbie\nname: [oops\n", encoding="utf-8")
    wait_for(lambda: live.generation == 1, "the collection with the new file is loaded")
    assert live.held_because is None
    assert str(newbie) in {p.path for p in live.current.problems}
    add_trigger(skill_file(live), PHRASE)
    wait_for(lambda: top(live, PHRASE) == SKILL, "an edit elsewhere is served")
    assert live.held_because is None


def test_a_root_that_disappears_and_comes_back_is_watched_again(live, tmp_path):
    root = live.roots[0]
    away = tmp_path / "moved-away"
    root.rename(away)
    wait_for(lambda: live.held_because and "is missing" in live.held_because, "root missing")
    assert top(live, "css grid layout with flexbox alignment") == SKILL  # still serving
    away.rename(root)
    wait_for(lambda: live.held_because is None, "the root is back")
    add_trigger(skill_file(live), PHRASE)
    wait_for(lambda: top(live, PHRASE) == SKILL, "edits after the return are served")


def test_serve_watch_end_to_end(tmp_path, bundled_index, bundled):
    """`retrieve serve --watch`: the edit shows in /search and /health over HTTP."""
    from helpers import Server, request

    skills = tmp_path / "skills"
    shutil.copytree(BUNDLED, skills)
    index = tmp_path / "index"
    shutil.copytree(bundled_index, index, symlinks=True)
    server = Server("--skills", str(skills), "--index", str(index), "--watch")
    try:

        def top_over_http():
            status, body = request(f"{server.url}/search", {"query": PHRASE, "k": 3}, token=None)
            assert status == 200
            return None if body["no_match"] else body["skills"][0]["id"]

        assert top_over_http() != SKILL
        wait_for(lambda: request(f"{server.url}/health", token=None)[1]["watch"]["enabled"], "up")
        time.sleep(1.5)  # the watcher's first quiet second: its watches are in place
        add_trigger(next(skills.rglob(f"{SKILL}/skill.yaml")), PHRASE)
        wait_for(lambda: top_over_http() == SKILL, "the edit is served over HTTP")
        watch = request(f"{server.url}/health", token=None)[1]["watch"]
        # one swap; a later batch of the edit's events may rescan and find nothing changed
        assert watch["generation"] == 1
        assert watch["last_reload"]["outcome"] in ("reloaded", "unchanged")
    finally:
        assert server.stop() == 0
