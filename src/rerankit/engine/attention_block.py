"""A fused layer's whole attention block in one AMX kernel (``kernels/attention_block.c``).

``y = LayerNorm(attention(x Wqkv^T + bqkv) Wo^T + bo + x)``, one sequence per task. Run as three
kernels (QKV projection, attention, output projection), a batch's QKV rows (3 x hidden bf16 a
token) go out to memory and back, and so do the attention context's; on a CPU whose memory is
the bottleneck (the 2-core development VM writes about 13 GB/s) that traffic costs more than the
products. Here a sequence's QKV rows, context and output rows stay in the thread's buffers. Same
arithmetic as ``bf16_linear`` and ``native_attention``, whose C functions the kernel calls.

The fused layers use it for batches of at least ``4 x threads`` sequences (each thread then has
several sequences to take); smaller batches split attention by head instead and keep the three
kernels. ``attention_block_kernel()`` is ``None`` where the kernel cannot be built (see
``native``) or differs from a torch reference on a random self-test at load.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from .bf16_linear import PackedLinear, bf16_kernels
from .native import load_checked_kernel
from .native_attention import checked_bias, checked_offsets, padded_output, reference_attention


class AttentionBlockKernel:
    """``y = kernel(x, offsets, heads, max_len, bias, qkv, att_out)`` (see the module docstring)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        p, i = ctypes.c_void_p, ctypes.c_int64
        self._run = library.rk_attention_block
        self._run.restype = ctypes.c_int
        self._run.argtypes = [p, i, p, i, p, i, p, i, i, i, p, p, p, p, p, p, ctypes.c_float, ctypes.c_int]

    def __call__(self, x: torch.Tensor, offsets: torch.Tensor, heads: int, max_len: int, bias: torch.Tensor | None,
                 qkv: PackedLinear, att_out: PackedLinear, threads: int | None = None) -> torch.Tensor:
        """``x``: bf16 ``[rows, hidden]`` packed rows (sequence ``b`` from ``offsets[b]`` to
        ``offsets[b + 1]``); ``qkv``, ``att_out``: the projections, ``att_out`` with its layer norm;
        ``bias``: optional fp32 ``[heads, max_len, max_len]`` (MPNet). Returns bf16 ``[rows, hidden]``,
        rows past ``offsets[-1]`` zero."""
        rows, hidden = x.shape
        if x.dtype != torch.bfloat16 or x.dim() != 2 or x.stride(1) != 1:
            raise ValueError("x must be a row-major bf16 [rows, hidden] matrix")
        if heads < 1 or hidden % heads or (qkv.out_features, qkv.in_features) != (3 * hidden, hidden) \
                or (att_out.out_features, att_out.in_features) != (hidden, hidden) or att_out.norm is None:
            raise ValueError("qkv must map hidden to 3 x hidden, att_out hidden to hidden with its layer norm, "
                             "and heads divide hidden")
        offsets, real = checked_offsets(offsets, rows)
        lengths = offsets[1:] - offsets[:-1]
        if bool((lengths < 0).any()) or (lengths.numel() and int(lengths.max()) > max_len):
            raise ValueError("offsets must rise from one sequence to the next by at most max_len")
        bias = checked_bias(bias, heads, max_len)
        y = padded_output(rows, hidden, real)
        norm_weight, norm_bias, eps = att_out.norm_pointers()
        status = self._run(x.data_ptr(), x.stride(0), y.data_ptr(), y.stride(0), offsets.data_ptr(),
                           offsets.numel() - 1, bias.data_ptr() if bias is not None else None, heads,
                           hidden // heads, max_len, qkv.packed.data_ptr(), qkv.bias.data_ptr(),
                           att_out.packed.data_ptr(), att_out.bias.data_ptr(), norm_weight, norm_bias, eps,
                           threads or torch.get_num_threads())
        if status != 0:
            raise RuntimeError(f"attention block kernel failed (status {status}: 1 shape, 2 memory)")
        return y


def reference_block(x: torch.Tensor, offsets: torch.Tensor, heads: int, wqkv: torch.Tensor, bqkv: torch.Tensor,
                    wo: torch.Tensor, bo: torch.Tensor, norm: torch.nn.LayerNorm,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """The same block in fp32 torch (QKV and context rounded to bf16, as the kernel stores them)."""
    qkv = (x.float() @ wqkv.float().T + bqkv).to(torch.bfloat16)
    ctx = reference_attention(qkv, offsets, heads, bias).to(torch.bfloat16)
    with torch.no_grad():
        return norm(ctx.float() @ wo.float().T + bo + x.float())


def _self_test(kernel: AttentionBlockKernel) -> bool:
    linear = bf16_kernels()
    if linear is None:
        return False
    generator = torch.Generator().manual_seed(0)
    for heads, dim, lengths in ((2, 32, (37, 16, 1, 50, 33)), (4, 16, (20, 64, 7))):
        hidden = heads * dim
        offsets = torch.tensor([0, *lengths]).cumsum(0)
        rows = int(offsets[-1]) + 5
        x = torch.randn(rows, hidden, generator=generator).to(torch.bfloat16)
        wqkv = (torch.randn(3 * hidden, hidden, generator=generator) * 0.2).to(torch.bfloat16)
        wo = (torch.randn(hidden, hidden, generator=generator) * 0.1).to(torch.bfloat16)
        bqkv, bo = torch.randn(3 * hidden, generator=generator), torch.randn(hidden, generator=generator)
        norm = torch.nn.LayerNorm(hidden)
        bias = torch.randn(heads, max(lengths), max(lengths), generator=generator) if dim == 16 else None
        got = kernel(x, offsets, heads, max(lengths), bias, linear.pack(wqkv, bqkv), linear.pack(wo, bo, norm)).float()
        want = reference_block(x, offsets, heads, wqkv, bqkv, wo, bo, norm, bias)
        real = int(offsets[-1])
        if not torch.allclose(got[:real], want[:real], atol=0.05, rtol=0.02) or got[real:].abs().sum() != 0:
            return False
    return True


@functools.cache
def attention_block_kernel() -> AttentionBlockKernel | None:
    """The compiled kernel, or ``None`` where it does not apply (see the module docstring)."""
    return load_checked_kernel("attention_block", AttentionBlockKernel, _self_test)
