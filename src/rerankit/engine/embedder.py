"""Bi-encoder embeddings through the fused bf16 layers: same weights and pooling as sentence-transformers.

``FusedBiEncoder`` takes a loaded ``SentenceTransformer`` whose modules are a BERT-family (or MPNet)
``Transformer`` followed by mean ``Pooling`` (then optionally a linear ``Dense`` projection, and
``Normalize``), as all-MiniLM-L6-v2 and rerankit's distilled bi-encoders are, tokenizes with its tokenizer and ``max_seq_length``, packs texts by token budget, and returns
L2-normalized float32 rows. ``fused_bi_encoder_for`` returns ``None`` for any other model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from .batching import collate, pack_by_tokens
from .hardware import engine_threads


class FusedBiEncoder:
    """Normalized mean-pooled embeddings of a sentence-transformers BERT or MPNet model, in bf16."""

    def __init__(self, transformer, token_budget: int = 8192, max_batch: int = 128, dense=None) -> None:
        import torch

        from .fused_encoder import FusedMeanPooler

        self.tokenizer = transformer.tokenizer
        self.max_length = int(transformer.max_seq_length)
        base = copy.deepcopy(transformer.auto_model).to(torch.bfloat16).eval()
        self.module = FusedMeanPooler(base, base.config.num_attention_heads, torch.bfloat16).eval()
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.token_budget, self.max_batch = token_budget, max_batch
        self.projection: np.ndarray | None = None  # a Dense module's (out, in) weight, applied in fp32
        self.projection_bias: np.ndarray | None = None
        if dense is not None:
            self.projection = dense.linear.weight.detach().float().numpy().copy()
            if dense.linear.bias is not None:
                self.projection_bias = dense.linear.bias.detach().float().numpy().copy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        torch.set_num_threads(engine_threads())
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        out: np.ndarray | None = None
        for idx in pack_by_tokens([len(x) for x in ids], self.token_budget, self.max_batch):
            batch = collate([ids[i] for i in idx], None, self.pad_id)
            with torch.inference_mode():
                vectors = self.module(torch.from_numpy(batch["input_ids"]),
                                      torch.from_numpy(batch["attention_mask"])).numpy()
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


def fused_bi_encoder_for(model) -> FusedBiEncoder | None:
    """A ``FusedBiEncoder`` for a ``SentenceTransformer`` it reproduces exactly (up to bf16), else ``None``."""
    import torch

    from .fused_encoder import supports_fusion

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
    auto_model = getattr(modules[0], "auto_model", None)
    if auto_model is None or not supports_fusion(auto_model.config) or not hasattr(auto_model, "encoder"):
        return None
    return FusedBiEncoder(modules[0], dense=dense)
