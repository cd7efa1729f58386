"""Builds the AMX kernels when the package is installed (x86-64 Linux, gcc or clang with AMX support).

Each kernel is a shared library loaded by rerankit with ctypes (``rerankit.engine.native``); they
export plain C functions, not Python modules. On other platforms the build fails and rerankit
keeps its other backends.
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mfma",
         "-mamx-tile", "-mamx-bf16", "-mamx-int8", "-fopenmp"]
KERNELS = ["bf16_linear", "packed_attention", "attention_block", "int8_linear"]

setup(ext_modules=[Extension(f"rerankit_amx.{name}", [f"units/{name}.c"], extra_compile_args=FLAGS,
                             extra_link_args=["-fopenmp", "-lm"]) for name in KERNELS])
