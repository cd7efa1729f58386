"""rerankit's small C kernels (``engine/kernels/*.c``, each compiled after ``amx_common.h`` and the
kernels whose functions it calls): built once per machine, loaded with ctypes.

The kernels use AMX tiles and AVX-512, so they apply to CPUs with AMX-BF16 (``amx_bf16`` and
``amx_tile`` in ``/proc/cpuinfo``; the int8 layers also need ``amx_int8``) on Linux. A kernel is
compiled at first use with ``$CC`` (else ``cc``, else ``gcc``) and OpenMP, into
``<rerankit cache>/kernels/`` under a name keyed by its source, the flags and the compiler; the
file is written atomically (a killed build leaves only a temporary file, never loaded) and reused
by later processes. The library links the libgomp that torch has loaded, so the kernels run on
torch's OpenMP threads. ``RERANKIT_NATIVE=0`` turns every kernel off; callers then keep their
torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from .cache import cache_root, remove_stale_temporaries, write_atomically
from .hardware import cpu_flags, has_amx

logger = logging.getLogger(__name__)

K = TypeVar("K")

FLAGS = ["-O3", "-fPIC", "-shared", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16",
         "-mfma", "-mamx-tile", "-mamx-bf16", "-mamx-int8", "-fopenmp"]
DISABLE_ENV = "RERANKIT_NATIVE"


def native_enabled(needs_int8: bool = False) -> bool:
    """Whether this CPU and environment allow the kernels (not whether they built)."""
    if os.environ.get(DISABLE_ENV, "").strip() == "0" or not has_amx():
        return False
    return not needs_int8 or "amx_int8" in cpu_flags()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def _build(name: str, source: bytes, compiler: str) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(source + " ".join(FLAGS).encode() + version.encode()).hexdigest()[:20]
    folder = cache_root() / "kernels"
    target = folder / f"{name}-{key}.so"
    if target.is_file():
        return target
    remove_stale_temporaries(folder)

    def compile_into(tmp: Path) -> None:
        subprocess.run([compiler, "-x", "c", "-", *FLAGS, "-o", str(tmp), "-lm"],
                       input=source, check=True, capture_output=True, timeout=120)

    write_atomically(target, compile_into)
    for stale in folder.glob(f"{name}-*.so"):  # builds of older sources (a loaded library stays mapped)
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def load_kernel_library(name: str, needs_int8: bool = False, uses: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The compiled ``kernels/<name>.c`` (after ``amx_common.h`` and the kernels it ``uses``, in
    order, as one translation unit), or ``None`` where it cannot be built or loaded here."""
    if not native_enabled(needs_int8):
        return None
    compiler = _compiler()
    if compiler is None:
        return None
    try:
        kernels = resources.files("rerankit.engine").joinpath("kernels")
        parts = ["amx_common.h", *(f"{part}.c" for part in uses), f"{name}.c"]
        source = b"\n".join(kernels.joinpath(part).read_bytes() for part in parts)
        library = ctypes.CDLL(str(_build(name, source, compiler)))
        return library if library.rk_amx_init() == 0 else None
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("native kernel %s unavailable (%s); using torch", name, exc)
        return None


def load_checked_kernel(name: str, wrap: Callable[[ctypes.CDLL], K], self_test: Callable[[K], bool],
                        needs_int8: bool = False, uses: tuple[str, ...] = ()) -> K | None:
    """``wrap(library)`` of ``kernels/<name>.c`` if it builds here and passes ``self_test`` (a
    comparison with a torch reference), else ``None`` (logged), so callers keep their torch path."""
    library = load_kernel_library(name, needs_int8, uses)
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
