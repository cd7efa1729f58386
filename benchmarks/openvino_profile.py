"""Where an OpenVINO backend's time goes, by kind of node (OpenVINO's own per-node counters, ``PERF_COUNT``):
the cached IR of a rerankit cross-encoder, compiled as the backend compiles it but on one stream of
``--threads`` threads, run over the same length-sorted batches as the engine makes for the 100 BM25
candidates of ``--queries`` DL19 queries. Prints milliseconds per query by node kind and the rates of
the fully connected layers and of the attention blocks (model FLOPs of the padded batches).

    python benchmarks/openvino_profile.py [--precision bf16] [--queries 8] [--threads 1] [--max-length 512]
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import numpy as np

from rerankit.engine.batching import collate, pack_by_tokens
from rerankit.engine.hardware import cpu_flags
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.rerankers.registry import default_model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage"


def batches_of(engine: CrossEncoderReranker, work) -> list[dict[str, np.ndarray]]:
    """The engine's own batches (token budget, length order) for each (query, texts) of ``work``."""
    out = []
    for query, texts in work:
        windows = engine.builder.build([query], [(0, t) for t in texts])
        for idx in pack_by_tokens([len(w.ids) for w in windows], engine.token_budget, engine.max_batch):
            types = [windows[i].types for i in idx] if engine.info.uses_token_types else None
            out.append(collate([windows[i].ids for i in idx], types, engine.pad_id))
    return out


def main() -> None:
    import openvino as ov
    from transformers import AutoConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()

    from backends import load_data, texts_of  # the benchmark's own DL19 reader (same folder)

    _, queries, qids, run, corpus = load_data(args.data, None)
    work = [(queries[q], texts_of(run, q, corpus, 100)) for q in qids[: args.queries]]
    engine = CrossEncoderReranker(args.model, backend=f"openvino-{args.precision}", max_length=args.max_length,
                                  long_docs="first")
    batches = batches_of(engine, work)
    names = engine.runner.inputs
    feeds = [{i: batch[name] for i, name in enumerate(names)} for batch in batches]
    compiled = ov.Core().compile_model(str(engine.runner.path), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if args.precision == "bf16" else "f32", "PERF_COUNT": True,
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads})
    request = compiled.create_infer_request()
    for feed in feeds[:4]:  # kernels built at first sight of a shape
        request.infer(feed)

    by_kind: collections.Counter = collections.Counter()
    start = time.perf_counter()
    for feed in feeds:
        request.infer(feed)
        for node in request.profiling_info:
            by_kind[(node.node_type, node.exec_type)] += node.real_time.total_seconds()
    wall = time.perf_counter() - start

    config = AutoConfig.from_pretrained(args.model)
    h, layers = config.hidden_size, config.num_hidden_layers
    linear_flops = sum(2 * layers * (4 * h * h + 2 * h * config.intermediate_size) * b["input_ids"].size
                       for b in batches)
    attention_flops = sum(layers * 4 * h * b["input_ids"].shape[0] * b["input_ids"].shape[1] ** 2 for b in batches)
    tokens = sum(b["input_ids"].size for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    per_query = 1000 / len(work)
    flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    print(f"OpenVINO {ov.__version__}, {args.precision}, one stream of {args.threads} thread(s); CPU flags: "
          f"{' '.join(flags)}")
    print(f"{len(work)} DL19 queries x 100, {len(batches)} batches, {tokens:,} padded tokens ({real:,} real): "
          f"{wall * per_query:.1f} ms/query, {tokens / wall:,.0f} padded tokens/s")
    total = sum(by_kind.values())
    print(f"\n| node | kernel | ms/query | share |\n|---|---|---|---|")
    for (kind, kernel), seconds in by_kind.most_common(10):
        print(f"| {kind} | {kernel} | {seconds * per_query:.1f} | {seconds / total:.0%} |")
    linear = sum(s for (kind, _), s in by_kind.items() if kind == "FullyConnected")
    attention = sum(s for (kind, _), s in by_kind.items() if kind in ("Subgraph", "MHA", "MatMul", "Softmax"))
    print(f"\nfully connected: {linear_flops / linear / 1e9:,.0f} GFLOP/s; attention (Subgraph/MHA/MatMul/Softmax "
          f"nodes): {attention_flops / attention / 1e9:,.0f} GFLOP/s over its two matmuls")


if __name__ == "__main__":
    main()
