"""The backend interface: a callable from a collated int64 batch to float32 scores ``[B, K]``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InvalidInputError
from .modules import ModelInfo
from .runtimes import cuda_available, nncf_available, onnx_available, openvino_available, openvino_runs_bf16

__all__ = ["BACKENDS", "Runner", "available_backends", "backend_available", "cuda_available", "make_runner",
           "onnx_available", "run_batches"]

BACKENDS = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8",
            "openvino-fp32", "openvino-bf16", "openvino-int8", "cuda-fp32", "cuda-fp16", "cuda-bf16")


class Runner(Protocol):
    """Runs the scoring model on one right-padded batch."""

    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


def run_batches(runner: Runner, jobs: Iterable[tuple[list[int], dict[str, np.ndarray]]], outputs: np.ndarray) -> None:
    """``outputs[rows] = runner(batch)`` for every ``(rows, batch)`` of ``jobs``: one batch after another, or
    through the runner's ``run_batches`` where it has one (OpenVINO's streams run several at once)."""
    concurrent = getattr(runner, "run_batches", None)
    if concurrent is not None:
        concurrent(jobs, outputs)
        return
    for rows, batch in jobs:
        outputs[rows] = runner(batch)


def backend_available(name: str) -> bool:
    """Whether ``name`` can run in this environment: ONNX backends need ``onnx`` and ``onnxruntime``,
    OpenVINO ones ``openvino`` (``openvino-bf16`` a CPU that OpenVINO runs bf16 on, ``openvino-int8``
    ``nncf``), ``torch-int8`` a CPU with AMX-INT8 and ``rerankit-amx``, ``cuda-*`` a CUDA device."""
    if name.startswith("onnx"):
        return onnx_available()
    if name.startswith("openvino"):
        if not openvino_available():
            return False
        return {"openvino-bf16": openvino_runs_bf16, "openvino-int8": nncf_available}.get(name, lambda: True)()
    if name.startswith("cuda"):
        return cuda_available()
    if name == "torch-int8":
        from .native import kernels_installed, native_enabled

        return native_enabled(needs_int8=True) and kernels_installed()
    return name in BACKENDS


def available_backends() -> list[str]:
    """Backends usable in this environment (see ``backend_available``)."""
    return [b for b in BACKENDS if backend_available(b)]


def make_runner(info: ModelInfo, backend: str, num_threads: int | None = None, cache_dir: Path | None = None,
                calibration: list[dict[str, np.ndarray]] | None = None, device: str | None = None) -> Runner:
    """A runner for one of ``BACKENDS`` (``calibration``: batches that ``torch-int8`` balances its
    channels on; ``device``: which CUDA device the ``cuda-*`` backends use, default ``cuda``)."""
    family, _, precision = backend.partition("-")
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend {backend!r}; use 'auto' or one of {', '.join(BACKENDS)}")
    if family in ("torch", "cuda"):
        from .torch_backend import TorchRunner

        where = (device if device and device.startswith("cuda") else "cuda") if family == "cuda" else "cpu"
        return TorchRunner(info, precision, num_threads, calibration=calibration, device=where)
    if family == "onnx":
        from .onnx_backend import OnnxRunner

        return OnnxRunner(info, precision, num_threads, cache_dir)
    from .openvino_backend import OpenVinoRunner

    return OpenVinoRunner(info, precision, num_threads, cache_dir)
