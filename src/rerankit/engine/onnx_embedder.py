"""Bi-encoder embeddings through ONNX Runtime in fp32, for CPUs without bf16 units.

On such CPUs (AVX2 only, no AVX512-BF16 or AMX) the fused bf16 layers do not apply, and
``SentenceTransformer.encode`` runs torch's eager fp32 layers over padded batches. ``OnnxBiEncoder``
exports the model's transformer with its mean pooling once (cached under ``cache_root()/onnx``,
keyed by the weights' fingerprint, published atomically like the cross-encoder exports) and runs it
with the engine's token-budget batching; a ``Dense`` projection and the L2 norm follow in numpy
(``embedder.MeanPooledEmbedder``). Same tokenizer, truncation and pooling as sentence-transformers,
fp32 throughout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import cache_root, model_fingerprint, remove_stale_temporaries, write_atomically
from .embedder import MeanPooledEmbedder, mean_pooled_parts
from .onnx_backend import OPSET, open_cached, trace_to_onnx

EXPORT_VERSION = "1"


def export_path(folder: Path, cache_dir: Path | None = None) -> Path:
    """Where the mean-pooled fp32 export of the sentence-transformers model in ``folder`` is cached."""
    key = model_fingerprint(folder, f"embed-v{EXPORT_VERSION}|opset{OPSET}")
    return (cache_dir or cache_root() / "onnx") / f"{folder.name}-{key}-embed-fp32.onnx"


def _export(auto_model, target: Path) -> None:
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, input_ids, attention_mask):
            states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    module = MeanPooled().float().eval()
    write_atomically(target, lambda tmp: trace_to_onnx(module, ["input_ids", "attention_mask"], "pooled", tmp))


class OnnxBiEncoder(MeanPooledEmbedder):
    """Normalized mean-pooled fp32 embeddings of a sentence-transformers model through ONNX Runtime."""

    def __init__(self, transformer, folder: Path, dense=None, cache_dir: Path | None = None,
                 token_budget: int = 2048, max_batch: int = 32) -> None:
        # ONNX Runtime's CPU attention runs faster on batches of ~2k tokens than on 8k (1.5-2.5 s vs
        # 2.7-3.7 s for 101 DL19 texts on 2 AVX2 cores)
        super().__init__(transformer, token_budget, max_batch, dense)

        def ensure() -> Path:
            target = export_path(folder, cache_dir)
            remove_stale_temporaries(target.parent)
            if not target.is_file():
                _export(transformer.auto_model, target)
            return target

        self.path, self.session = open_cached(ensure)

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        return np.asarray(self.session.run(["pooled"], feed)[0], dtype=np.float32)


def onnx_bi_encoder_for(model, folder: str | Path, cache_dir: Path | None = None) -> OnnxBiEncoder | None:
    """An ``OnnxBiEncoder`` for a mean-pooled ``SentenceTransformer`` loaded from ``folder``, else ``None``."""
    parts = mean_pooled_parts(model)
    folder = Path(folder)
    if parts is None or not (folder / "config.json").is_file():
        return None
    transformer, dense = parts
    return OnnxBiEncoder(transformer, folder, dense=dense, cache_dir=cache_dir)
