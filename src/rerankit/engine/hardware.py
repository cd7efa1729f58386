"""What the CPU offers (flags, physical cores) and the thread count the engine uses.

Thread rule: one intra-op thread per *physical* core available to this process (SMT siblings
share the vector units that matmuls saturate, so they add contention, not throughput). Override
with ``RERANKIT_THREADS``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The ``flags`` of the first processor in ``/proc/cpuinfo`` (empty where unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_amx() -> bool:
    return {"amx_bf16", "amx_tile"} <= cpu_flags()


def has_avx512_bf16() -> bool:
    return "avx512_bf16" in cpu_flags()


def has_bf16_units() -> bool:
    """Whether the CPU computes bf16 natively (AMX or AVX512-BF16); elsewhere bf16 is emulated."""
    return has_amx() or has_avx512_bf16()


def has_vnni() -> bool:
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (SMT siblings counted once)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - non-Linux
        allowed = set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        proc, phys, core = None, "0", None
        for line in Path("/proc/cpuinfo").read_text().splitlines() + [""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "processor":
                proc = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
            elif not line.strip() and proc is not None:
                if proc in allowed:
                    cores.add((phys, core if core is not None else str(proc)))
                proc, phys, core = None, "0", None
    except (OSError, ValueError):
        cores = set()
    return max(1, min(len(cores) or len(allowed), len(allowed)))


def engine_threads() -> int:
    """Intra-op threads: ``RERANKIT_THREADS`` if set, else the physical core count."""
    from ..settings import settings

    return settings().threads or physical_cores()


def describe() -> dict[str, object]:
    """A summary for logs and the bench command."""
    return {
        "physical_cores": physical_cores(),
        "threads": engine_threads(),
        "amx": has_amx(),
        "avx512_bf16": has_avx512_bf16(),
        "vnni": has_vnni(),
    }
