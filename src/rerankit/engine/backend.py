"""The backend interface: a callable from a collated int64 batch to float32 scores ``[B, K]``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

BACKENDS = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8",
            "openvino-fp32", "openvino-bf16", "openvino-int8")


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


def backend_available(name: str) -> bool:
    """Whether ``name`` can run in this environment: ONNX backends need ``onnx`` and ``onnxruntime``,
    OpenVINO ones ``openvino`` (``openvino-bf16`` a CPU that OpenVINO runs bf16 on, ``openvino-int8``
    ``nncf``), ``torch-int8`` a CPU with AMX-INT8."""
    if name.startswith("onnx"):
        return onnx_available()
    if name.startswith("openvino"):
        from .openvino_backend import nncf_available, openvino_available, runs_bf16

        if not openvino_available():
            return False
        return {"openvino-bf16": runs_bf16, "openvino-int8": nncf_available}.get(name, lambda: True)()
    if name == "torch-int8":
        from .native import native_enabled

        return native_enabled(needs_int8=True)
    return name in BACKENDS


def available_backends() -> list[str]:
    """Backends usable in this environment (see ``backend_available``)."""
    return [b for b in BACKENDS if backend_available(b)]
