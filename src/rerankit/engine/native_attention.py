"""Packed variable-length attention on AMX tiles (``rerankit-amx``: ``kernels/packed_attention.c``, loaded by ``native``).

The fused bf16 layers spend most of their non-matmul time in attention: ATen's CPU flash kernel
handles head dimension 32 at about a tenth of the matmul rate, and the packed rows must first be
scattered into a padded ``[batch, heads, length, dim]`` grid and gathered back. This kernel reads
the packed ``[rows, 3 * hidden]`` QKV projection as it comes out of the matmul, scores each
(sequence, head) with AMX-BF16 tiles (scores and softmax in fp32, probabilities rounded to bf16
for the value product, as the flash kernel does) and writes the packed ``[rows, hidden]`` context
that the output projection reads.

``packed_attention_kernel()`` returns ``None`` where the kernel cannot be built (see ``native``) or
where it differs from an fp32 reference on a random self-test at load; the layers then keep
``scaled_dot_product_attention``.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from .native import load_checked_kernel


class PackedAttention:
    """``ctx = kernel(qkv, offsets, heads, max_len)``: attention over packed rows (see the module docstring)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._run = library.rk_packed_attention
        self._run.restype = ctypes.c_int
        self._run.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 6 + [ctypes.c_int]

    def __call__(self, qkv: torch.Tensor, offsets: torch.Tensor, heads: int, max_len: int,
                 bias: torch.Tensor | None = None, threads: int | None = None) -> torch.Tensor:
        """``qkv``: bf16 ``[rows, 3 * hidden]`` (rows of sequence ``b`` from ``offsets[b]`` to
        ``offsets[b + 1]``; rows past ``offsets[-1]`` are padding); ``offsets``: int64 ``[batch + 1]``;
        ``bias``: optional fp32 ``[heads, max_len, max_len]`` added to the scaled scores (MPNet).
        Returns bf16 ``[rows, hidden]``, padding rows zero."""
        rows, width = qkv.shape
        if qkv.dtype != torch.bfloat16 or width % 3 or qkv.stride(1) != 1:
            raise ValueError("qkv must be a row-major bf16 [rows, 3 * hidden] tensor")
        hidden = width // 3
        if heads < 1 or hidden % heads:
            raise ValueError("heads must divide the width")
        offsets, real = checked_offsets(offsets, rows)
        bias = checked_bias(bias, heads, max_len)
        out = padded_output(rows, hidden, real)
        status = self._run(qkv.data_ptr(), out.data_ptr(), offsets.data_ptr(),
                           bias.data_ptr() if bias is not None else 0, offsets.numel() - 1, heads,
                           hidden // heads, qkv.stride(0), out.stride(0), max_len,
                           threads or torch.get_num_threads())
        if status != 0:
            raise RuntimeError(f"packed attention kernel failed (status {status})")
        return out


def checked_offsets(offsets: torch.Tensor, rows: int) -> tuple[torch.Tensor, int]:
    """Sequence offsets as the kernels read them (int64, contiguous) and the real row count;
    ValueError unless they run from 0 to at most ``rows``."""
    offsets = offsets.to(torch.int64).contiguous()
    real = int(offsets[-1])
    if offsets.dim() != 1 or int(offsets[0]) != 0 or real > rows:
        raise ValueError("offsets must run from 0 to at most the row count")
    return offsets, real


def checked_bias(bias: torch.Tensor | None, heads: int, max_len: int) -> torch.Tensor | None:
    """MPNet's attention bias as the kernels read it (fp32, contiguous); ValueError unless it is
    ``[heads, max_len, max_len]``."""
    if bias is None:
        return None
    bias = bias.to(torch.float32).contiguous()
    if tuple(bias.shape) != (heads, max_len, max_len):
        raise ValueError(f"bias must be [heads, max_len, max_len], got {tuple(bias.shape)}")
    return bias


def padded_output(rows: int, width: int, real: int) -> torch.Tensor:
    """A bf16 ``[rows, width]`` output whose padding rows (from ``real`` on) are zero."""
    out = torch.empty(rows, width, dtype=torch.bfloat16)
    if real < rows:
        out[real:].zero_()
    return out


def reference_attention(qkv: torch.Tensor, offsets: torch.Tensor, heads: int,
                        bias: torch.Tensor | None = None) -> torch.Tensor:
    """The same attention in fp32 torch, one sequence at a time (for the self-test and the tests)."""
    rows, width = qkv.shape
    hidden = width // 3
    dim = hidden // heads
    out = torch.zeros(rows, hidden)
    for b in range(offsets.numel() - 1):
        start, end = int(offsets[b]), int(offsets[b + 1])
        if end == start:
            continue
        q, k, v = qkv[start:end].float().view(end - start, 3, heads, dim).permute(1, 2, 0, 3)
        scores = q @ k.transpose(-1, -2) / dim**0.5
        if bias is not None:
            scores = scores + bias[:, : end - start, : end - start].float()
        out[start:end] = (scores.softmax(-1) @ v).transpose(0, 1).reshape(end - start, hidden)
    return out


def _self_test(kernel: PackedAttention) -> bool:
    generator = torch.Generator().manual_seed(0)
    for heads, dim, lengths in ((2, 32, (37, 16, 1, 50)), (3, 16, (20, 33)), (1, 64, (70,))):
        offsets = torch.tensor([0, *lengths]).cumsum(0)
        rows = int(offsets[-1]) + 3
        qkv = (torch.randn(rows, 3 * heads * dim, generator=generator) * 2).to(torch.bfloat16)
        bias = torch.randn(heads, max(lengths), max(lengths), generator=generator) if dim == 16 else None
        got = kernel(qkv, offsets, heads, max(lengths), bias).float()
        want = reference_attention(qkv, offsets, heads, bias)
        if not torch.allclose(got, want, atol=0.05, rtol=0.02) or got[int(offsets[-1]):].abs().sum() != 0:
            return False
    return True


@functools.cache
def packed_attention_kernel() -> PackedAttention | None:
    """The compiled kernel, or ``None`` where it does not apply (see the module docstring)."""
    return load_checked_kernel("packed_attention", PackedAttention, _self_test)
