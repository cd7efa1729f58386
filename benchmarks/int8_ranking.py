"""Does int8 keep the ranking? The engine's int8 choices against fp32 scores on DL19.

int8 AMX tiles run twice the bf16 rate, but int8 needs the activations quantized. Rows:

- ``bf16``: the ``torch-bf16`` backend (what ``auto`` picks where AMX-INT8 is absent);
- simulated int8: the four linear layers of every fused layer (QKV, attention output,
  feed-forward in and out) replaced by their exact int8 equivalent, computed in fp32 (int8 values
  times scales, so the only error is the quantization's): weights per output channel, activations
  with one scale per tensor (what oneDNN's int8 linear takes), one per row (token), or per row
  after SmoothQuant-style channel balancing of the two inputs that come out of a layer norm
  (channel statistics from the engine's built-in calibration pairs, as ``torch-int8`` does);
- ``torch-int8``: the backend itself, what ``auto`` picks on AMX-INT8 CPUs (``engine/int8_layers.py``; its QKV
  projection stays bf16).

For each it prints, over the queries of a judged collection (DL19 by default; DL21 is the
development set; 100 BM25 candidates, the default model's cross-encoder as in ``rerank_speed.py``):
top-10 agreement with the fp32 scores (min, mean, queries below 9), the mean per-query score
correlation and the nDCG@10 difference. Run from the repository root:

    .venv/bin/python benchmarks/int8_ranking.py [--collection trec-dl21-passage] [--variants bf16,torch-int8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rerankit.datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.engine import fused_encoder
from rerankit.evaluation import evaluate, load_run, select_queries, trec_order
from rerankit.rerankers.registry import default_model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ALPHA = 0.5  # SmoothQuant's migration strength


def fake_quantize(x: torch.Tensor, per_row: bool) -> torch.Tensor:
    """Symmetric int8 rounding of fp32 ``x`` (scale per row or per tensor), returned dequantized."""
    amax = x.abs().amax(1, keepdim=True) if per_row else x.abs().max()
    scale = amax.clamp(min=1e-12) / 127
    return torch.round(x / scale).clamp(-127, 127) * scale


class Int8Layer:
    """One fused layer's forward with simulated int8 linears (``mode``: tensor, row or row+smooth)."""

    def __init__(self, layer: fused_encoder.FusedLayer, mode: str, stats: tuple[torch.Tensor, torch.Tensor] | None):
        self.layer, self.per_row = layer, mode != "tensor"
        weights = {"qkv": layer.qkv_weight, "out": layer.att_out.weight, "inter": layer.inter.weight,
                   "ffn": layer.out.weight}
        self.smooth = {}
        if mode == "row+smooth" and stats is not None:  # inputs that come out of a layer norm
            for name, act_max in (("qkv", stats[0]), ("inter", stats[1])):
                w_max = weights[name].float().abs().amax(0).clamp(min=1e-5)
                self.smooth[name] = act_max.clamp(min=1e-5) ** ALPHA / w_max ** (1 - ALPHA)
        self.w = {}
        for name, weight in weights.items():
            w = weight.float() * self.smooth[name][None, :] if name in self.smooth else weight.float()
            self.w[name] = fake_quantize(w, per_row=True)  # per output channel

    def linear(self, name: str, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if name in self.smooth:
            x = x / self.smooth[name]
        return fake_quantize(x, self.per_row) @ self.w[name].T + bias.float()

    def __call__(self, x: torch.Tensor, packing) -> torch.Tensor:
        layer = self.layer
        qkv = self.linear("qkv", x, layer.qkv_bias).to(x.dtype)
        ctx = packing.attention(qkv, layer.heads)
        x = layer.att_norm((self.linear("out", ctx, layer.att_out.bias) + x.float()).to(x.dtype))
        h = torch.nn.functional.gelu(self.linear("inter", x, layer.inter.bias))
        return layer.out_norm((self.linear("ffn", h, layer.out.bias) + x.float()).to(x.dtype))


def layer_norm_output_maxima(engine: CrossEncoderReranker) -> dict[int, tuple]:
    """Per-channel max |x| of each layer's two layer-norm outputs (QKV and feed-forward inputs)."""
    stats: dict[int, list[torch.Tensor]] = {}
    original = fused_encoder.FusedLayer.forward

    def record(layer, x, packing):
        entry = stats.setdefault(id(layer), [torch.zeros(x.shape[1]), torch.zeros(x.shape[1])])
        entry[0] = torch.maximum(entry[0], x.float().abs().amax(0))
        mid = layer.attention_block(x, packing)
        entry[1] = torch.maximum(entry[1], mid.float().abs().amax(0))
        return layer.feed_forward(mid)

    fused_encoder.FusedLayer.forward = record
    try:
        with torch.inference_mode():
            for batch in engine.calibration_batches():
                engine.runner(batch)
    finally:
        fused_encoder.FusedLayer.forward = original
    return {key: (a, b) for key, (a, b) in stats.items()}


def candidates(folder: Path, count: int | None, depth: int):
    """``{query: texts}`` of the judged queries, their document ids and the qrels."""
    qrels_file = folder / "qrels" / "test-full.tsv"
    qrels = read_qrels(qrels_file if qrels_file.is_file() else folder / "qrels" / "test.tsv")
    queries = read_queries_jsonl(folder / "queries.jsonl")
    run = load_run(folder / "runs" / "bm25.top100.trec")
    qids = [q for q in select_queries(qrels, queries, count) if q in run]
    wanted = {d for q in qids for d in trec_order(run[q])[:depth]}
    corpus = {d.id: d.full_text for d in read_corpus_jsonl(folder / "corpus.jsonl") if d.id in wanted}
    ids = {queries[q]: (q, trec_order(run[q])[:depth]) for q in qids}
    return {queries[q]: [corpus[d] for d in trec_order(run[q])[:depth]] for q in qids}, ids, qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--collection", default="trec-dl19-passage")
    parser.add_argument("--queries", type=int, help="only the first N judged queries")
    parser.add_argument("--variants", default="bf16,tensor,row,row+smooth,torch-int8")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    test, ids, qrels = candidates(args.data / args.collection, args.queries, 100)

    def ndcg(scores: dict[str, np.ndarray]) -> float:
        run = {ids[q][0]: {d: float(s) for d, s in zip(ids[q][1], scores[q])} for q in test}
        return evaluate(run, qrels, ["nDCG@10"], query_ids=list(run)).aggregate["nDCG@10"]

    reference = CrossEncoderReranker(args.model, backend="torch-fp32", long_docs="first")
    fp32 = {q: reference.score(q, docs) for q, docs in test.items()}
    del reference
    engine = CrossEncoderReranker(args.model, backend="torch-bf16", long_docs="first")
    layers = list(engine.runner.module.encoder.layers)
    stats = layer_norm_output_maxima(engine)
    fp32_ndcg = ndcg(fp32)
    print(f"{args.collection}: {len(test)} queries x 100 BM25 candidates; fp32 nDCG@10 {fp32_ndcg:.4f}")

    def report(label: str, scorer: CrossEncoderReranker) -> None:
        with torch.inference_mode():
            scores = {q: scorer.score(q, docs) for q, docs in test.items()}
        agreement = [len(set(np.argsort(-fp32[q])[:10]) & set(np.argsort(-scores[q])[:10])) for q in test]
        correlation = np.mean([np.corrcoef(fp32[q], scores[q])[0, 1] for q in test])
        print(f"{label:<40} top-10 agreement min {min(agreement)} mean {np.mean(agreement):.2f} "
              f"(below 9: {sum(a < 9 for a in agreement)}), score correlation {correlation:.4f}, "
              f"nDCG@10 {ndcg(scores) - fp32_ndcg:+.4f}", flush=True)

    for mode in [v for v in variants if v != "torch-int8"]:
        forwards = [None] * len(layers)
        if mode != "bf16":
            forwards = [Int8Layer(layer, mode, stats.get(id(layer))) for layer in layers]
        for layer, forward in zip(layers, forwards):
            if forward is None:
                layer.__dict__.pop("forward", None)
            else:
                layer.forward = forward
        label = {"bf16": "bf16 (torch-bf16)", "tensor": "int8 simulated, one scale per tensor",
                 "row": "int8 simulated, one scale per row",
                 "row+smooth": "int8 simulated, per row + balancing"}[mode]
        report(label, engine)
    for layer in layers:
        layer.__dict__.pop("forward", None)
    if "torch-int8" in variants:
        report("torch-int8 (AMX int8 kernels)", CrossEncoderReranker(args.model, backend="torch-int8", long_docs="first"))


if __name__ == "__main__":
    main()
