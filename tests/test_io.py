"""Atomic writes: whole files only, with the mode a plain open() would give them."""

from __future__ import annotations

import os
import stat

import pytest

from rerankit.io import atomic_write_json, atomic_write_text, file_mode_for, write_atomically


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_new_file_gets_the_umask_mode_not_owner_only(tmp_path, umask_027):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027; mkstemp alone gives 0o600
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    path.chmod(0o604)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o604


def test_export_cache_files_follow_the_umask(tmp_path, umask_027):
    target = write_atomically(tmp_path / "model.onnx", lambda tmp: tmp.write_bytes(b"onnx"))
    assert target.read_bytes() == b"onnx" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert file_mode_for(tmp_path / "absent") == 0o640


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.json"
    atomic_write_json(path, {"kept": True})

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)  # fails after the new bytes are written, before the rename
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"kept": False})
    assert path.read_text() == '{\n  "kept": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
