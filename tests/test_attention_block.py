"""The fused attention block (QKV, attention, output projection and layer norm per sequence) matches
an fp32 torch reference and the three separate kernels exactly, and bad inputs are typed errors."""

from __future__ import annotations

import pytest
import torch

from rerankit.engine.attention_block import attention_block_kernel, reference_block
from rerankit.engine.bf16_linear import bf16_kernels
from engine_helpers import kernel_or_skip


@pytest.fixture
def block():
    return kernel_or_skip(attention_block_kernel(), "attention block kernel")


def _weights(heads: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = heads * dim
    norm = torch.nn.LayerNorm(hidden)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(hidden, generator=g))
        norm.bias.copy_(torch.randn(hidden, generator=g))
    return ((torch.randn(3 * hidden, hidden, generator=g) * 0.2).to(torch.bfloat16), torch.randn(3 * hidden, generator=g),
            (torch.randn(hidden, hidden, generator=g) * 0.1).to(torch.bfloat16), torch.randn(hidden, generator=g), norm)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("heads,dim,with_bias", [(2, 32, False), (4, 16, True), (12, 32, False)])
def test_block_matches_the_fp32_reference(block, threads, heads, dim, with_bias):
    lengths = [1, 31, 32, 33, 70, 16, 17, 5, 64]
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    rows = int(offsets[-1]) + 11
    wqkv, bqkv, wo, bo, norm = _weights(heads, dim)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(rows, heads * dim, generator=g).to(torch.bfloat16)
    bias = torch.randn(heads, 70, 70, generator=g) if with_bias else None
    linear = bf16_kernels()
    got = block(x, offsets, heads, 70, bias, linear.pack(wqkv, bqkv), linear.pack(wo, bo, norm), threads=threads)
    want = reference_block(x, offsets, heads, wqkv, bqkv, wo, bo, norm, bias)
    real = int(offsets[-1])
    torch.testing.assert_close(got[:real].float(), want[:real], atol=0.05, rtol=0.02)
    assert got[real:].abs().sum() == 0


def test_block_equals_the_separate_kernels(block):
    from rerankit.engine.native_attention import packed_attention_kernel

    heads, dim = 4, 32
    lengths = [40, 9, 23, 64, 1, 50, 12, 30, 8]
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    rows = (int(offsets[-1]) + 15) // 16 * 16
    wqkv, bqkv, wo, bo, norm = _weights(heads, dim, seed=2)
    x = torch.randn(rows, heads * dim, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    linear, attention = bf16_kernels(), packed_attention_kernel()
    qkv, out = linear.pack(wqkv, bqkv), linear.pack(wo, bo, norm)
    ctx = attention(linear.linear(x, qkv), offsets, heads, 64)
    separate = linear.linear(ctx, out, residual=x)
    fused = block(x, offsets, heads, 64, None, qkv, out)
    real = int(offsets[-1])
    assert torch.equal(fused[:real], separate[:real])


def test_bad_inputs_are_typed_errors(block):
    heads, dim = 2, 32
    wqkv, bqkv, wo, bo, norm = _weights(heads, dim)
    linear = bf16_kernels()
    qkv, out, plain = linear.pack(wqkv, bqkv), linear.pack(wo, bo, norm), linear.pack(wo, bo)
    x = torch.zeros(48, 64, dtype=torch.bfloat16)
    offsets = torch.tensor([0, 20, 40])
    with pytest.raises(ValueError, match="layer norm"):
        block(x, offsets, heads, 32, None, qkv, plain)
    with pytest.raises(ValueError, match="max_len"):
        block(x, offsets, heads, 16, None, qkv, out)  # a sequence of 20 rows
    with pytest.raises(ValueError, match="row count"):
        block(x[:32], offsets, heads, 32, None, qkv, out)
    with pytest.raises(ValueError, match="bf16"):
        block(x.float(), offsets, heads, 32, None, qkv, out)
    with pytest.raises(ValueError, match="bias"):
        block(x, offsets, heads, 32, torch.zeros(heads, 16, 16), qkv, out)
