"""Fast local scoring: runners on torch (CPU and CUDA), ONNX Runtime and OpenVINO, token-budget batching,
long-document windows, and ``auto``, the per-machine choice of backend.

One module per job: ``hardware`` (CPU flags, threads), ``cache`` (export cache, atomic writes),
``modules`` (the torch scoring module), ``inputs`` (tokenization, prompt layout, windows),
``batching`` (token-budget packing), ``backend`` (the runner interface, ``BACKENDS``, ``make_runner``),
``torch_backend`` / ``onnx_backend`` / ``openvino_backend`` (runners), ``auto`` (backend choice),
``tokenizer`` (tokenizer.json without transformers), ``bert_module`` (BERT's tree from safetensors, for
the fused layers), ``embedder`` / ``openvino_embedder`` (bi-encoder embeddings), ``native`` (the
optional AMX kernels of ``rerankit-amx``). The reranker built on them is ``rerankit.rerankers.cross_encoder.CrossEncoderReranker``.

Submodules are imported on first use, so ``import rerankit.engine.cache`` loads nothing else.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BACKENDS", "CrossEncoderReranker", "available_backends", "make_runner"]


def __getattr__(name: str) -> Any:
    if name in ("BACKENDS", "available_backends", "make_runner"):
        from . import backend

        return getattr(backend, name)
    if name == "CrossEncoderReranker":  # the former engine class: now the one cross-encoder class
        from ..rerankers.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
