"""Bi-encoder embeddings that match sentence-transformers, from the model folder alone.

A sentence-transformers folder whose ``modules.json`` is a ``Transformer``, mean ``Pooling``, an
optional linear ``Dense`` and an optional ``Normalize`` (all-MiniLM-L6-v2, rerankit's distilled
bi-encoders) is described by ``read_mean_pooled`` from its JSON files, without importing
sentence-transformers (both the 6.x layout and the earlier one). ``MeanPooledEmbedder`` holds what
every fast embedding path shares: the tokenizer (``engine.tokenizer``) and ``max_seq_length``,
token-budget packing, the ``Dense`` projection (fp32, weights read as numpy) and the L2 norm; a
subclass supplies ``pooled(input_ids, attention_mask)``, the mean of each row's real token states.

- ``FusedBiEncoder``: the engine's fused bf16 layers (BERT family, MPNet), for CPUs with the AMX
  kernels in use (``rerankit-amx``); ``fused_bi_encoder_for`` returns ``None`` where they do not apply.
- ``openvino_embedder.OpenVinoBiEncoder``: OpenVINO, everywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from .batching import collate, pack_by_tokens
from .hardware import engine_threads


@dataclass(frozen=True)
class MeanPooledModel:
    """A mean-pooled sentence-transformers model, as its folder describes it."""

    folder: Path
    max_length: int
    lower_case: bool
    dense: Path | None  # folder of a linear Dense module after the pooling (safetensors weights)
    dimension: int


def _json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_mean_pooled(folder: str | Path) -> MeanPooledModel | None:
    """The description of a ``Transformer`` + mean ``Pooling`` [+ ``Dense``] [+ ``Normalize``] folder, else None."""
    folder = Path(folder)
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list) or not 2 <= len(modules) <= 4:
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else "" for m in modules]
    dense = None
    if kinds[2:3] == ["Dense"]:
        dense = folder / modules[2].get("path", "")
        config = _json(dense / "config.json") or {}
        if not str(config.get("activation_function", "")).endswith("Identity") or not (dense / "model.safetensors").is_file():
            return None
        kinds.pop(2)
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or modules[0].get("path", "") != "":
        return None
    pooling = _json(folder / modules[1].get("path", "") / "config.json") or {}
    mode = pooling.get("pooling_mode")  # sentence-transformers 6 writes one mode, earlier versions flags
    modes = [mode] if mode else [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value]
    if modes not in (["mean"], ["pooling_mode_mean_tokens"]) or not pooling.get("include_prompt", True):
        return None
    settings = _json(folder / "sentence_bert_config.json") or {}
    max_length = settings.get("max_seq_length")  # else, as sentence-transformers 6, the tokenizer's limit
    if max_length is None:
        max_length = (_json(folder / "tokenizer_config.json") or {}).get("model_max_length")
    if not isinstance(max_length, int) or not 0 < max_length <= 1 << 20 or not (folder / "config.json").is_file():
        return None
    dimension = int(pooling.get("embedding_dimension") or pooling.get("word_embedding_dimension") or 0)
    if dense is not None:
        dimension = int((_json(dense / "config.json") or {}).get("out_features") or 0)
    if dimension <= 0:
        return None
    return MeanPooledModel(folder, max_length, bool(settings.get("do_lower_case")), dense, dimension)


class MeanPooledEmbedder:
    """Normalized mean-pooled embeddings of a ``MeanPooledModel``, batched by token budget."""

    def __init__(self, model: MeanPooledModel, token_budget: int, max_batch: int) -> None:
        from .tokenizer import load_tokenizer

        self.model = model
        self.tokenizer = load_tokenizer(model.folder)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.token_budget, self.max_batch = token_budget, max_batch
        self.projection, self.projection_bias = _dense_weights(model.dense)

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pooled_batches(self, batches: Iterable[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """``pooled`` of each collated batch, in order (one after another; OpenVINO runs several at once)."""
        return [self.pooled(b["input_ids"], b["attention_mask"]) for b in batches]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalized float32 row per text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        texts = [t.lower() for t in texts] if self.model.lower_case else list(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=self.model.max_length)["input_ids"]
        batches = pack_by_tokens([len(x) for x in ids], self.token_budget, self.max_batch)
        pooled = self.pooled_batches(collate([ids[i] for i in idx], None, self.pad_id) for idx in batches)
        for idx, vectors in zip(batches, pooled):
            vectors = vectors.astype(np.float32, copy=False)
            if self.projection is not None:
                vectors = vectors @ self.projection.T
                if self.projection_bias is not None:
                    vectors = vectors + self.projection_bias
            out[idx] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class FusedBiEncoder(MeanPooledEmbedder):
    """Normalized mean-pooled embeddings of a BERT-family or MPNet ``MeanPooledModel``, in bf16."""

    def __init__(self, model: MeanPooledModel, body, token_budget: int = 8192, max_batch: int = 128) -> None:
        import torch

        from .fused_encoder import FusedMeanPooler

        super().__init__(model, token_budget, max_batch)
        base = body.to(torch.bfloat16).eval()
        self.module = FusedMeanPooler(base, base.config.num_attention_heads, torch.bfloat16).eval()
        self.threads = engine_threads()  # read once: the settings are read at load, not per batch

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.module(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()


def fused_bi_encoder_for(model: MeanPooledModel) -> FusedBiEncoder | None:
    """A ``FusedBiEncoder`` where the fused layers reproduce the model (up to bf16) on this CPU, else ``None``.
    BERT is built from its safetensors without transformers (``bert_module``); other models through it."""
    from .bert_module import bert_for_fusion
    from .fused_encoder import supports_fusion

    body = bert_for_fusion(model.folder, head=False)
    if body is not None:
        return FusedBiEncoder(model, body) if supports_fusion(body.config) else None
    import torch
    from transformers import AutoConfig, AutoModel

    from ..loading import quiet_hf_logging

    quiet_hf_logging()
    if not supports_fusion(AutoConfig.from_pretrained(model.folder)):
        return None
    body = AutoModel.from_pretrained(model.folder, dtype=torch.float32)
    if not hasattr(body, "encoder"):
        return None
    return FusedBiEncoder(model, body)


def _dense_weights(folder: Path | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A ``Dense`` module's (out, in) weight and bias as float32 numpy (None, None without one)."""
    if folder is None:
        return None, None
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "model.safetensors"))
    weight = next((v for k, v in weights.items() if k.endswith("weight")), None)
    bias = next((v for k, v in weights.items() if k.endswith("bias")), None)
    if weight is None:
        raise BackendUnavailableError(f"{folder}: no Dense weight")
    return weight.astype(np.float32), None if bias is None else bias.astype(np.float32)
