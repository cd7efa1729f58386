"""Bi-encoder embeddings through OpenVINO, read from the model folder without sentence-transformers.

A mean-pooled sentence-transformers folder (``embedder.read_mean_pooled``) has its transformer with
the mean pooling converted once to OpenVINO IR (the only step that needs torch and transformers),
cached under ``cache_root()/openvino`` by the weights' fingerprint and published whole; later loads
read the IR, the tokenizer (``engine.tokenizer``) and the ``Dense`` weights (safetensors, as numpy),
so a new process embeds a query without importing torch, transformers or sentence-transformers.

Precision: bf16 where OpenVINO's CPU plugin runs bf16 (AMX or AVX512-BF16), fp32 elsewhere or when
asked (``precision="fp32"``). Same tokenizer, truncation (``max_seq_length``), pooling, projection
and L2 norm as ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from .cache import cache_root, model_fingerprint
from .embedder import MeanPooledEmbedder, MeanPooledModel
from .hardware import engine_threads
from .openvino_backend import StreamedModel, cached_ir
from .runtimes import openvino_runs_bf16

CONVERT_VERSION = "1"
# batches of ~1k tokens, spread over two streams, as for the cross-encoders (openvino_backend)
TOKEN_BUDGET = 1024
MAX_BATCH = 32
log = logging.getLogger(__name__)


def ir_path(model: MeanPooledModel, cache_dir: Path | None = None) -> Path:
    """Where the IR of the model's transformer and mean pooling is cached."""
    import openvino as ov

    key = model_fingerprint(model.folder, f"ov-embed{CONVERT_VERSION}|{ov.__version__}")
    return (cache_dir or cache_root() / "openvino") / f"{model.folder.name}-{key}-embed" / "model.xml"


def _convert(folder: Path):
    import warnings

    import openvino as ov
    import torch
    from transformers import AutoModel

    from ..loading import quiet_hf_logging

    quiet_hf_logging()
    body = AutoModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids, attention_mask):
            states = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    example = {"input_ids": torch.ones((2, 8), dtype=torch.long), "attention_mask": torch.ones((2, 8), dtype=torch.long)}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every batch
        return ov.convert_model(MeanPooled().eval(), example_input=example,
                                input=[("input_ids", [-1, -1]), ("attention_mask", [-1, -1])])


def ensure_ir(model: MeanPooledModel, cache_dir: Path | None = None) -> Path:
    """The cached ``model.xml``, converting the model first if it is missing."""
    return cached_ir(ir_path(model, cache_dir), model.folder, lambda: _convert(model.folder))


class OpenVinoBiEncoder(MeanPooledEmbedder):
    """Normalized mean-pooled embeddings of a ``MeanPooledModel`` on OpenVINO's CPU plugin."""

    def __init__(self, model: MeanPooledModel, precision: str = "auto", cache_dir: Path | None = None,
                 num_threads: int | None = None) -> None:
        if precision == "auto":
            precision = "bf16" if openvino_runs_bf16() else "fp32"
        if precision not in ("fp32", "bf16"):
            raise BackendUnavailableError(f"unknown embedding precision {precision!r}")
        super().__init__(model, TOKEN_BUDGET, MAX_BATCH)
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        self.model_on_cpu = StreamedModel(lambda: ensure_ir(model, cache_dir), config, num_threads or engine_threads(),
                                          f"openvino-{precision} embeddings")
        self.path = self.model_on_cpu.path

    def pooled(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.model_on_cpu({0: input_ids, 1: attention_mask})

    def pooled_batches(self, batches: Iterable[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The batches spread over OpenVINO's streams (``openvino_backend.StreamedModel``)."""
        out: dict[int, np.ndarray] = {}
        jobs = ((k, {0: b["input_ids"], 1: b["attention_mask"]}) for k, b in enumerate(batches))
        self.model_on_cpu.run_batches(jobs, out)
        return [out[k] for k in range(len(out))]
