"""Hostile collections, damaged and concurrent indexes, bad queries (issue: reliability)."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import FakeEmbedder, write
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.errors import IndexError_, QueryError, SkillLoadError
from retriever.load import load_collection

# -- collections ----------------------------------------------------------------------------

ALIAS_BOMB = "id: bomb\nname: Bomb\ndescription: d\n" + "\n".join(
    f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]" for i in range(9)
)


def test_alias_bomb_and_self_reference_are_refused(tmp_path):
    write(tmp_path / "a/bomb/skill.yaml", ALIAS_BOMB)
    write(tmp_path / "a/loop/skill.yaml", "id: loop\nname: L\ndescription: d\ntags: &t [x, *t]\n")
    write(tmp_path / "a/fine/skill.yaml", "id: fine\nname: F\ndescription: d\n")
    report = load_collection([tmp_path])
    assert [s.id for s in report.skills] == ["fine"]
    reasons = {Path(p.path).parent.name: p.reason for p in report.problems}
    assert "expands to more than" in reasons["bomb"]
    assert "expands to more than" in reasons["loop"]


def test_fifty_megabyte_file_is_refused_unread(tmp_path):
    big = tmp_path / "a/big/skill.yaml"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:  # sparse: 50 MB on paper, nothing on disk
        f.truncate(50 * 1024 * 1024)
    report = load_collection([tmp_path])
    assert report.skills == ()
    assert "52,428,800 bytes, over the" in report.problems[0].reason


def test_duplicate_keys_are_reported_and_the_skill_loads(tmp_path):
    write(tmp_path / "a/dup/skill.yaml", "id: dup\nname: One\nname: Two\ndescription: d\n")
    report = load_collection([tmp_path])
    assert report.skills[0].name == "Two"
    assert "duplicate key(s) 'name' (line 3)" in report.problems[0].reason


def test_symlink_loop_and_links_out_of_the_root(tmp_path):
    root = tmp_path / "root"
    write(root / "a/fine/skill.yaml", "id: fine\nname: F\ndescription: d\n")
    os.symlink(root / "a", root / "a/fine/loop")  # a folder link back up: never entered
    os.symlink(root, root / "a/self")
    secret = write(tmp_path / "outside/secret.md", "---\nname: secret\n---\nTOKEN=hunter2\n")
    (root / "b/leak").mkdir(parents=True)
    os.symlink(secret, root / "b/leak/SKILL.md")
    report = load_collection([root])
    assert [s.id for s in report.skills] == ["fine"]
    problem = report.problems[0]
    assert problem.path.endswith("b/leak/SKILL.md")
    assert "outside the skills root; not read" in problem.reason
    assert all("hunter2" not in s.body for s in report.skills)


def test_a_side_file_linking_out_of_the_root_is_reported_not_read(tmp_path):
    root = tmp_path / "root"
    write(root / "a/fine/skill.yaml", "id: fine\nname: F\ndescription: d\n")
    outside = write(tmp_path / "outside/v.yaml", "validations:\n  - name: secret check\n")
    os.symlink(outside, root / "a/fine/validations.yaml")
    report = load_collection([root])
    (skill,) = report.skills
    assert skill.checks == ()  # not read
    (problem,) = [p for p in report.problems if p.path.endswith("fine/validations.yaml")]
    assert "outside the skills root; not read" in problem.reason


def test_empty_folders_and_a_collection_with_no_skills(tmp_path, fake_embedder):
    (tmp_path / "empty/a/b").mkdir(parents=True)
    report = load_collection([tmp_path / "empty"])
    assert report.skills == () and "no skills found here" in report.problems[0].reason
    with pytest.raises(SkillLoadError, match="no skills found under"):
        SkillRetriever.open(tmp_path / "empty", index_dir=tmp_path / "idx", embedder=fake_embedder)


def test_odd_skill_ids(tmp_path):
    write(tmp_path / "a/one/skill.yaml", "id: 'café ünïcode id'\nname: U\ndescription: d\n")
    write(tmp_path / "a/two/skill.yaml", "id: ../../etc/passwd\nname: P\ndescription: d\n")
    write(tmp_path / "a/three/skill.yaml", 'id: "bell\\u0007"\nname: B\ndescription: d\n')
    write(tmp_path / "a/four/skill.yaml", "id: " + "x" * 300 + "\nname: L\ndescription: d\n")
    report = load_collection([tmp_path])
    assert sorted(s.id for s in report.skills) == ["café ünïcode id", "four", "three", "two"]
    assert len(report.problems) == 3
    assert all("one-line name without slashes" in p.reason for p in report.problems)


def test_duplicate_ids_across_roots_say_which_wins(tmp_path):
    write(tmp_path / "r1/x/skill.yaml", "id: x\nname: First\ndescription: d\n")
    write(tmp_path / "r2/x/SKILL.md", "---\nname: x\ndescription: second\n---\nbody\n")
    report = load_collection([tmp_path / "r1", tmp_path / "r2"])
    assert [s.name for s in report.skills] == ["First"]
    assert "the one from " + str(tmp_path / "r1/x/skill.yaml") in report.problems[0].reason


# -- indexes --------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    return root, idx


def test_flipped_bytes_inside_the_faiss_file(built, fake_embedder):
    root, idx = built
    f = idx / "current" / "vectors.faiss"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(IndexError_, match="does not match the manifest"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")


def test_disk_full_while_writing(built, fake_embedder, monkeypatch):
    import retriever.index.store as store

    root, idx = built
    before = os.readlink(idx / "current")

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store, "_write_json", full)
    with pytest.raises(IndexError_, match="No space left on device; the previous index"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="always")
    monkeypatch.undo()
    assert os.readlink(idx / "current") == before
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp")]
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")


def test_read_only_index_folder(built, fake_embedder, monkeypatch):
    """Searching never writes (no lock, no temp files); building there fails clearly.

    Tests run as root, for whom permissions do not bite, so writes are made to fail.
    """
    import fcntl

    import retriever.index.store as store

    root, idx = built

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(fcntl, "flock", denied)
    monkeypatch.setattr(Path, "mkdir", denied)
    r = SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")
    assert r.search("webhook").skills
    monkeypatch.undo()
    monkeypatch.setattr(store.os, "rename", denied)
    with pytest.raises(IndexError_, match="cannot write the index in .*Permission denied"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="always")


def test_index_of_another_format_or_not_an_index(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    with pytest.raises(IndexError_, match="not an index folder of this format"):
        SkillRetriever.open(root, index_dir=other, embedder=fake_embedder, rebuild="never")


# -- concurrency ----------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    from retriever import SkillRetriever

    class Slow(FakeEmbedder):
        def encode(self, texts, *, progress=False):
            time.sleep(0.5)
            return super().encode(texts, progress=progress)

    r = SkillRetriever.open({root!r}, index_dir={idx!r}, embedder=Slow(), rebuild={mode!r})
    print("built" if r.rebuilt_because else "reused", len(r.skills))
""")


