"""The index on disk: reuse, staleness, damage, atomic replacement."""

from __future__ import annotations

import json
import os

import pytest
from conftest import CountingEmbedder, FakeEmbedder
from minicollection import write_mini

from retriever import SkillRetriever
from retriever.errors import IndexError_, StaleIndexError
from retriever.index.store import FORMAT_VERSION


class OtherModel(FakeEmbedder):
    model_id = "another-model"


@pytest.fixture
def setup(tmp_path, fake_embedder):
    root = write_mini(tmp_path / "skills")
    idx = tmp_path / "idx"
    first = SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    return root, idx, first


def test_build_then_reuse(setup, fake_embedder):
    root, idx, first = setup
    assert first.rebuilt_because == "no index yet"
    again = SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")
    assert again.rebuilt_because is None
    m = again.manifest
    assert m.counts.skills == 3 and m.model == "fake-bag-of-words"
    assert m.dimension == 256 and m.format_version == FORMAT_VERSION
    assert m.corpus_fingerprint
    assert sorted(p.name for p in (idx / "current").iterdir()) == [
        "bm25.bin",
        "documents.bin",
        "manifest.json",
        "problems.json",
        "rules.bin",
        "skill_keys.json",
        "skills.z",
        "vectors.faiss",
    ]


def test_changed_corpus_is_stale(setup, fake_embedder):
    root, idx, _ = setup
    skill = root / "backend/queues/skill.yaml"
    skill.write_text(skill.read_text() + "tags: [kafka]\n")
    with pytest.raises(StaleIndexError, match="skill files changed"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")
    rebuilt = SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    assert rebuilt.rebuilt_because == "the skill files changed since it was built"
    assert "kafka" in rebuilt.skill("queues").tags


@pytest.mark.parametrize(
    "side, text",
    [
        ("validations.yaml", "validations: [{id: x, message: Replayed events are accepted}]\n"),
        (
            "sharp-edges.yaml",
            "sharp_edges: [{summary: Retries pile up, symptoms: [queue grows]}]\n",
        ),
    ],
)
def test_editing_a_side_file_makes_it_stale_and_rebuilds_only_the_new_text(setup, side, text):
    root, idx, _ = setup
    (root / "backend/webhooks" / side).write_text(text)
    counting = CountingEmbedder()
    with pytest.raises(StaleIndexError, match="the skill files changed"):
        SkillRetriever.open(root, index_dir=idx, embedder=counting, rebuild="never")
    r = SkillRetriever.open(root, index_dir=idx, embedder=counting)
    assert r.rebuilt_because == "the skill files changed since it was built"
    assert len(counting.seen) == 1  # the one new check or gotcha
    assert any(d.kind in ("validation", "sharp_edge") for d in r.documents)


def test_other_model_is_stale(setup):
    root, idx, _ = setup
    with pytest.raises(StaleIndexError, match="built with model 'fake-bag-of-words'"):
        SkillRetriever.open(root, index_dir=idx, embedder=OtherModel(), rebuild="never")
    assert SkillRetriever.open(root, index_dir=idx, embedder=OtherModel()).rebuilt_because


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda v: v.joinpath("vectors.faiss").write_bytes(
                v.joinpath("vectors.faiss").read_bytes()[:100]
            ),
            "does not match the manifest",
        ),
        (lambda v: v.joinpath("manifest.json").unlink(), "manifest is missing"),
        (lambda v: v.joinpath("manifest.json").write_text("{not json"), "manifest is unreadable"),
        (
            lambda v: v.joinpath("documents.bin").write_bytes(
                v.joinpath("documents.bin").read_bytes()[:-10]
            ),
            "does not match the manifest",
        ),
        (
            lambda v: v.joinpath("skills.z").write_bytes(v.joinpath("skills.z").read_bytes()[1:]),
            "does not match the manifest",
        ),
        (lambda v: v.joinpath("skills.z").unlink(), "missing from the index"),
        (lambda v: v.joinpath("skill_keys.json").unlink(), "missing from the index"),
    ],
)
def test_damage_is_detected_then_rebuilt(setup, fake_embedder, damage, message):
    root, idx, _ = setup
    damage(idx / "current")
    with pytest.raises(IndexError_, match=message):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")
    fixed = SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder)
    assert fixed.rebuilt_because and fixed.search("webhook").skills


