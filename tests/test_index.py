"""The on-disk index: round trip, atomic rebuilds (also under SIGKILL), and load errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rerankit.errors import IndexNotFoundError, InvalidInputError
from rerankit.retrieval import BM25Retriever, DenseRetriever, LocalEmbedder, build_index, load_index, read_manifest
from rerankit.retrieval.index import CURRENT_FILE, STAGING_PREFIX, VERSIONS_DIR
from rerankit.types import Document

OLD_DOCS = [
    Document(text="apples and pears grow in the orchard", id="fruit"),
    Document(text="the orchestra played a symphony", id="music"),
    Document(text="a symphony of apples", id="mix"),
]
NEW_LINES = "bicycles have two wheels\ntrains run on rails\nships sail the sea\nplanes fly over the orchard\n"


def _summary(hits) -> list[tuple[str, float]]:
    return [(h.id, round(h.score, 5)) for h in hits]


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / VERSIONS_DIR).iterdir())


# ---------------------------------------------------------------- round trip


def test_round_trip_matches_in_memory_retrievers(dense_index_dir: Path, tiny_docs) -> None:
    index = load_index(dense_index_dir)
    assert index.documents == tiny_docs
    assert index.has_dense and index.embeddings.shape == (6, 384) and index.default_mode == "hybrid"

    bm25 = BM25Retriever.from_documents(tiny_docs)
    for query in ("programming language", "capital of France"):
        assert _summary(index.search(query, 3, mode="bm25")) == _summary(bm25.search(query, 3))

    dense = DenseRetriever.from_documents(tiny_docs, LocalEmbedder())
    for query in ("a kitten chasing a mouse", "hot drink with caffeine"):
        loaded, fresh = index.search(query, 6, mode="dense"), dense.search(query, 6)
        assert [h.id for h in loaded] == [h.id for h in fresh]
        np.testing.assert_allclose([h.score for h in loaded], [h.score for h in fresh], atol=2e-3)  # float16 on disk
    assert index.search("a kitten chasing a mouse", 1, mode="dense")[0].id == "cat"

    hybrid = index.search("memory safe systems language", 3, mode="hybrid")
    assert hybrid[0].id == "rust" and [h.rank for h in hybrid] == [0, 1, 2]
    again = load_index(dense_index_dir)
    for mode in ("bm25", "dense", "hybrid"):
        assert _summary(again.search("loyal companion", 4, mode=mode)) == _summary(index.search("loyal companion", 4, mode=mode))


def test_layout_and_manifest(dense_index_dir: Path) -> None:
    manifest = read_manifest(dense_index_dir)
    version = (dense_index_dir / CURRENT_FILE).read_text().strip()
    assert _versions(dense_index_dir) == [version] == [manifest["version"]]
    folder = dense_index_dir / VERSIONS_DIR / version
    assert sorted(p.name for p in folder.iterdir()) == ["bm25", "embeddings.npy", "manifest.json", "passages.jsonl"]
    assert np.load(folder / "embeddings.npy").dtype == np.float16
    assert manifest["format_version"] == 1 and manifest["num_passages"] == 6 and manifest["dense"] is True
    assert manifest["embedding"] == {"provider": "local", "model": "all-MiniLM-L6-v2", "dim": 384, "dtype": "float16"}
    assert manifest["created"].endswith("+00:00")


def test_bm25_only_index(tmp_path: Path) -> None:
    root = build_index(OLD_DOCS, tmp_path / "ix", dense=False)
    index = load_index(root)
    assert not index.has_dense and index.default_mode == "bm25"
    hits = index.search("symphony apples", 3)
    assert hits[0].id == "mix" and {h.id for h in hits} == {"mix", "fruit", "music"}
    with pytest.raises(InvalidInputError, match="no embeddings"):
        index.search("apples", 2, mode="dense")
    with pytest.raises(InvalidInputError, match="unknown search mode"):
        index.search("apples", 2, mode="sparse")


def test_ids_are_assigned_and_must_be_unique(tmp_path: Path) -> None:
    index = load_index(build_index(["alpha text", {"text": "beta text", "id": "b"}], tmp_path / "ix", dense=False))
    assert [d.id for d in index.documents] == ["0", "b"]
    with pytest.raises(InvalidInputError, match="duplicate passage id 'x'"):
        build_index([Document("a", id="x"), Document("b", id="x")], tmp_path / "ix2", dense=False)
    with pytest.raises(InvalidInputError, match="no passages"):
        build_index([], tmp_path / "ix3", dense=False)


def test_rebuild_replaces_content_and_collects_old_versions(tmp_path: Path) -> None:
    root = build_index(OLD_DOCS, tmp_path / "ix", dense=False)
    first = read_manifest(root)["version"]
    new_docs = [Document(text=line, id=f"n{i}") for i, line in enumerate(NEW_LINES.splitlines())]
    build_index(new_docs, root, dense=False)
    index = load_index(root)
    assert [d.id for d in index.documents] == ["n0", "n1", "n2", "n3"]
    assert index.version != first and _versions(root) == [index.version]
    assert index.search("symphony", 3) == []
    assert index.search("orchard", 3)[0].id == "n3"


def test_refuses_to_write_into_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InvalidInputError, match="not a rerankit index"):
        build_index(OLD_DOCS, tmp_path / "mine", dense=False)
    assert sorted(os.listdir(tmp_path / "mine")) == ["thesis.tex"]


# ---------------------------------------------------------------- killed rebuilds


# The child patches the build at a known point to write its pid to MARKER and sleep, so that the test can
# SIGKILL it there: "staging" once passages and BM25 are in the staging folder (embeddings, manifest and switch
# not done); "switch" once the new version is complete in versions/<id> but CURRENT still names the old one.
PAUSED_BUILD = """
import os, sys, time
from pathlib import Path
import rerankit.retrieval.index as index
stage, marker = sys.argv[1], Path(sys.argv[2])

