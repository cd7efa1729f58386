"""A fused bf16 forward for BERT-family encoders (BERT, MiniLM, ELECTRA, RoBERTa, XLM-R, MPNet) on CPU.

Same weights and the same arithmetic as the Hugging Face layers, with fewer passes over memory:

- query, key and value projections are one matmul (weights concatenated at load);
- the feed-forward GELU is fused into its matmul, and each residual add and the layer norm after
  it into the matmul that precedes them: through rerankit's AMX kernel (``bf16_linear``) where it
  applies, else oneDNN's ``mkldnn._linear_pointwise`` (AMX or AVX512-BF16 kernels) and torch's
  layer norm;
- the matmuls run on the real tokens only, packed into ``[rows, hidden]`` with ``rows`` rounded up
  to a multiple of ``ROW_BUCKET`` (16 for small batches): padding costs no matmul work, and oneDNN
  sees few distinct shapes (it builds a kernel per shape, which costs more than the matmul the
  first time);
- attention runs on the packed rows through the AMX kernel of ``native_attention`` where the CPU
  and the ``rerankit-amx`` package allow (for batches of many sequences, together with the QKV and output
  projections in one kernel per sequence: ``attention_block``); otherwise it is
  ``scaled_dot_product_attention`` on the padded ``[batch, heads, length, dim]`` layout with an
  additive padding mask. MPNet's relative-position bias is computed once per batch by the model's
  own encoder and shared by every layer, as in Hugging Face.

Embeddings and the classification head are the model's own modules, so any head (BERT's pooler,
RoBERTa's and ELECTRA's classifier) works unchanged. ``fused_encoder_for`` returns ``None`` for a
model it does not cover (another architecture, a non-GELU activation, BERT's relative position
embeddings, no oneDNN, or a CPU whose oneDNN has no bf16 inner product, as on AVX2-only CPUs:
``bf16_inner_product_available``), and the caller keeps the plain module.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import torch
import torch.nn.functional as F

from .attention_block import attention_block_kernel
from .bf16_linear import PackedLinear, bf16_kernels, supports_shape
from .native_attention import PackedAttention, packed_attention_kernel

# (model_type, attribute of the base model inside *ForSequenceClassification)
SUPPORTED = {"bert": "bert", "electra": "electra", "roberta": "roberta", "xlm-roberta": "roberta", "mpnet": "mpnet"}
GELU_NAMES = ("gelu",)
ROW_BUCKET = 256  # row granularity of large batches
SMALL_ROW_BUCKET = 16  # ... and of batches with at most ROW_BUCKET real tokens (a single query, say)


class FusedLayer(torch.nn.Module):
    """One transformer layer (post-LayerNorm, as BERT) with fused projections."""

    def __init__(self, layer, heads: int) -> None:
        super().__init__()
        att = layer.attention
        self.heads = heads
        if hasattr(att, "attn"):  # MPNet: attn.{q,k,v,o}, the norm on the attention module itself
            projections, self.att_out, self.att_norm = (att.attn.q, att.attn.k, att.attn.v), att.attn.o, att.LayerNorm
        else:  # BERT and its kin: self.{query,key,value}, output.{dense,LayerNorm}
            projections = (att.self.query, att.self.key, att.self.value)
            self.att_out, self.att_norm = att.output.dense, att.output.LayerNorm
        self.qkv_weight = torch.nn.Parameter(torch.cat([p.weight for p in projections]).detach(), requires_grad=False)
        self.qkv_bias = torch.nn.Parameter(torch.cat([p.bias for p in projections]).detach(), requires_grad=False)
        self.inter = layer.intermediate.dense
        self.out = layer.output.dense
        self.out_norm = layer.output.LayerNorm
        self.kernels = bf16_kernels() if self.qkv_weight.dtype == torch.bfloat16 else None
        # each matmul's weight, bias and the layer norm that follows it (after the residual add)
        self.norms = {"att_out": self.att_norm, "out": self.out_norm}
        weights = {"qkv": (self.qkv_weight, self.qkv_bias), "att_out": (self.att_out.weight, self.att_out.bias),
                   "inter": (self.inter.weight, self.inter.bias), "out": (self.out.weight, self.out.bias)}
        if self.kernels is not None and not (all(supports_shape(*w.shape) for w, _ in weights.values())
                                             and all(n.weight is not None and n.bias is not None
                                                     for n in self.norms.values())):
            self.kernels = None
        # the four matmuls in the kernel's tile layout, norms included (empty: oneDNN runs them all)
        self.packed: dict[str, PackedLinear] = (
            {name: self.kernels.pack(w, b, self.norms.get(name)) for name, (w, b) in weights.items()}
            if self.kernels is not None else {})
        # QKV, attention and the output projection in one kernel, for batches of many sequences
        self.block = attention_block_kernel() if self.packed else None

    def forward(self, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        """``x``: packed ``[rows_padded, hidden]`` (see ``Packing``)."""
        return self.feed_forward(self.attention_block(x, packing))

    def project(self, name: str, x: torch.Tensor, residual: torch.Tensor | None = None,
                gelu: bool = False) -> torch.Tensor:
        """Matmul ``name`` (qkv, att_out, inter, out) of ``x`` plus bias, then GELU or ``+ residual``,
        then the layer norm that follows att_out and out."""
        packed = self.packed.get(name)
        if packed is not None:
            return self.kernels.linear(x, packed, residual=residual, gelu=gelu)
        weight, bias = (self.qkv_weight, self.qkv_bias) if name == "qkv" else (
            getattr(self, name).weight, getattr(self, name).bias)
        if residual is not None:
            y = torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
        else:
            y = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu" if gelu else "none", [],
                                                   "none" if gelu else "")
        norm = self.norms.get(name)
        return norm(y) if norm is not None else y

    def context(self, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        """Attention's output before its projection: the QKV matmul, then attention over the packed rows."""
        return packing.attention(self.project("qkv", x), self.heads)

    def attention_block(self, x: torch.Tensor, packing: Packing) -> torch.Tensor:
        """Attention, its output projection plus the residual, and the layer norm."""
        # (torch-int8 drops the packed att_out: its own int8 projection follows the context)
        if (self.block is not None and packing.kernel is not None and "att_out" in self.packed
                and packing.batch >= 4 * torch.get_num_threads()):
            return self.block(x, packing.offsets, self.heads, packing.length, packing.bias, self.packed["qkv"],
                              self.packed["att_out"])
        return self.project("att_out", self.context(x, packing), residual=x)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The GELU feed-forward plus the residual, and the layer norm."""
        return self.project("out", self.project("inter", x, gelu=True), residual=x)


class Packing:
    """Where a batch's real tokens sit, and attention over them.

    ``rows``: the real tokens' positions in the ``[batch * length]`` grid; ``gather``: the same,
    extended to ``rows_padded`` (the extra rows repeat a real one: their values are never read
    back). With the native kernel (``native_attention``), attention reads the packed QKV rows
    directly (``offsets``: each sequence's first row). Otherwise they are scattered into a zeroed
    ``[batch * length, 3 * hidden]`` grid (whose padding stays zero across layers) for SDPA with
    an additive mask, and gathered back."""

    def __init__(self, attention_mask: torch.Tensor, dtype: torch.dtype, bias: torch.Tensor | None,
                 kernel: PackedAttention | None) -> None:
        b, length = attention_mask.shape
        self.batch, self.length, self.kernel = b, length, kernel
        self.rows = attention_mask.reshape(-1).nonzero().squeeze(1)
        real = self.rows.shape[0]
        extra = -real % (SMALL_ROW_BUCKET if real <= ROW_BUCKET else ROW_BUCKET)
        self.gather = torch.cat([self.rows, self.rows[:1].expand(extra)]) if extra else self.rows
        if kernel is not None:  # MPNet's bias [1, heads, length, length] as the kernel reads it
            self.bias = None if bias is None else bias[0].float().contiguous()
            lengths = attention_mask.sum(1)
            self.offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        else:
            self.grid: torch.Tensor | None = None
            mask = ((1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min).to(dtype)
            self.mask = mask if bias is None else mask + bias.to(dtype)

    def attention(self, qkv: torch.Tensor, heads: int) -> torch.Tensor:
        """Context ``[rows_padded, hidden]`` from the packed QKV projection ``[rows_padded, 3 * hidden]``."""
        if self.kernel is not None:
            return self.kernel(qkv, self.offsets, heads, self.length, self.bias)
        if self.grid is None:
            self.grid = qkv.new_zeros(self.batch * self.length, qkv.shape[1])
        hidden = qkv.shape[1] // 3
        self.grid[self.rows] = qkv[: self.rows.shape[0]]
        q, k, v = self.grid.view(self.batch, self.length, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)
        return ctx.transpose(1, 2).reshape(self.batch * self.length, hidden).index_select(0, self.gather)


class FusedEncoder(torch.nn.Module):
    """Embeddings and fused layers of a BERT-family base model: ids to packed hidden states."""

    def __init__(self, base, heads: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.embeddings = base.embeddings
        self.embeddings_project = getattr(base, "embeddings_project", None)  # ELECTRA-small style
        self.dtype = dtype
        self.layers = torch.nn.ModuleList(FusedLayer(layer, heads) for layer in base.encoder.layer)
        # MPNet adds a learned relative-position bias to every layer's attention scores
        self.relative = base.encoder if hasattr(base.encoder, "relative_attention_bias") else None
        self.kernel = packed_attention_kernel() if dtype == torch.bfloat16 else None

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hidden, rows)``: the real tokens' states ``[rows, hidden]`` (right padding assumed) and
        their positions in the ``[batch * length]`` grid. Rows follow each sequence in order."""
        b, length = input_ids.shape
        kwargs = {"input_ids": input_ids}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        x = self.embeddings(**kwargs)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        bias = self.relative.compute_position_bias(x[:1]) if self.relative is not None else None
        packing = Packing(attention_mask, self.dtype, bias, self.kernel)
        packed = x.reshape(b * length, -1).index_select(0, packing.gather).to(self.dtype)
        for layer in self.layers:
            packed = layer(packed, packing)
        return packed[: packing.rows.shape[0]], packing.rows


def _first_rows(attention_mask: torch.Tensor) -> torch.Tensor:
    lengths = attention_mask.sum(1)
    return torch.cumsum(lengths, 0) - lengths


class FusedEncoderScores(torch.nn.Module):
    """``input_ids, attention_mask[, token_type_ids] -> logits`` (float32) through the fused layers.

    The classification head (pooler and classifier) runs in float32 on a copy of its weights: a
    bf16 logit keeps 8 bits, which near a logit of 2 rounds scores to steps of 0.016 and ties
    candidates whose fp32 scores differ; the head's cost is nothing next to the layers'."""

    def __init__(self, model, base_attr: str) -> None:
        super().__init__()
        self.model = model
        base = getattr(model, base_attr)
        self.encoder = FusedEncoder(base, model.config.num_attention_heads, next(model.parameters()).dtype)
        pooler = getattr(base, "pooler", None)
        self.pooler = copy.deepcopy(pooler).float() if pooler is not None else None
        self.classifier = copy.deepcopy(model.classifier).float()

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden, _ = self.encoder(input_ids, attention_mask, token_type_ids)
        first = hidden[_first_rows(attention_mask)][:, None, :].float()  # [batch, 1, hidden]: the heads read token 0
        if self.pooler is not None:  # BERT: tanh(dense(CLS)), then the linear classifier
            return self.classifier(self.pooler(first))
        return self.classifier(first)  # RoBERTa / ELECTRA heads read the first token themselves


class FusedMeanPooler(torch.nn.Module):
    """``input_ids, attention_mask[, token_type_ids] -> mean of the real tokens' states`` (float32)."""

    def __init__(self, base, heads: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.encoder = FusedEncoder(base, heads, dtype)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden, _ = self.encoder(input_ids, attention_mask, token_type_ids)
        lengths = attention_mask.sum(1)
        owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        sums = torch.zeros(len(lengths), hidden.shape[1], dtype=torch.float32).index_add_(0, owner, hidden.float())
        return sums / lengths[:, None].clamp(min=1)


@lru_cache(maxsize=1)
def bf16_inner_product_available() -> bool:
    """Whether oneDNN builds a bf16 inner product on this CPU (it refuses one without AVX512 or AMX)."""
    if not torch.backends.mkldnn.is_available():
        return False
    x, weight, bias = (torch.ones(shape, dtype=torch.bfloat16) for shape in ((2, 32), (16, 32), (16,)))
    try:  # the call ``FusedLayer.project`` makes
        torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    except RuntimeError:
        return False
    return True


def supports_fusion(config) -> bool:
    """Whether ``config`` describes a model the fused layers reproduce (and oneDNN runs bf16 here)."""
    if not bf16_inner_product_available() or config.model_type not in SUPPORTED:
        return False
    if getattr(config, "hidden_act", None) not in GELU_NAMES:
        return False
    return getattr(config, "position_embedding_type", "absolute") in (None, "absolute")


def fused_encoder_for(module) -> FusedEncoderScores | None:
    """The fused module for an engine ``EncoderScores`` module, or ``None`` where it does not apply."""
    model = getattr(module, "model", None)
    config = getattr(model, "config", None)
    if config is None or not supports_fusion(config):
        return None
    base_attr = SUPPORTED[config.model_type]
    if not hasattr(model, base_attr) or not hasattr(model, "classifier"):
        return None
    if config.model_type == "bert" and getattr(getattr(model, base_attr), "pooler", None) is None:
        return None
    return FusedEncoderScores(model, base_attr).eval()
