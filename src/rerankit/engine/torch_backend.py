"""torch backends: ``torch-fp32`` (the reference), ``torch-bf16`` (weights cast to bfloat16) and
``torch-int8`` (the fused bf16 layers with int8 matmuls, see ``int8_layers``) on the CPU, and
``cuda-fp32`` / ``cuda-fp16`` / ``cuda-bf16`` on a CUDA device: the Hugging Face module with PyTorch's
scaled-dot-product attention, fed the engine's length-sorted token-budget batches.

For BERT-family encoders, ``torch-bf16`` runs the fused layers of ``fused_encoder`` (one QKV
matmul; GELU, residual adds and layer norms fused into the matmuls, which run on rerankit's AMX
kernel where the CPU has AMX, else on oneDNN); other models run as Hugging Face wrote them, their
bf16 matmuls on oneDNN (AMX tiles or AVX512-BF16). ``torch.backends.mkldnn`` must be available
(it is in the official CPU wheels).
Threads: ``torch.set_num_threads(engine_threads())`` (physical cores), set at load; this is
process-wide in torch.

On CUDA, attention runs on PyTorch's flash or memory-efficient kernels, never cuDNN's. Measured on an H200
(torch 2.11, CUDA 13; the 64 queries x 100 candidates of ``benchmarks/backends.py --sections gpu``, timing
the runner alone, ``benchmarks/cuda_shapes.py``): with PyTorch's default choice ``cuda-fp16`` spent 96 ms per
query in the model on a first pass and 7.5 ms on a second pass over the same (batch, length) shapes, while
``cuda-fp32`` spent 14 and 13 ms: the pattern of cuDNN attention, which PyTorch may choose for masked
half-precision attention and which builds an execution plan per new input shape (reranking meets a new shape
at almost every batch). With cuDNN left out: 13.7 ms on the first pass, 9.0 on the second.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .hardware import engine_threads
from .modules import ModelInfo, build_module


def _cuda_attention():
    """A context that keeps scaled-dot-product attention off cuDNN (see the module docstring); a no-op
    where this torch has no backend selection."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        return nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _fused_without_transformers(info: ModelInfo):
    """The fused bf16 module of a BERT cross-encoder built from its safetensors (``bert_module``), or
    None (another model, or the fused layers do not apply here): the caller builds it the usual way."""
    from types import SimpleNamespace

    import torch

    from .bert_module import bert_for_fusion
    from .fused_encoder import fused_encoder_for

    model = bert_for_fusion(info.folder, head=True)
    return None if model is None else fused_encoder_for(SimpleNamespace(model=model.to(torch.bfloat16)))


class TorchRunner:
    """A torch scoring module in fp32 or bf16, run under ``inference_mode``."""

    # on a GPU, batches of up to 16k tokens and 256 sequences keep it busy
    token_budget_cuda, max_batch_cuda = 16384, 256

    def __init__(self, info: ModelInfo, dtype: str = "fp32", num_threads: int | None = None, module=None,
                 calibration: list[dict[str, np.ndarray]] | None = None, device: str = "cpu") -> None:
        import torch

        from ..errors import BackendUnavailableError

        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if cuda and not torch.cuda.is_available():
            raise BackendUnavailableError("the cuda backends need a CUDA device and a CUDA build of torch")
        if cuda and dtype == "int8":
            raise BackendUnavailableError("int8 runs on the CPU only (torch-int8)")
        if not cuda:
            torch.set_num_threads(num_threads or engine_threads())
        else:
            self.token_budget, self.max_batch = self.token_budget_cuda, self.max_batch_cuda
        self.name = f"{'cuda' if cuda else 'torch'}-{dtype}"
        fused = None
        if module is None and dtype in ("bf16", "int8") and not cuda and info.kind == "encoder":
            fused = _fused_without_transformers(info)
        self.module = module if module is not None else fused if fused is not None else build_module(info, attn="sdpa")
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
                      "int8": torch.bfloat16}[dtype]
        self.module = self.module.to(self.device)
        if self.dtype is not torch.float32 and fused is None:
            self.module = self.module.to(self.dtype)
            head = getattr(self.module, "head", None)  # a yes-no model's two LM-head rows: float32 logits
            if head is not None:
                head.float()
            if info.kind == "encoder" and not cuda:
                from .fused_encoder import fused_encoder_for

                self.module = fused_encoder_for(self.module) or self.module
        if dtype == "int8":
            self._quantize(calibration or [])
        self.module.eval()

    def _quantize(self, calibration: list[dict[str, np.ndarray]]) -> None:
        import torch

        from ..errors import BackendUnavailableError
        from .fused_encoder import FusedEncoderScores
        from .int8_layers import quantize_encoder

        encoder = getattr(self.module, "encoder", None) if isinstance(self.module, FusedEncoderScores) else None
        batches = [{k: torch.from_numpy(v) for k, v in b.items()} for b in calibration]
        if encoder is None or not quantize_encoder(encoder, batches):
            raise BackendUnavailableError("torch-int8 needs a BERT-family cross-encoder (fused layers) and a CPU "
                                          "with AMX-INT8, Linux and the rerankit-amx package (extras/rerankit-amx)")

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode(), _cuda_attention() if self.device.type == "cuda" else nullcontext():
            out = self.module(**{k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in batch.items()})
        return out.float().cpu().numpy()