def pause():
    marker.write_text(str(os.getpid()))
    time.sleep(120)

if stage == "staging":
    save = index.BM25.save
    def paused_save(self, *args, **kwargs):
        save(self, *args, **kwargs)
        pause()
    index.BM25.save = paused_save
else:
    write = index.atomic_write_text
    def paused_write(path, *args, **kwargs):
        if Path(path).name == index.CURRENT_FILE:
            pause()
        return write(path, *args, **kwargs)
    index.atomic_write_text = paused_write
from rerankit.cli import main
sys.argv = ["rerankit", *sys.argv[3:]]
main()
"""


def _start_paused_build(source: Path, root: Path, stage: str, marker: Path) -> subprocess.Popen:
    """Run ``rerankit index build`` in a child that pauses at ``stage`` (``PAUSED_BUILD``)."""
    return subprocess.Popen(
        [sys.executable, "-c", PAUSED_BUILD, stage, str(marker),
         "index", "build", str(source), "--out", str(root), "--no-dense"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"build exited early ({proc.returncode}): {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("build never reached the pause point")
        time.sleep(0.02)


@pytest.mark.parametrize("stage", ["staging", "switch"])
def test_sigkill_during_rebuild_keeps_the_old_index(tmp_path: Path, stage: str) -> None:
    root = build_index(OLD_DOCS, tmp_path / "ix", dense=False)
    old = load_index(root)
    old_results = _summary(old.search("apples symphony", 3))
    assert old_results  # something to compare against
    source = tmp_path / "new.txt"
    source.write_text(NEW_LINES)
    marker = tmp_path / "paused"

    proc = _start_paused_build(source, root, stage, marker)
    _wait_for(marker, proc)
    assert int(marker.read_text()) == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()

    # The killed build left its work behind ...
    leftovers = [name for name in _versions(root) if name != old.version]
    assert len(leftovers) == 1
    left = root / VERSIONS_DIR / leftovers[0]
    if stage == "staging":
        assert leftovers[0].startswith(STAGING_PREFIX)
        assert (left / "passages.jsonl").is_file() and not (left / "manifest.json").exists()
    else:
        assert not leftovers[0].startswith(STAGING_PREFIX) and (left / "manifest.json").is_file()
        assert json.loads((left / "manifest.json").read_text())["num_passages"] == 4
    # ... but nothing of it is mistaken for the index: the old version is still the live one.
    assert (root / CURRENT_FILE).read_text().strip() == old.version
    reloaded = load_index(root)
    assert reloaded.version == old.version
    assert reloaded.documents == old.documents
    assert _summary(reloaded.search("apples symphony", 3)) == old_results

    # The next build succeeds and collects the debris.
    build_index([Document("fresh start", id="f")], root, dense=False)
    final = load_index(root)
    assert [d.id for d in final.documents] == ["f"] and _versions(root) == [final.version]


def test_killed_first_build_is_not_an_index(tmp_path: Path) -> None:
    source = tmp_path / "new.txt"
    source.write_text(NEW_LINES)
    root, marker = tmp_path / "ix", tmp_path / "paused"
    proc = _start_paused_build(source, root, "switch", marker)
    _wait_for(marker, proc)
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    assert len(_versions(root)) == 1  # a complete version exists on disk, but was never switched to
    with pytest.raises(IndexNotFoundError, match="no CURRENT file"):
        load_index(root)


# ---------------------------------------------------------------- load errors


def test_load_errors_are_index_not_found(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="folder not found"):
        load_index(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError, match="no CURRENT file"):
        load_index(tmp_path / "empty")
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / CURRENT_FILE).write_bytes(b"\xff\xfe")
    with pytest.raises(IndexNotFoundError):
        load_index(tmp_path / "binary")

    root = build_index(OLD_DOCS, tmp_path / "ix", dense=False)
    version = read_manifest(root)["version"]
    manifest_path = root / VERSIONS_DIR / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(IndexNotFoundError, match="format version 99"):
        load_index(root)
    manifest_path.write_text(json.dumps(manifest))
    (root / VERSIONS_DIR / version / "passages.jsonl").unlink()
    with pytest.raises(IndexNotFoundError, match="incomplete"):
        load_index(root)
    (root / CURRENT_FILE).write_text(f"{STAGING_PREFIX}{version}\n")
    with pytest.raises(IndexNotFoundError, match="corrupt"):
        load_index(root)
    (root / CURRENT_FILE).write_text("20990101T000000-deadbeef\n")
    with pytest.raises(IndexNotFoundError, match="incomplete"):
        load_index(root)


def test_truncated_passages_are_detected(tmp_path: Path) -> None:
    root = build_index(OLD_DOCS, tmp_path / "ix", dense=False)
    passages = root / VERSIONS_DIR / read_manifest(root)["version"] / "passages.jsonl"
    passages.write_text(passages.read_text().splitlines(keepends=True)[0])
    with pytest.raises(IndexNotFoundError, match="inconsistent"):
        load_index(root)
