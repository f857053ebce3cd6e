"""Staleness told from file metadata (``load.changes``): an unchanged collection is neither
walked nor hashed on open, and every kind of change is still caught without ``--verify``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.index.store import CURRENT, MANIFEST
from retriever.load import changes


def settle():
    # a stamp this recent is not trusted (a second edit in the same tick would not show):
    # wait it out so that the build's record vouches for every file
    time.sleep(changes.FINE_MARGIN_NS / 1e9 * 3)


@pytest.fixture
def built(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    settle()
    index = tmp_path / "idx"
    first = SkillRetriever.open(root, index_dir=index, embedder=fake_embedder)
    assert first.rebuilt_because is not None  # there was no index

    def reopen(**kw):
        return SkillRetriever.open(root, index_dir=index, embedder=fake_embedder, **kw)

    return root, index, reopen


def no_hashing(monkeypatch):
    """Make any walk or hash of the collection fail the test."""

    def boom(*a, **k):
        raise AssertionError("the collection was walked or hashed")

    monkeypatch.setattr(changes, "scan_corpus", boom)
    monkeypatch.setattr(changes, "digest", boom)


def test_unchanged_collection_is_neither_walked_nor_hashed(built, monkeypatch):
    _, _, reopen = built
    no_hashing(monkeypatch)
    assert reopen().rebuilt_because is None


def test_a_recent_stamp_is_hashed_not_trusted(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")  # no settle: stamps are too fresh to vouch
    SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)
    manifest = json.loads((tmp_path / "idx" / CURRENT / MANIFEST).read_text())
    assert manifest["corpus"]["unvouched"]  # the next open hashes instead of trusting


def test_an_edit_is_caught(built):
    root, _, reopen = built
    f = root / "backend/webhooks/skill.yaml"
    f.write_text(f.read_text().replace("Record each event id", "Store each event key"))
    r = reopen()
    assert r.rebuilt_because is not None and "changed" in r.rebuilt_because
    assert "Store each event key" in json.dumps(r.search("store the event key", k=1).to_dict())


def test_an_edit_to_a_side_file_is_caught(built):
    root, _, reopen = built
    (root / "backend/webhooks/validations.yaml").write_text(
        "validations:\n  - id: v1\n    name: Signature check\n    message: No HMAC check\n"
    )
    assert reopen().rebuilt_because is not None


def test_an_added_skill_is_caught(built):
    root, _, reopen = built
    new = root / "backend/caching/skill.yaml"
    new.parent.mkdir(parents=True)
    new.write_text("id: caching\nname: Caching\ndescription: Cache stampedes and TTLs\n")
    r = reopen()
    assert r.rebuilt_because is not None
    assert "caching" in {s.id for s in r.skills}


def test_a_removed_skill_is_caught(built):
    root, _, reopen = built
    for f in (root / "backend/queues").iterdir():
        f.unlink()
    (root / "backend/queues").rmdir()
    r = reopen()
    assert r.rebuilt_because is not None
    assert "queues" not in {s.id for s in r.skills}


def test_a_renamed_folder_is_caught(built):
    root, _, reopen = built
    os.rename(root / "backend", root / "server-side")
    r = reopen()
    assert r.rebuilt_because is not None
    (webhooks,) = [s for s in r.skills if s.id == "webhooks"]
    assert "/server-side/" in webhooks.path


def test_a_file_replaced_by_rename_is_caught(built):
    # what an editor saving through a temporary file does: same name, another inode
    root, _, reopen = built
    f = root / "backend/webhooks/skill.yaml"
    tmp = f.with_name(".skill.yaml.swp")
    tmp.write_text(f.read_text().replace("Webhooks", "Webhook receivers"))
    os.replace(tmp, f)
    assert reopen().rebuilt_because is not None


def test_verify_hashes_what_metadata_cannot_see(built):
    """An edit that keeps every stamp (a cached network file system, a clock set back) is
    invisible to metadata; ``verify`` hashes every file and sees it. Simulated by editing a
    file and then recording its new stamps in the manifest, as if they had not moved."""
    root, index, reopen = built
    f = root / "backend/webhooks/skill.yaml"
    f.write_text(f.read_text().replace("Record each event id", "Store each event key"))
    manifest_path = index / CURRENT / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    record = manifest["corpus"]
    flat = record["files"]["stamps"]
    i = record["files"]["paths"].index(str(f))
    size = changes.STAMP_SIZE
    flat[size * i : size * (i + 1)] = changes.stamp(os.stat(f))
    manifest_path.write_text(json.dumps(manifest))

    assert reopen(rebuild="never").rebuilt_because is None  # metadata vouches: not seen
    rebuilt = reopen(verify=True)
    assert rebuilt.rebuilt_because is not None and "changed" in rebuilt.rebuilt_because


def test_cli_verify_flag(tmp_path):
    """``--verify`` reaches the open: a real subprocess on the bundled collection."""
    from conftest import BUNDLED

    cmd = [sys.executable, "-m", "retriever.cli", "search", "--skills", str(BUNDLED),
           "--index", str(tmp_path / "idx"), "--json", "--verify", "webhook retries"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [*cmd[:-1], "--no-rebuild", cmd[-1]], capture_output=True, text=True, timeout=300, env=env
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skills"], again.stdout


def test_an_index_of_other_documents_is_stale(built, monkeypatch):
    """Code that makes other documents (another kind indexed, another cut) rebuilds."""
    from retriever.index import documents

    _, _, reopen = built
    monkeypatch.setattr(documents, "REVISION", documents.REVISION + 1)
    r = reopen()
    assert r.rebuilt_because is not None and "other documents" in r.rebuilt_because
    assert reopen().rebuilt_because is None  # the rebuilt one records the new recipe


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, fake_embedder, monkeypatch):
    """A folder the walk cannot list (permission denied) leaves its skills out, and the
    load report and the index's problems say so (root ignores chmod 000, so the denial is
    simulated at os.scandir)."""
    import importlib

    from retriever.load import load_collection

    discover_module = importlib.import_module("retriever.load.discover")

    root = write_mini(tmp_path / "skills")
    locked = str(root / "backend" / "queues")
    real_scandir = os.scandir

    def scandir(path):
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discover_module.os, "scandir", scandir)
    report = load_collection([root])
    assert "queues" not in {s.id for s in report.skills}
    (problem,) = [p for p in report.problems if p.path == locked]
    assert "folder cannot be read (Permission denied)" in problem.reason
    r = SkillRetriever.open(root, index_dir=tmp_path / "idx", embedder=fake_embedder)
    assert any(p.path == locked for p in r.problems)
