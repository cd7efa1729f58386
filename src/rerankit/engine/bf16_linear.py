"""bf16 linear layers on AMX tiles for the fused encoder (``rerankit-amx``: ``kernels/bf16_linear.c``, loaded by ``native``).

The fused layers' four matmuls went through oneDNN (``mkldnn._linear_pointwise``), which splits
the rows between threads in equal halves: on a VM whose cores do not run at one speed, the faster
core waits for the slower at every matmul, and the fused epilogue (bias, GELU, residual) runs
after the tile products instead of beside them. This kernel takes blocks of 32 rows as threads
free up, and runs each block's epilogue a few rows at a time between the tile products of the
next. Same arithmetic: bf16 inputs, fp32 sums and epilogue (GELU in erf form, to 3e-7), bf16
outputs. Two more passes over memory are saved:

- a projection followed by a residual add and a layer norm (BERT's attention output and
  feed-forward output) normalizes each block of rows in the kernel, from the fp32 sums, instead of
  writing them in bf16 for torch's layer norm to read back (one rounding instead of two);
- outputs larger than ``STREAM_BYTES`` are written with non-temporal stores: they do not fit the
  caches anyway, and a plain store first reads every line it writes.

``bf16_kernels()`` returns ``None`` where the kernel cannot be built (see ``native``) or where it
differs from a torch reference on a random self-test at load; the layers then keep oneDNN.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from .native import load_checked_kernel

STREAM_BYTES = 4 << 20  # outputs above this go past the caches (two cores' L2 here: 4 MiB)


class Bf16Kernels:
    """Typed access to ``kernels/bf16_linear.c``."""

    def __init__(self, library: ctypes.CDLL) -> None:
        p, i, c = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        self._pack = library.rk_pack_bf16_weight
        self._pack.argtypes, self._pack.restype = [p, p, i, i], None
        self._linear = library.rk_bf16_linear
        self._linear.argtypes = [p, i, i, i, p, p, i, p, i, c, p, i, p, p, ctypes.c_float, c, c]
        self._linear.restype = c

    def pack(self, weight: torch.Tensor, bias: torch.Tensor | None,
             norm: torch.nn.LayerNorm | None = None) -> PackedLinear:
        """A linear layer's ``[N, K]`` weight in the tile layout (bf16), its bias in fp32, and the
        layer norm over its outputs (after any residual add) when ``norm`` is given."""
        out_features, in_features = weight.shape
        if not supports_shape(out_features, in_features):
            raise ValueError(f"a [{out_features}, {in_features}] weight does not fit the tiles (both multiples of 32)")
        w = weight.detach().to(torch.bfloat16).contiguous()
        packed = torch.empty_like(w)
        self._pack(w.data_ptr(), packed.data_ptr(), out_features, in_features)
        fp32 = lambda t: t.detach().float().contiguous() if t is not None else None  # noqa: E731
        if norm is not None and (tuple(norm.normalized_shape) != (out_features,) or norm.weight is None
                                 or norm.bias is None):
            raise ValueError(f"the layer norm must have a weight and a bias over the {out_features} outputs")
        return PackedLinear(packed, fp32(bias), out_features, in_features,
                            (fp32(norm.weight), fp32(norm.bias), float(norm.eps)) if norm is not None else None)

    def linear(self, x: torch.Tensor, layer: PackedLinear, residual: torch.Tensor | None = None,
               gelu: bool = False) -> torch.Tensor:
        """``bf16(act(x @ w.T + bias) + residual)`` for bf16 ``x [M, K]``, ``M`` a multiple of 16, then
        ``layer``'s layer norm if it has one."""
        if x.dtype != torch.bfloat16 or x.dim() != 2 or x.stride(1) != 1 or x.shape[1] != layer.in_features:
            raise ValueError(f"x must be a row-major bf16 [rows, {layer.in_features}] matrix")
        rows = x.shape[0]
        if rows % 16:
            raise ValueError(f"the row count must be a multiple of 16, got {rows}")
        if residual is not None and (residual.dtype != torch.bfloat16 or residual.stride(1) != 1
                                     or tuple(residual.shape) != (rows, layer.out_features)):
            raise ValueError(f"residual must be a row-major bf16 [{rows}, {layer.out_features}] matrix")
        out = torch.empty(rows, layer.out_features, dtype=torch.bfloat16)
        status = self._linear(
            x.data_ptr(), x.stride(0), rows, layer.in_features, layer.packed.data_ptr(),
            layer.bias.data_ptr() if layer.bias is not None else None, layer.out_features,
            residual.data_ptr() if residual is not None else None, residual.stride(0) if residual is not None else 0,
            int(gelu), out.data_ptr(), layer.out_features, *layer.norm_pointers(),
            int(out.numel() * out.element_size() > STREAM_BYTES), torch.get_num_threads())
        if status != 0:
            raise RuntimeError(f"bf16 linear kernel failed (status {status})")
        return out


class PackedLinear:
    """One linear layer for ``Bf16Kernels.linear``: tile-layout bf16 weight, fp32 bias (or ``None``)
    and the layer norm that follows it, as fp32 ``(weight, bias, eps)`` (or ``None``)."""

    def __init__(self, packed: torch.Tensor, bias: torch.Tensor | None, out_features: int, in_features: int,
                 norm: tuple[torch.Tensor, torch.Tensor, float] | None = None) -> None:
        self.packed, self.bias, self.norm = packed, bias, norm
        self.out_features, self.in_features = out_features, in_features

    def norm_pointers(self) -> tuple[int | None, int | None, float]:
        """The layer norm's weight and bias addresses and eps, as the kernel takes them."""
        if self.norm is None:
            return None, None, 0.0
        weight, bias, eps = self.norm
        return weight.data_ptr(), bias.data_ptr(), eps


def supports_shape(out_features: int, in_features: int) -> bool:
    """The kernel's tiling: both sizes multiples of 32."""
    return out_features % 32 == 0 and in_features % 32 == 0


def _self_test(kernels: Bf16Kernels) -> bool:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 96, generator=generator).to(torch.bfloat16)
    weight, bias = torch.randn(64, 96, generator=generator) * 0.1, torch.randn(64, generator=generator)
    residual = torch.randn(48, 64, generator=generator).to(torch.bfloat16)
    layer = kernels.pack(weight.to(torch.bfloat16), bias)
    exact = x.float() @ weight.to(torch.bfloat16).float().T + bias
    norm = torch.nn.LayerNorm(64)
    torch.nn.init.normal_(norm.weight, generator=generator)
    torch.nn.init.normal_(norm.bias, generator=generator)
    normed = kernels.pack(weight.to(torch.bfloat16), bias, norm)
    close = lambda a, b: float((a.float() - b).norm() / b.norm()) < 0.01  # noqa: E731 - bf16 output rounding
    with torch.no_grad():
        want_normed = norm(exact + residual.float())
    return (close(kernels.linear(x, layer), exact)
            and close(kernels.linear(x, layer, gelu=True), torch.nn.functional.gelu(exact))
            and close(kernels.linear(x, layer, residual=residual), exact + residual.float())
            and close(kernels.linear(x, normed, residual=residual), want_normed))


@functools.cache
def bf16_kernels() -> Bf16Kernels | None:
    """The compiled kernel, or ``None`` where it does not apply (see the module docstring)."""
    return load_checked_kernel("bf16_linear", Bf16Kernels, _self_test)
