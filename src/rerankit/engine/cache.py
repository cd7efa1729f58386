"""The on-disk cache of exported models: where it lives, how entries are keyed, atomic writes.

Folder: ``$RERANKIT_CACHE``, else ``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit``.
An entry is keyed by a SHA-256 of the model's ``config.json`` and weight files (so retrained
weights never reuse a stale export) plus what was exported. Entries are written to a temporary
file in the same folder, fsynced, and renamed into place with ``os.replace``: a reader sees
either no entry or a complete one, and a killed export leaves only a ``.tmp`` file, never loaded.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def cache_root() -> Path:
    """The rerankit cache folder (not created)."""
    from ..settings import settings

    return settings().cache_root


def files_fingerprint(paths: list[Path], extra: str = "") -> str:
    """SHA-256 (hex, 24 chars) of ``extra`` and each existing file's name and bytes, in the given order."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        if not path.is_file():
            continue
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:24]


def model_fingerprint(folder: str | Path, extra: str = "") -> str:
    """SHA-256 (hex, 24 chars) of ``config.json``, every weight file and ``extra``."""
    folder = Path(folder)
    files = [folder / "config.json"] + sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES
    )
    return files_fingerprint(files, extra)


def remove_stale_temporaries(folder: Path, older_than_s: float = 3600.0) -> None:
    """Delete ``.tmp`` files left by killed exports (only old ones: another process may be writing)."""
    if not folder.is_dir():
        return
    now = time.time()
    for path in folder.glob(".*.tmp"):
        try:
            if now - path.stat().st_mtime > older_than_s:
                if path.is_dir():
                    import shutil

                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
        except OSError:
            pass
