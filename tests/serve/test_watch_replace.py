"""Live reload when a skills root is replaced whole, as deploys and checkouts do: removed and
copied again, swapped in by renames, or a symbolic link switched to another folder. Real
files, the real watcher (watchfiles) and the real model, as in test_watch."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, wait_for

pytest.importorskip("watchfiles", reason="the serve extra is not installed")

SKILL = "css-layout"
PHRASE = "quarterly zebra census spreadsheet"  # in no skill until an edit adds it
LATER = "maritime lighthouse inventory ledger"  # the edit made after the replacement
COMPLETE = "css grid layout with flexbox alignment"  # served all along
WAIT_S = 30


def add_trigger(path: Path, phrase: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert "\ntriggers:\n" in text
    path.write_text(text.replace("\ntriggers:\n", f"\ntriggers:\n  - {phrase}\n", 1), "utf-8")


def skill_yaml(root: Path) -> Path:
    return next(root.rglob(f"{SKILL}/skill.yaml"))


def top(live, query: str) -> str | None:
    result = live.current.search(query, k=3)
    return None if result.no_match or not result.skills else result.skills[0].id


def edited_copy(to: Path, phrase: str = PHRASE) -> Path:
    """The bundled collection copied to ``to``, with ``phrase`` a trigger of SKILL."""
    shutil.copytree(BUNDLED, to)
    add_trigger(skill_yaml(to), phrase)
    return to


class Served:
    """A LiveRetriever over ``root`` (as named: a folder or a link to one), with its index
    in ``index`` (a copy of the session's), watched when ``watch``."""

    def __init__(self, root: Path, index: Path, bundled, *, watch: bool = True) -> None:
        from retriever import SkillRetriever
        from retriever.serve.live import LiveRetriever, SkillWatcher

        retriever = SkillRetriever.open(root, index_dir=index, embedder=bundled.embedder)
        self.live = LiveRetriever(retriever, [root])
        self.watcher = SkillWatcher(self.live, step_ms=100).start() if watch else None
        if self.watcher is not None:
            assert self.watcher.ready.wait(10)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


@pytest.fixture
def index(tmp_path, bundled_index, bundled) -> Path:
    """A copy of the session's index: its vectors are reused, a build embeds only edits."""
    folder = tmp_path / "index"
    shutil.copytree(bundled_index, folder, symlinks=True)
    return folder


@pytest.fixture
def served(tmp_path, index, bundled):
    root = tmp_path / "skills"
    shutil.copytree(BUNDLED, root)
    s = Served(root, index, bundled)
    yield s
    s.stop()


def _rm_cp(root: Path, new: Path) -> None:
    shutil.rmtree(root)
    shutil.copytree(new, root)


def _rm_pause_cp(root: Path, new: Path) -> None:  # deleted, back 0.3 s later
    shutil.rmtree(root)
    time.sleep(0.3)
    shutil.copytree(new, root)


def _mv_swap(root: Path, new: Path) -> None:
    root.rename(root.with_name(root.name + ".old"))
    new.rename(root)


@pytest.mark.parametrize("replace", [_rm_cp, _rm_pause_cp, _mv_swap], ids=lambda f: f.__name__)
def test_a_replaced_root_is_watched_again(served, tmp_path, index, replace):
    """The replacement is served, and so are edits made in the new folder afterwards (they
    were lost: inotify kept watching the old folder)."""
    from retriever.serve.http import health

    live, root = served.live, served.live.roots[0]
    replace(root, edited_copy(tmp_path / "new"))
    wait_for(lambda: top(live, PHRASE) == SKILL, "the replacing folder is served")
    add_trigger(skill_yaml(root), LATER)
    wait_for(lambda: top(live, LATER) == SKILL, "an edit in the replacing folder is served")
    report = health(live)
    assert report["stale"] is False and report["watch"]["held_because"] is None
    assert report["skills"] == 26 and report["index"]["folder"] == str(index)


def test_a_half_copied_root_is_not_served_as_complete(served, tmp_path):
    """A root removed and copied again slowly (a skill folder every 0.1 s, as a big or remote
    copy goes) is served once the copy is done, never half of it."""
    live, root = served.live, served.live.roots[0]
    new = edited_copy(tmp_path / "new")
    sizes: dict[int, int] = {}  # id of each index served -> its number of skills
    keep: list = []  # the retrievers seen, so that an id is not reused
    done = threading.Event()

    def watch_swaps() -> None:
        while not done.is_set():
            current = live.current
            if id(current) not in sizes:
                keep.append(current)
                sizes[id(current)] = len(current.skills)
            time.sleep(0.01)

    watching = threading.Thread(target=watch_swaps)
    watching.start()
    try:
        shutil.rmtree(root)
        root.mkdir()
        for path in sorted(new.rglob("*")):  # folders before what they hold
            to = root / path.relative_to(new)
            if path.is_dir():
                to.mkdir()
                if to.parent.parent == root:  # a skill folder: the next one a moment later
                    time.sleep(0.1)
            else:
                shutil.copy2(path, to)
        wait_for(lambda: top(live, PHRASE) == SKILL, "the copied folder is served")
    finally:
        done.set()
        watching.join(10)
    assert sorted(set(sizes.values())) == [26], f"skills served per swap: {list(sizes.values())}"


def _switch(link: Path, to: Path) -> None:
    """``ln -s TO LINK.tmp && mv -T LINK.tmp LINK``: the atomic switch of a deploy."""
    tmp = link.with_name(link.name + ".tmp")
    os.symlink(to, tmp)
    os.replace(tmp, link)


def test_a_switched_link_is_stale_until_reloaded(tmp_path, index, bundled):
    v1 = tmp_path / "v1"
    shutil.copytree(BUNDLED, v1)
    link = tmp_path / "skills"
    os.symlink(v1, link)
    served = Served(link, index, bundled, watch=False)
    live = served.live
    assert live.freshness() == (False, None)
    _switch(link, edited_copy(tmp_path / "v2"))
    stale, why = live.freshness()
    assert stale is True and f"now leads to {tmp_path / 'v2'}" in why
    assert live.reload().outcome == "reloaded"
    assert top(live, PHRASE) == SKILL and live.generation == 1
    assert live.freshness() == (False, None)
    assert live.current.index_dir == index  # the folder the server opened, not v2's own


def test_a_switched_link_is_served_and_watched(tmp_path, index, bundled):
    from retriever.serve.http import health

    v1 = tmp_path / "v1"
    shutil.copytree(BUNDLED, v1)
    link = tmp_path / "skills"
    os.symlink(v1, link)
    served = Served(link, index, bundled)
    live = served.live
    try:
        v2 = edited_copy(tmp_path / "v2")
        _switch(link, v2)
        wait_for(lambda: top(live, PHRASE) == SKILL, "the link's new target is served")
        report = health(live)
        assert report["stale"] is False and report["watch"]["generation"] >= 1
        assert report["index"]["folder"] == str(index)
        add_trigger(skill_yaml(v2), LATER)  # the new target is the one watched
        wait_for(lambda: top(live, LATER) == SKILL, "an edit in the new target is served")
        _switch(link, v1)  # and back
        wait_for(lambda: top(live, PHRASE) != SKILL, "the first target is served again")
        assert top(live, COMPLETE) == SKILL and health(live)["stale"] is False
    finally:
        served.stop()
