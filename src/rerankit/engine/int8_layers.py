"""int8 linear layers on AMX tiles for the fused encoder: the ``torch-int8`` backend.

Three of each fused layer's four matmuls (attention output, feed-forward in and out) run as int8
products with exact int32 sums (``kernels/int8_linear.c``); the QKV projection stays bf16. This
was chosen on DL21, the development set: with all four in int8, 6 of its 53 queries kept fewer
than 9 of the fp32 top 10 in a prototype run; with QKV in bf16, none
(``benchmarks/int8_ranking.py --collection trec-dl21-passage``: min 9, mean 9.57); with the
attention output or the feed-forward output in bf16 instead, 4.

- weights: symmetric int8 per output channel, quantized once at load;
- activations: symmetric int8 per row (token), quantized on the fly. One scale per tensor, which
  oneDNN's int8 linear takes, loses the ranking (``benchmarks/int8_ranking.py``);
- channel balancing (SmoothQuant, strength ``ALPHA``) for the feed-forward input, which comes out
  of a layer norm whose few outlier channels would otherwise set every row's scale: input channel ``j`` is
  divided by ``s_j = max|x_j|^ALPHA / max|w_j|^(1 - ALPHA)`` while quantizing, and the weights'
  column ``j`` multiplied by it, so the product is unchanged. ``max|x_j|`` comes from a short
  calibration run at load (``calibrate``);
- epilogues in fp32: bias, GELU (erf form, to 3e-7), the residual add; the feed-forward's inner activations
  go straight from the first matmul's epilogue to uint8 (GELU's outputs are >= -0.17, so
  ``x + GELU_FLOOR`` per row over 256 steps, twice as fine as symmetric int8; the second matmul
  multiplies uint8 by int8 and takes ``GELU_FLOOR * sum_k w[n, k]`` off its bias), without a bf16 copy.
  On DL21 this raised the score correlation with fp32 from 0.9989 to 0.9993 and left no query
  below 9 of the fp32 top 10 (symmetric int8: 4 in the same code otherwise).

Attention and layer norms stay as in ``fused_encoder`` (bf16 with fp32 softmax and statistics).
``int8_kernels()`` is ``None`` without AMX-INT8, Linux or the ``rerankit-amx`` package (see ``native``).
"""

from __future__ import annotations

import ctypes
import functools

import torch

from .fused_encoder import FusedLayer, Packing
from .native import load_checked_kernel

ALPHA = 0.5
GELU_FLOOR = 0.17  # GELU(x) >= -0.16997: its outputs + 0.17 are quantized as uint8, 256 steps per row