def test_counts_out_of_step_with_a_consistent_manifest(setup, fake_embedder):
    """Even with hashes recomputed, vectors and documents must agree."""
    from retriever.index.store import DOCUMENTS, MANIFEST, _write_documents, file_sha256, load_index

    root, idx, _ = setup
    v = idx / "current"
    docs = v / DOCUMENTS
    stored = load_index(idx)
    _write_documents(docs, list(stored.documents)[1:], [s.id for s in stored.skills])
    m = json.loads((v / MANIFEST).read_text())
    m["files"][DOCUMENTS]["sha256"] = file_sha256(docs)
    (v / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexError_, match="vectors for"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")


def test_unknown_format_version_is_refused(setup, fake_embedder):
    from retriever.index.store import MANIFEST

    root, idx, _ = setup
    m = json.loads((idx / "current" / MANIFEST).read_text())
    m["format_version"] = 99
    (idx / "current" / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexError_, match="format 99"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")


def test_rebuild_swaps_versions_and_keeps_the_previous_one(setup, fake_embedder):
    root, idx, _ = setup
    first = os.readlink(idx / "current")
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="always")
    second = os.readlink(idx / "current")
    SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="always")
    third = os.readlink(idx / "current")
    assert len({first, second, third}) == 3
    versions = sorted(p.name for p in idx.iterdir() if p.name.startswith("v-"))
    assert versions == sorted([second, third])  # the one before the last stays for readers


def test_failed_build_leaves_the_good_index(setup, fake_embedder):
    from retriever.index.store import load_index

    root, idx, _ = setup
    before = os.readlink(idx / "current")
    skill = root / "backend/queues/skill.yaml"
    skill.write_text(skill.read_text() + "tags: [kafka]\n")  # a new text must be embedded

    class Broken(FakeEmbedder):
        def encode(self, texts, *, progress=False):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        SkillRetriever.open(root, index_dir=idx, embedder=Broken())
    assert os.readlink(idx / "current") == before
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp")]
    assert load_index(idx).manifest.counts.skills == 3  # the old index, whole


def test_rebuild_embeds_only_new_texts(setup):
    root, idx, _ = setup
    skill = root / "backend/queues/skill.yaml"
    skill.write_text(skill.read_text().replace("[queue, worker]", "[queue, worker, kafka]"))
    counting = CountingEmbedder()
    rebuilt = SkillRetriever.open(root, index_dir=idx, embedder=counting)
    assert counting.seen == ["kafka"]
    assert rebuilt.manifest.counts.embedded == 1
    assert rebuilt.search("kafka").skills[0].id == "queues"


def test_keyword_rules_are_not_embedded_and_never_poison_the_cache(setup):
    """A keyword rule's text ('webhook') equals a trigger document's text; the rule's zero
    row must not replace the document's vector on a rebuild."""
    root, idx, first = setup
    counting = CountingEmbedder()
    rebuilt = SkillRetriever.open(root, index_dir=idx, embedder=counting, rebuild="always")
    assert counting.seen == []  # everything came from the previous index
    hit = rebuilt.search("webhook", k=1).skills[0]
    assert hit.id == "webhooks"
    # the trigger document 'webhook' kept its vector (the match lists that trigger once, as
    # the keyword it also is, so its cosine is read from the nearest documents)
    near, _ = rebuilt._searcher.nearest(CountingEmbedder().encode(["webhook"])[0])
    assert near.best > 0.5
    rules = {r.trigger for s in rebuilt.skills for r in s.handoffs}
    assert "signature|hmac" in rules and "signature|hmac" not in counting.seen


def test_a_fresh_build_is_used_as_built_not_read_back(tmp_path, fake_embedder, monkeypatch):
    """Each data file is hashed once, when written: the build's own index is searched, not a
    copy read back from disk and hashed again."""
    import retriever.index.store as store

    hashed = []
    real = store.file_sha256
    monkeypatch.setattr(store, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    r = SkillRetriever.open(
        write_mini(tmp_path / "s"), index_dir=tmp_path / "i", embedder=fake_embedder
    )
    assert sorted(hashed) == sorted(store.DATA_FILES)
    assert r.index.path == (tmp_path / "i" / os.readlink(tmp_path / "i" / "current"))
    assert r.search("webhook").skills[0].id == "webhooks"


def test_status_says_why_and_warns_about_an_index_from_a_newer_version(
    setup, fake_embedder, caplog
):
    from retriever.index.store import MANIFEST, index_status
    from retriever.load import corpus_fingerprint, discover

    root, idx, first = setup
    fingerprint = corpus_fingerprint(discover([root]))
    assert index_status(idx, fake_embedder.model_id, fingerprint).fresh
    assert index_status(idx, "other", fingerprint).stale_because == (
        "built with model 'fake-bag-of-words', asked for 'other'"
    )
    assert index_status(idx, fake_embedder.model_id, "x").stale_because == (
        "the skill files changed since it was built"
    )
    assert index_status(idx / "none", "m", "f").stale_because == "no index yet"
    assert not (idx / "none").exists()  # asking writes nothing
    # written by a later release: read (same format) with a warning naming both versions
    m = json.loads((idx / "current" / MANIFEST).read_text())
    m["package_version"] = "99.0.0"
    (idx / "current" / MANIFEST).write_text(json.dumps(m))
    assert index_status(idx, fake_embedder.model_id, fingerprint).newer_writer == "99.0.0"
    with caplog.at_level("WARNING", logger="retriever.index.store"):
        SkillRetriever.open(root, index_dir=idx, embedder=fake_embedder, rebuild="never")
    assert "written by skill-retriever 99.0.0, newer than this" in caplog.text
