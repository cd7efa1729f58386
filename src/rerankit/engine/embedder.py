"""Bi-encoder embeddings through the fused bf16 layers: same weights and pooling as sentence-transformers.

``MeanPooledEmbedder`` holds what every fast embedding path shares: a sentence-transformers model's
tokenizer and ``max_seq_length``, token-budget packing, the mean pooling's output, an optional linear
``Dense`` projection (fp32) and the L2 norm. ``FusedBiEncoder`` runs it on the fused bf16 layers for a
BERT-family (or MPNet) ``Transformer`` followed by mean ``Pooling`` (then optionally ``Dense`` and
``Normalize``), as all-MiniLM-L6-v2 and rerankit's distilled bi-encoders are; ``onnx_embedder`` runs
the same models through ONNX Runtime. ``mean_pooled_parts`` says whether a model has that shape, and
``fused_bi_encoder_for`` returns ``None`` for any other model or where the fused layers do not apply.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from .batching import collate, pack_by_tokens
from .hardware import engine_threads


class MeanPooledEmbedder:
    """Normalized mean-pooled embeddings of a sentence-transformers model, batched by token budget.

    Subclasses supply ``pooled(input_ids, attention_mask)``: the mean of each row's real token
    states. A ``Dense`` projection after pooling is applied here in fp32, then the L2 norm.
    """

    def __init__(self, transformer, token_budget: int = 8192, max_batch: int = 128, dense=None) -> None:
        self.tokenizer = transformer.tokenizer
        self.max_length = int(transformer.max_seq_length)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.token_budget, self.max_batch = token_budget, max_batch
        self.projection: np.ndarray | None = None  # a Dense module's (out, in) weight, applied in fp32
        self.projection_bias: np.ndarray | None = None
        if dense is not None:
            self.projection = dense.linear.weight.detach().float().numpy().copy()
            if dense.linear.bias is not None:
                self.projection_bias = dense.linear.bias.detach().float().numpy().copy()

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        out: np.ndarray | None = None
        for idx in pack_by_tokens([len(x) for x in ids], self.token_budget, self.max_batch):
            batch = collate([ids[i] for i in idx], None, self.pad_id)
            vectors = self.pooled(batch["input_ids"], batch["attention_mask"])
            if self.projection is not None:
                vectors = vectors.astype(np.float32) @ self.projection.T
                if self.projection_bias is not None:
                    vectors = vectors + self.projection_bias
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        assert out is not None
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class FusedBiEncoder(MeanPooledEmbedder):
    """Normalized mean-pooled embeddings of a sentence-transformers BERT or MPNet model, in bf16."""

    def __init__(self, transformer, token_budget: int = 8192, max_batch: int = 128, dense=None) -> None:
        import torch

        from .fused_encoder import FusedMeanPooler

        super().__init__(transformer, token_budget, max_batch, dense)
        base = copy.deepcopy(transformer.auto_model).to(torch.bfloat16).eval()
        self.module = FusedMeanPooler(base, base.config.num_attention_heads, torch.bfloat16).eval()

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(engine_threads())
        with torch.inference_mode():
            return self.module(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()


def mean_pooled_parts(model) -> tuple | None:
    """``(transformer, dense or None)`` of a ``SentenceTransformer`` that is a ``Transformer``, mean
    ``Pooling``, an optional linear ``Dense`` and an optional ``Normalize``; else ``None``."""
    import torch

    modules = list(model)
    dense = None
    if len(modules) >= 3 and type(modules[2]).__name__ == "Dense":  # a linear projection after pooling
        dense = modules.pop(2)
        if not isinstance(getattr(dense, "activation_function", None), torch.nn.Identity):
            return None
    if len(modules) not in (2, 3) or type(modules[0]).__name__ != "Transformer":
        return None
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):  # older sentence-transformers
        mode = pooling.get_pooling_mode_str()
    if type(pooling).__name__ != "Pooling" or mode != "mean" or not getattr(pooling, "include_prompt", True):
        return None
    if len(modules) == 3 and type(modules[2]).__name__ != "Normalize":
        return None
    if getattr(modules[0], "auto_model", None) is None:
        return None
    return modules[0], dense


def fused_bi_encoder_for(model) -> FusedBiEncoder | None:
    """A ``FusedBiEncoder`` for a ``SentenceTransformer`` it reproduces exactly (up to bf16), else ``None``."""
    from .fused_encoder import supports_fusion

    parts = mean_pooled_parts(model)
    if parts is None:
        return None
    transformer, dense = parts
    if not supports_fusion(transformer.auto_model.config) or not hasattr(transformer.auto_model, "encoder"):
        return None
    return FusedBiEncoder(transformer, dense=dense)
