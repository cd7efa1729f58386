"""The AMX packed-attention kernel: same results as fp32 attention, same scores as the SDPA path, and
no kernel (SDPA instead) where it cannot be built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rerankit.engine import native
from rerankit.engine.native_attention import packed_attention_kernel, reference_attention
from engine_helpers import kernel_or_skip


@pytest.fixture
def kernel():
    return kernel_or_skip(packed_attention_kernel(), "packed attention kernel")


@pytest.fixture
def fresh_kernel_lookup(monkeypatch, tmp_path):
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path / "cache"))
    packed_attention_kernel.cache_clear()
    yield
    packed_attention_kernel.cache_clear()


def _packed(lengths, heads, dim, padding=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    qkv = (torch.randn(int(offsets[-1]) + padding, 3 * heads * dim, generator=generator) * 2).to(torch.bfloat16)
    return qkv, offsets


@pytest.mark.parametrize("threads", [1, 3])  # 8 sequences: whole sequences per task with 1 thread, heads with 3
@pytest.mark.parametrize("heads,dim", [(12, 32), (4, 16), (2, 64), (1, 96)])
def test_kernel_matches_fp32_attention_on_mixed_lengths(kernel, heads, dim, threads):
    lengths = [1, 128, 17, 16, 33, 100, 2, 64]
    qkv, offsets = _packed(lengths, heads, dim)
    got = kernel(qkv, offsets, heads, max_len=128, threads=threads).float()
    want = reference_attention(qkv, offsets, heads)
    real = int(offsets[-1])
    assert got.shape == (qkv.shape[0], heads * dim)
    np.testing.assert_allclose(got[:real].numpy(), want[:real].numpy(), atol=0.03, rtol=0.02)
    assert float(want[:real].abs().mean()) > 0.1  # the outputs are not all near zero
    assert not got[real:].any()  # padding rows are zero, not left over memory


def test_kernel_adds_a_position_bias(kernel):
    lengths = [9, 40, 3]
    qkv, offsets = _packed(lengths, 3, 32, seed=1)
    bias = torch.randn(3, 40, 40) * 3
    got = kernel(qkv, offsets, 3, max_len=40, bias=bias).float()
    np.testing.assert_allclose(got.numpy(), reference_attention(qkv, offsets, 3, bias).numpy(), atol=0.03, rtol=0.02)
    without = kernel(qkv, offsets, 3, max_len=40).float()
    assert float((got - without).abs().max()) > 0.1  # the bias changed the result


def test_kernel_refuses_bad_input(kernel):
    qkv, offsets = _packed([10, 20], 2, 32)
    with pytest.raises(ValueError):
        kernel(qkv.float(), offsets, 2, max_len=20)
    with pytest.raises(RuntimeError):  # a sequence longer than max_len
        kernel(qkv, offsets, 2, max_len=16)
    with pytest.raises(ValueError):
        kernel(qkv, offsets, 2, max_len=20, bias=torch.zeros(2, 8, 8))


def test_fused_layers_score_the_same_with_and_without_the_kernel(kernel, tmp_path):
    from rerankit.engine.fused_encoder import fused_encoder_for
    from rerankit.engine.modules import build_module, read_info

    from test_fused_encoder import _batch, _tiny

    folder = _tiny("bert", tmp_path / "bert", num_attention_heads=2)  # head dimension 32, as MiniLM's
    fused = fused_encoder_for(build_module(read_info(folder)).to(torch.bfloat16))
    assert fused is not None and fused.encoder.kernel is kernel
    batch = _batch([1, 5, 17, 64, 100, 128, 33, 90] * 3, 128, seed=2)
    with torch.inference_mode():
        with_kernel = fused(**batch).float().numpy()[:, 0]
        fused.encoder.kernel = None
        with_sdpa = fused(**batch).float().numpy()[:, 0]
    assert with_kernel.max() - with_kernel.min() > 0.05
    np.testing.assert_allclose(with_kernel, with_sdpa, atol=0.02)


def test_no_kernel_when_disabled(monkeypatch, fresh_kernel_lookup):
    monkeypatch.setenv("RERANKIT_NATIVE", "0")
    assert packed_attention_kernel() is None


def test_no_kernel_without_the_rerankit_amx_package(monkeypatch, fresh_kernel_lookup):
    monkeypatch.setattr(native, "has_amx", lambda: True)
    monkeypatch.setattr(native, "kernels_installed", lambda: False)
    assert packed_attention_kernel() is None


def test_no_kernel_without_amx(monkeypatch, fresh_kernel_lookup):
    monkeypatch.setattr(native, "has_amx", lambda: False)
    assert packed_attention_kernel() is None


def test_kernel_refuses_offsets_past_the_rows(kernel):
    qkv, offsets = _packed([10, 20], 2, 32, padding=0)
    with pytest.raises(ValueError):
        kernel(qkv[:25], offsets, 2, max_len=20)  # the offsets name 30 rows
    with pytest.raises(ValueError):
        kernel(qkv, offsets, 3, max_len=20)  # 3 heads do not divide 64 columns


def test_kernels_load_without_ever_calling_a_compiler(monkeypatch, fresh_kernel_lookup):
    import subprocess

    def no_compiler(*args, **kwargs):
        raise AssertionError(f"a process was started at run time: {args}")

    monkeypatch.setattr(subprocess, "run", no_compiler)
    monkeypatch.setattr(subprocess, "Popen", no_compiler)
    if not native.native_enabled() or not native.kernels_installed():
        pytest.skip("no AMX here, or rerankit-amx is not installed (pip install ./extras/rerankit-amx)")
    assert packed_attention_kernel() is not None