class Int8Kernels:
    """Typed access to ``kernels/int8_linear.c``."""

    def __init__(self, library: ctypes.CDLL) -> None:
        p, i, c = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        self._pack = library.rk_pack_int8_weight
        self._pack.argtypes, self._pack.restype = [p, p, i, i], None
        self._quantize = library.rk_quantize_rows
        self._quantize.argtypes, self._quantize.restype = [p, i, i, i, p, p, p, c], None
        self._linear = library.rk_int8_linear
        self._linear.argtypes = [p, p, i, i, p, p, p, i, p, i, c, p, i, p, p, c, c, ctypes.c_float]
        self._linear.restype = c

    def pack(self, weight: torch.Tensor) -> torch.Tensor:
        """int8 ``[N, K]`` weight to the tile layout the products read."""
        weight = weight.contiguous()
        packed = torch.empty_like(weight)
        self._pack(weight.data_ptr(), packed.data_ptr(), weight.shape[0], weight.shape[1])
        return packed

    def quantize(self, x: torch.Tensor, channel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row int8 of bf16 ``x * channel``: ``(q [M, K] int8, scales [M] fp32)``."""
        if x.dtype != torch.bfloat16 or x.dim() != 2 or x.stride(1) != 1:
            raise ValueError("x must be a row-major bf16 matrix")
        rows, width = x.shape
        if width % 16 or (channel is not None and channel.numel() != width):
            raise ValueError("x's width must be a multiple of 16, with one channel factor per column")
        q = torch.empty(rows, width, dtype=torch.int8)
        scales = torch.empty(rows, dtype=torch.float32)
        self._quantize(x.data_ptr(), rows, width, x.stride(0), channel.data_ptr() if channel is not None else None,
                       q.data_ptr(), scales.data_ptr(), torch.get_num_threads())
        return q, scales

    def linear(self, q: torch.Tensor, scales: torch.Tensor, layer: Int8Linear, residual: torch.Tensor | None = None,
               gelu: bool = False, quantize_output: bool = False, output_offset: float = 0.0):
        """``layer`` applied to quantized rows: bf16 ``[M, N]``, or ``(q, scales)`` of it.

        ``q`` is uint8 of ``x + layer.input_offset`` where that is > 0 (as ``output_offset`` makes
        them), else int8; ``output_offset > 0``: the output rows are quantized that way, for outputs
        that never fall below ``-output_offset`` (GELU's: ``GELU_FLOOR``)."""
        rows = q.shape[0]
        want = torch.uint8 if layer.input_offset > 0 else torch.int8
        if q.dtype != want or not q.is_contiguous() or q.shape[1] != layer.in_features or scales.numel() != rows:
            raise ValueError(f"expected contiguous {want} rows of width {layer.in_features} and one scale per row")
        if residual is not None and (residual.dtype != torch.bfloat16 or residual.stride(1) != 1
                                     or tuple(residual.shape) != (rows, layer.out_features)):
            raise ValueError(f"residual must be a row-major bf16 [{rows}, {layer.out_features}] matrix")
        out = q_out = s_out = None
        if quantize_output:
            q_out = torch.empty(rows, layer.out_features, dtype=torch.uint8 if output_offset > 0 else torch.int8)
            s_out = torch.empty(rows, dtype=torch.float32)
        else:
            out = torch.empty(rows, layer.out_features, dtype=torch.bfloat16)
        status = self._linear(
            q.data_ptr(), scales.data_ptr(), rows, layer.in_features, layer.packed.data_ptr(),
            layer.weight_scales.data_ptr(), layer.bias.data_ptr(), layer.out_features,
            residual.data_ptr() if residual is not None else None, residual.stride(0) if residual is not None else 0,
            int(gelu), out.data_ptr() if out is not None else None, layer.out_features,
            q_out.data_ptr() if q_out is not None else None, s_out.data_ptr() if s_out is not None else None,
            torch.get_num_threads(), int(layer.input_offset > 0), float(output_offset))
        if status != 0:
            raise RuntimeError(f"int8 linear kernel failed (status {status})")
        return (q_out, s_out) if quantize_output else out


class Int8Linear:
    """One linear layer's int8 weights (per output channel), fp32 bias and channel balancing.

    ``input_offset > 0``: its inputs come as uint8 of ``x + input_offset`` (``GELU_FLOOR`` after
    GELU), and the bias is lowered by ``input_offset * sum_k w[n, k]`` once, here."""

    def __init__(self, kernels: Int8Kernels, weight: torch.Tensor, bias: torch.Tensor,
                 smooth: torch.Tensor | None = None, input_offset: float = 0.0) -> None:
        w = weight.detach().float()
        if smooth is not None:
            w = w * smooth[None, :]
        self.out_features, self.in_features = w.shape
        self.weight_scales = (w.abs().amax(1) / 127).clamp(min=1e-12).contiguous()
        quantized = torch.round(w / self.weight_scales[:, None]).clamp(-127, 127)
        self.packed = kernels.pack(quantized.to(torch.int8))
        self.input_offset = input_offset
        # uint8 inputs stand for x + input_offset: the products carry input_offset * sum_k w[n, k] extra
        self.bias = (bias.detach().float() - input_offset * (quantized.sum(1) * self.weight_scales)).contiguous()
        self.channel = (1.0 / smooth).contiguous() if smooth is not None else None  # applied while quantizing


def _balance(act_max: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w_max = weight.detach().float().abs().amax(0).clamp(min=1e-5)
    return (act_max.clamp(min=1e-5) ** ALPHA / w_max ** (1 - ALPHA)).clamp(min=1e-5)


def shapes_supported(layer: FusedLayer) -> bool:
    """The kernel's tiling: inputs a multiple of 64 wide, outputs a multiple of 32."""
    return all(w.shape[1] % 64 == 0 and w.shape[0] % 32 == 0
               for w in (layer.att_out.weight, layer.inter.weight, layer.out.weight))


class Int8FusedLayer(torch.nn.Module):
    """A ``FusedLayer`` with int8 matmuls after QKV. Until ``finish_calibration()`` it runs the bf16
    layer and records the per-channel maxima of its feed-forward input."""

    def __init__(self, layer: FusedLayer, kernels: Int8Kernels) -> None:
        super().__init__()
        self.layer, self.kernels = layer, kernels
        self.maxima = torch.zeros(layer.inter.weight.shape[1])
        self.linears: dict[str, Int8Linear] | None = None

    def finish_calibration(self) -> None:
        layer, k = self.layer, self.kernels
        inter_smooth = _balance(self.maxima, layer.inter.weight) if self.maxima.max() > 0 else None
        self.linears = {
            "att_out": Int8Linear(k, layer.att_out.weight, layer.att_out.bias),
            "inter": Int8Linear(k, layer.inter.weight, layer.inter.bias, inter_smooth),
            "out": Int8Linear(k, layer.out.weight, layer.out.bias, input_offset=GELU_FLOOR),
        }
        for name in self.linears:  # their bf16 tile copies served calibration only; QKV's stays
            layer.packed.pop(name, None)

    def forward(self, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        layer = self.layer
        if self.linears is None:  # calibrating: the bf16 layer, recording the feed-forward input
            x = layer.attention_block(x, packing)
            self.maxima = torch.maximum(self.maxima, x.float().abs().amax(0))
            return layer.feed_forward(x)
        k, lin = self.kernels, self.linears
        ctx = layer.context(x, packing)
        x = layer.att_norm(k.linear(*k.quantize(ctx), lin["att_out"], residual=x))
        h = k.linear(*k.quantize(x, lin["inter"].channel), lin["inter"], gelu=True, quantize_output=True,
                     output_offset=GELU_FLOOR)
        return layer.out_norm(k.linear(*h, lin["out"], residual=x))


def _self_test(kernels: Int8Kernels) -> bool:
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(48, 128, generator=generator)).to(torch.bfloat16)
    weight, bias = torch.randn(64, 128, generator=generator) * 0.1, torch.randn(64, generator=generator)
    residual = torch.randn(48, 64, generator=generator).to(torch.bfloat16)
    layer = Int8Linear(kernels, weight, bias)
    want = torch.nn.functional.gelu(x.float() @ weight.T + bias)
    got = kernels.linear(*kernels.quantize(x), layer, gelu=True).float()
    q, s = kernels.linear(*kernels.quantize(x), layer, gelu=True, quantize_output=True)
    with_residual = kernels.linear(*kernels.quantize(x), layer, residual=residual).float()
    close = lambda a, b: float((a - b).norm() / b.norm()) < 0.03  # noqa: E731 - int8 rounding: about 1%
    return (close(got, want) and close(q.float() * s[:, None], want)
            and close(with_residual, x.float() @ weight.T + bias + residual.float()))


@functools.cache
def int8_kernels() -> Int8Kernels | None:
    """The compiled int8 kernels, or ``None`` where they do not apply (see the module docstring)."""
    return load_checked_kernel("int8_linear", Int8Kernels, _self_test, needs_int8=True)


def quantize_encoder(encoder, calibration: list[dict[str, torch.Tensor]]) -> bool:
    """Turn a ``FusedEncoder``'s layers into ``Int8FusedLayer`` s, balanced on ``calibration``
    batches (``input_ids``, ``attention_mask``, ...). ``False`` (nothing changed) where the kernels
    or the shapes do not allow it."""
    kernels = int8_kernels()
    if kernels is None or not all(isinstance(l, FusedLayer) and shapes_supported(l) for l in encoder.layers):
        return False
    encoder.layers = torch.nn.ModuleList(Int8FusedLayer(layer, kernels) for layer in encoder.layers)
    with torch.inference_mode():
        for batch in calibration:
            encoder(**batch)
    for layer in encoder.layers:
        layer.finish_calibration()
    return True
