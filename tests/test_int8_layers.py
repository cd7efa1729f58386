"""int8 AMX linear layers: products match fp32 within int8 rounding, channel balancing leaves the
product unchanged, the fused int8 encoder keeps a tiny model's ranking, and without the kernels
``torch-int8`` is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rerankit.engine import int8_layers
from rerankit.engine.int8_layers import Int8Linear, int8_kernels
from engine_helpers import kernel_or_skip


@pytest.fixture
def kernels():
    return kernel_or_skip(int8_kernels(), "int8 kernels", "AMX-INT8")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _inputs(rows=96, width=128, out=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=g)
    x[:, 3] *= 30  # an outlier channel, as layer-norm outputs have
    return (x.to(torch.bfloat16), torch.randn(out, width, generator=g) * 0.1, torch.randn(out, generator=g),
            torch.randn(rows, out, generator=g).to(torch.bfloat16))


def test_gelu_outputs_quantized_as_uint8_feed_the_next_product(kernels):
    x, w, b, _ = _inputs(width=128, out=128)
    first = Int8Linear(kernels, w, b)
    hidden = torch.nn.functional.gelu(x.float() @ w.T + b)
    exact = hidden @ (w.T * 0.5).T + b
    floor = int8_layers.GELU_FLOOR
    errors = {}
    for offset in (0.0, floor):
        second = Int8Linear(kernels, w.T.contiguous() * 0.5, b, input_offset=offset)
        q, scales = kernels.linear(*kernels.quantize(x), first, gelu=True, quantize_output=True, output_offset=offset)
        assert q.dtype == (torch.uint8 if offset else torch.int8)
        errors[offset] = _relative(q.float() * scales[:, None] - offset, hidden)
        assert _relative(kernels.linear(q, scales, second), exact) < 0.03
    assert errors[floor] < errors[0.0]  # 256 steps over [-0.17, max] instead of 128 over [0, max]
    with pytest.raises(ValueError, match="uint8"):  # signed rows where unsigned are expected
        kernels.linear(*kernels.quantize(x), second)


def test_products_match_fp32_within_int8_rounding(kernels):
    x, w, b, residual = _inputs()
    layer = Int8Linear(kernels, w, b)
    exact = x.float() @ w.T + b
    assert _relative(kernels.linear(*kernels.quantize(x), layer), exact) < 0.03
    got = kernels.linear(*kernels.quantize(x), layer, residual=residual)
    assert _relative(got, exact + residual.float()) < 0.03
    gelu = torch.nn.functional.gelu(exact)
    assert _relative(kernels.linear(*kernels.quantize(x), layer, gelu=True), gelu) < 0.03
    q, s = kernels.linear(*kernels.quantize(x), layer, gelu=True, quantize_output=True)
    assert q.dtype == torch.int8 and s.shape == (x.shape[0],)
    assert _relative(q.float() * s[:, None], gelu) < 0.03


def test_channel_balancing_keeps_the_product_and_lowers_the_error(kernels):
    x, w, b, _ = _inputs(seed=1)
    exact = x.float() @ w.T + b
    plain = Int8Linear(kernels, w, b)
    smooth = int8_layers._balance(x.float().abs().amax(0), w)
    balanced = Int8Linear(kernels, w, b, smooth)
    plain_error = _relative(kernels.linear(*kernels.quantize(x, plain.channel), plain), exact)
    balanced_error = _relative(kernels.linear(*kernels.quantize(x, balanced.channel), balanced), exact)
    assert balanced_error < 0.03
    assert balanced_error < plain_error  # the outlier channel no longer sets every row's scale


def test_kernels_refuse_what_they_cannot_do(kernels):
    x, w, b, _ = _inputs()
    with pytest.raises(ValueError):
        kernels.quantize(x.float())
    odd = Int8Linear(kernels, torch.randn(40, 128), torch.zeros(40))  # 40 outputs: not a multiple of 32
    with pytest.raises(RuntimeError):
        kernels.linear(*kernels.quantize(x), odd)
    layer = Int8Linear(kernels, w, b)
    q, s = kernels.quantize(x)
    with pytest.raises(ValueError):  # fewer scales than rows
        kernels.linear(q, s[:10], layer)
    with pytest.raises(ValueError):  # a residual of the wrong shape
        kernels.linear(q, s, layer, residual=torch.zeros(5, 5, dtype=torch.bfloat16))


def test_int8_backend_keeps_a_tiny_models_ranking(kernels, tmp_path):
    from engine_helpers import DOCS, QUERIES, assert_same_ranking, build_tiny_cross_encoder

    from rerankit.rerankers.cross_encoder import CrossEncoderReranker

    folder = build_tiny_cross_encoder(tmp_path / "tiny")
    reference = CrossEncoderReranker(folder, backend="torch-fp32", activation="none")
    engine = CrossEncoderReranker(folder, backend="torch-int8", activation="none")
    layers = engine.runner.module.encoder.layers
    assert all(isinstance(layer, int8_layers.Int8FusedLayer) and layer.linears for layer in layers)
    assert all(float(layer.maxima.max()) > 0 for layer in layers)  # calibration ran
    for query in QUERIES:
        ref, got = reference.score(query, DOCS), engine.score(query, DOCS)
        assert np.corrcoef(ref, got)[0, 1] > 0.99
        assert_same_ranking(ref, got, 0.08)


def test_int8_backend_is_a_clear_error_without_the_kernels(monkeypatch, tmp_path):
    from engine_helpers import build_tiny_cross_encoder

    from rerankit.rerankers.cross_encoder import CrossEncoderReranker
    from rerankit.errors import BackendUnavailableError

    monkeypatch.setattr(int8_layers, "int8_kernels", lambda: None)
    folder = build_tiny_cross_encoder(tmp_path / "tiny")
    with pytest.raises(BackendUnavailableError):
        CrossEncoderReranker(folder, backend="torch-int8")
