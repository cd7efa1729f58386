"""The backend interface: a callable from a collated int64 batch to float32 scores ``[B, K]``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

BACKENDS = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8")


class Runner(Protocol):
    """Runs the scoring model on one right-padded batch."""

    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def available_backends() -> list[str]:
    """Backends usable in this environment (ONNX ones need ``onnx`` and ``onnxruntime``,
    ``torch-int8`` a CPU with AMX-INT8)."""
    from .native import native_enabled

    return [b for b in BACKENDS if (not b.startswith("onnx") or onnx_available())
            and (b != "torch-int8" or native_enabled(needs_int8=True))]
