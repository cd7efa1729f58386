"""What is installed and what it can run here: the runtimes' Python packages, a CUDA device, and
the CPU capabilities OpenVINO reports. The backends and ``auto`` ask here; nothing is imported
until asked."""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec


def installed(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported (without importing it)."""
    return all(find_spec(name) is not None for name in modules)


def onnx_available() -> bool:
    return installed("onnx", "onnxruntime")


def openvino_available() -> bool:
    return installed("openvino")


def nncf_available() -> bool:
    return installed("nncf")


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


@lru_cache(maxsize=1)
def openvino_core():
    """One ``openvino.Core`` per process. It has no ``CACHE_DIR`` of its own: each compile names the
    compiled-blob folder beside its IR (``openvino_backend.compile_cached``), so the cache folder is
    read when a model is compiled, not when the core was first made."""
    import openvino as ov

    return ov.Core()


@lru_cache(maxsize=1)
def openvino_capabilities() -> frozenset[str]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` (``FP32``, ``INT8``, ``BF16``, ...); empty without OpenVINO."""
    if not openvino_available():
        return frozenset()
    return frozenset(openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def openvino_runs_bf16() -> bool:
    """Whether OpenVINO executes bf16 on this CPU (AMX or AVX512-BF16)."""
    return "BF16" in openvino_capabilities()
