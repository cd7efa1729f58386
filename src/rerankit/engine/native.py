"""rerankit's AMX kernels, from the optional ``rerankit-amx`` package (``extras/rerankit-amx``),
which compiles them when it is installed: here they are only found and loaded with ctypes. No
compiler is ever called at run time.

The kernels use AMX tiles and AVX-512, so they apply to CPUs with AMX-BF16 (``amx_bf16`` and
``amx_tile`` in ``/proc/cpuinfo``; the int8 layers also need ``amx_int8``) on Linux. Without the
package, on other CPUs, or with ``RERANKIT_NATIVE=0`` every loader returns ``None`` and callers
keep their torch path. The libraries link the libgomp that torch has loaded, so the kernels run
on torch's OpenMP threads.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import TypeVar

from .hardware import cpu_flags, has_amx

logger = logging.getLogger(__name__)

K = TypeVar("K")

def native_enabled(needs_int8: bool = False) -> bool:
    """Whether this CPU and environment allow the kernels (not whether they are installed)."""
    from ..settings import settings

    if not settings().native or not has_amx():
        return False
    return not needs_int8 or "amx_int8" in cpu_flags()


def kernels_installed() -> bool:
    """Whether the ``rerankit-amx`` package (the compiled kernels) is installed."""
    from .runtimes import installed

    return installed("rerankit_amx")


def kernels_in_use() -> bool:
    """Whether the bf16 kernels run here: allowed on this CPU and environment, and installed."""
    return native_enabled() and kernels_installed()


def load_kernel_library(name: str, needs_int8: bool = False) -> ctypes.CDLL | None:
    """The compiled kernel ``name`` of ``rerankit-amx``, or ``None`` where it is absent or cannot run here."""
    if not native_enabled(needs_int8) or not kernels_installed():
        return None
    from rerankit_amx import library_path

    path = library_path(name)
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
        return library if library.rk_amx_init() == 0 else None
    except OSError as exc:
        logger.warning("native kernel %s unavailable (%s); using torch", name, exc)
        return None


def load_checked_kernel(name: str, wrap: Callable[[ctypes.CDLL], K], self_test: Callable[[K], bool],
                        needs_int8: bool = False) -> K | None:
    """``wrap(library)`` of kernel ``name`` if it is installed, runs here and passes ``self_test`` (a
    comparison with a torch reference), else ``None`` (logged), so callers keep their torch path."""
    library = load_kernel_library(name, needs_int8)
    if library is None:
        return None
    kernel = wrap(library)
    try:
        if self_test(kernel):
            return kernel
        logger.warning("native kernel %s gives wrong results here; using torch", name)
    except RuntimeError as exc:
        logger.warning("native kernel %s failed its self-test (%s); using torch", name, exc)
    return None
