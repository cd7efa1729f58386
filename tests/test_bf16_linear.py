"""bf16 AMX linear kernel: products (with bias, GELU, residual and a layer norm) match fp32 within bf16
rounding with any thread count and with streamed stores, bad inputs are typed errors, and the fused
layers use it where it applies and oneDNN otherwise, with the same results."""

from __future__ import annotations

import pytest
import torch

from rerankit.engine import bf16_linear
from rerankit.engine.bf16_linear import bf16_kernels
from rerankit.engine.fused_encoder import FusedLayer
from engine_helpers import kernel_or_skip


@pytest.fixture
def kernels():
    return kernel_or_skip(bf16_kernels(), "bf16 linear kernel")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _inputs(rows: int, width: int, out: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=g).to(torch.bfloat16)
    w = (torch.randn(out, width, generator=g) * 0.1).to(torch.bfloat16)
    return x, w, torch.randn(out, generator=g), torch.randn(rows, out, generator=g).to(torch.bfloat16)


@pytest.mark.parametrize("rows", [16, 48, 96, 272])  # 48 and 272: a last block of 16 rows
@pytest.mark.parametrize("threads", [1, 3])
def test_products_match_fp32_with_bias_gelu_and_residual(kernels, rows, threads):
    x, w, b, residual = _inputs(rows, 96, 160)
    layer = kernels.pack(w, b)
    exact = x.float() @ w.float().T + b
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        plain = kernels.linear(x, layer)
        gelu = kernels.linear(x, layer, gelu=True)
        added = kernels.linear(x, layer, residual=residual)
    finally:
        torch.set_num_threads(before)
    assert plain.dtype == torch.bfloat16 and plain.shape == (rows, 160)
    assert _relative(plain, exact) < 0.005  # one bf16 rounding of the output
    assert _relative(gelu, torch.nn.functional.gelu(exact)) < 0.005
    assert _relative(added, exact + residual.float()) < 0.005


def _norm(width: int, seed: int = 3) -> torch.nn.LayerNorm:
    g = torch.Generator().manual_seed(seed)
    norm = torch.nn.LayerNorm(width, eps=1e-12)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(width, generator=g))
        norm.bias.copy_(torch.randn(width, generator=g))
    return norm


@pytest.mark.parametrize("rows", [16, 48, 272])
@pytest.mark.parametrize("threads", [1, 3])
def test_layer_norm_after_the_residual_matches_fp32(kernels, rows, threads):
    x, w, b, residual = _inputs(rows, 96, 128, seed=2)
    residual = (residual.float() * 3 + 5).to(torch.bfloat16)  # an offset the norm must take out
    norm = _norm(128)
    layer = kernels.pack(w, b, norm)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = kernels.linear(x, layer, residual=residual)
    finally:
        torch.set_num_threads(before)
    with torch.no_grad():
        want = norm(x.float() @ w.float().T + b + residual.float())
    assert _relative(got, want) < 0.005
    without_norm = kernels.linear(x, kernels.pack(w, b), residual=residual)
    assert _relative(without_norm, want) > 0.5  # the norm was applied


def test_streamed_stores_give_the_same_outputs(kernels, monkeypatch):
    x, w, b, residual = _inputs(1024, 64, 288, seed=4)
    layer, normed = kernels.pack(w, b), kernels.pack(w, b, _norm(288))
    monkeypatch.setattr(bf16_linear, "STREAM_BYTES", 1 << 40)
    cached = [kernels.linear(x, layer, gelu=True), kernels.linear(x, normed, residual=residual)]
    monkeypatch.setattr(bf16_linear, "STREAM_BYTES", 0)
    streamed = [kernels.linear(x, layer, gelu=True), kernels.linear(x, normed, residual=residual)]
    assert all(torch.equal(a, b) for a, b in zip(cached, streamed))


def test_results_do_not_depend_on_the_thread_count(kernels):
    x, w, b, residual = _inputs(208, 64, 96, seed=1)
    layer = kernels.pack(w, b)
    before = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outputs.append(kernels.linear(x, layer, residual=residual, gelu=True))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(outputs[0], o) for o in outputs[1:])


def test_strided_rows_are_read_in_place(kernels):
    x, w, b, _ = _inputs(32, 128, 64)
    wide = torch.cat([x, x], dim=1)[:, :128]  # a view whose rows are 256 apart
    layer = kernels.pack(w, b)
    assert torch.equal(kernels.linear(wide, layer), kernels.linear(x.contiguous(), layer))


def test_bad_inputs_are_typed_errors(kernels):
    x, w, b, residual = _inputs(32, 64, 32)
    layer = kernels.pack(w, b)
    with pytest.raises(ValueError, match="multiple of 16"):
        kernels.linear(x[:24], layer)
    with pytest.raises(ValueError, match="bf16"):
        kernels.linear(x.float(), layer)
    with pytest.raises(ValueError, match=r"\[rows, 64\]"):
        kernels.linear(x[:, :32], layer)
    with pytest.raises(ValueError, match="residual"):
        kernels.linear(x, layer, residual=residual[:16])
    with pytest.raises(ValueError, match="multiples of 32"):
        kernels.pack(w[:, :48], b)
    with pytest.raises(ValueError, match="layer norm"):
        kernels.pack(w, b, torch.nn.LayerNorm(64))


def _bert_layer(hidden: int, inter: int, heads: int):
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=hidden, intermediate_size=inter, num_attention_heads=heads,
                                     num_hidden_layers=1, vocab_size=100)
    return transformers.BertModel(config).encoder.layer[0].to(torch.bfloat16).eval()


def test_fused_layers_use_the_kernel_with_oneDNN_results(kernels):
    from rerankit.engine.fused_encoder import Packing

    layer = FusedLayer(_bert_layer(64, 128, 2), heads=2)
    assert set(layer.packed) == {"qkv", "att_out", "inter", "out"}
    mask = torch.zeros(3, 40, dtype=torch.long)
    for row, n in enumerate((40, 9, 23)):
        mask[row, :n] = 1
    packing = Packing(mask, torch.bfloat16, None, None)
    x = torch.randn(len(packing.gather), 64).to(torch.bfloat16)
    with torch.inference_mode():
        got = layer(x, packing)
        layer.packed.clear()  # the same layer through oneDNN
        want = layer(x, packing)
    assert _relative(got, want) < 0.01


def test_shapes_off_the_tiles_keep_oneDNN():
    layer = FusedLayer(_bert_layer(48, 96, 2), heads=2)  # 3 * 48 = 144: not a multiple of 32
    assert layer.packed == {}