def _child(root: Path, idx: Path, mode: str) -> subprocess.Popen:
    code = CHILD.format(tests=str(Path(__file__).parent), root=str(root), idx=str(idx), mode=mode)
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_builds_at_once_one_waits(tmp_path):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    procs = [_child(root, idx, "auto") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o[0].split()[0] for o in outs) == ["built", "reused"]
    versions = [p for p in idx.iterdir() if p.name.startswith("v-")]
    assert len(versions) == 1
    SkillRetriever.open(root, index_dir=idx, embedder=FakeEmbedder(), rebuild="never")


def test_searches_during_rebuilds_see_old_or_new_never_a_mix(tmp_path, fake_embedder):
    from retriever.index.store import load_index

    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    errors, reads = [], [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                stored = load_index(idx)
                assert stored.vectors.ntotal == len(stored.documents)
                reads[0] += 1
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            p = _child(root, idx, "always")
            out = p.communicate(timeout=120)
            assert p.returncode == 0, out
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [] and reads[0] > 10


def test_api_is_safe_from_several_threads(bundled):
    queries = [
        "webhook delivered twice",
        "slow SQL query",
        "stale cache",
        "flaky tests in CI",
        "terraform state lock",
        "JWT expiry",
        "screen reader",
        "retry with backoff",
    ]
    expected = {q: bundled.search(q, k=5).skill_ids for q in queries}
    got, errors = [], []

    def worker(i):
        try:
            for j in range(10):
                q = queries[(i + j) % len(queries)]
                got.append((q, bundled.search(q, k=5).skill_ids))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(got) == 80
    assert all(ids == expected[q] for q, ids in got)


# -- queries --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   \n\t", "\x00\x01\x02", "🚀🔥", "!!!"])
def test_queries_with_no_words_are_a_clear_error(bundled, query):
    with pytest.raises(QueryError, match="query is empty"):
        bundled.search(query)


def test_a_megabyte_query_is_cut_and_says_so(bundled):
    query = "my webhook handler processes the same event twice " * 20_000
    r = bundled.search(query, k=3)
    assert r.truncated and r.skills[0].id == "webhooks"
    assert any("cut to its first 2,000 words" in n for n in r.notes)


def test_a_long_query_beyond_the_model_window_says_so(bundled):
    r = bundled.search("webhook retries " * 200, k=3)
    assert r.truncated and any("longer than the model reads" in n for n in r.notes)
    assert not bundled.search("webhook retries", k=3).truncated


@pytest.mark.parametrize(
    "query",
    [
        "webhook\x00 handler\x1b[31m processes events twice\x07",
        "Webhook-Handler verarbeitet dasselbe Ereignis zweimal",
        "вебхук обрабатывает одно событие дважды",
        "ウェブフックが同じイベントを二回処理する",
        "webhook 🚀 duplicate event 🔥",
    ],
)
def test_control_characters_other_scripts_and_emoji(bundled, query):
    r = bundled.search(query, k=3)
    assert not set(r.query) & {"\x00", "\x1b", "\x07"}  # control characters cleaned
    assert len(r.skills) >= 3 and all(math.isfinite(s.score) for s in r.skills)
    json.dumps(r.to_dict(), allow_nan=False)  # strict JSON, always
    if "webhook" in query.lower():  # the Latin-script queries name their topic
        assert r.skills[0].id == "webhooks" and not r.no_match
    else:  # the model reads English: a script it cannot read is no match, not a guess
        assert r.no_match


def test_a_query_that_is_only_a_trigger_word(bundled):
    r = bundled.search("memcached", k=5)
    assert r.skills[0].id == "caching"
    assert ("triggers[4]", "keyword") in [(m.field, m.via) for m in r.skills[0].matches]
