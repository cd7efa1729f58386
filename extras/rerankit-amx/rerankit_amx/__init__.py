"""rerankit's AMX kernels, compiled when this package was installed: ``library_path(name)``."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

KERNELS = ("bf16_linear", "packed_attention", "attention_block", "int8_linear")


def library_path(name: str) -> Path | None:
    """The shared library of kernel ``name``, or None if it was not built."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}")
    folder = Path(__file__).resolve().parent
    for suffix in EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None
