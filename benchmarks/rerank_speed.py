"""Reranking speed on TREC DL19: rerankit's engine vs sentence-transformers ``CrossEncoder.predict``, same weights.

For every judged DL19 query, the 100 BM25 candidates of ``runs/bm25.top100.trec`` are scored by both,
one query after the other (alternating which goes first), in one process. Prints per-query paired
speed-up (median, min), top-10 agreement with the fp32 reference (``CrossEncoder.predict``), nDCG@10
of both rankings, and the achieved FLOP rate as a fraction of a bf16 GEMM peak measured in the same
run (the faster of torch's and rerankit's own kernel on a 2048 x 2048 product). Run from the repository root, with nothing else busy on the machine:

    .venv/bin/python benchmarks/rerank_speed.py [--model src/rerankit/models/default] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rerankit.datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.engine.bench import load_sentence_transformers
from rerankit.engine.hardware import describe, engine_threads
from rerankit.rerankers.cross_encoder import trained_max_length
from rerankit.evaluation import evaluate, load_run, rerank_query, select_queries, trec_order
from rerankit.rerankers.registry import default_model_path

from backends import Precomputed  # noqa: E402  (this folder is on sys.path when the script runs)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage"


def gemm_peak_flops(dtype: str, size: int = 2048, seconds: float = 2.0, rerankit_kernel: bool = False) -> float:
    """FLOP/s of a square matmul in ``dtype`` (bf16 or fp32) on this machine, now: torch's, or
    (``rerankit_kernel``, bf16 only) rerankit's AMX kernel (``engine/bf16_linear``; 0 where absent)."""
    import torch

    torch.set_num_threads(engine_threads())
    kind = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    a, b = torch.randn(size, size).to(kind), torch.randn(size, size).to(kind)
    if rerankit_kernel:
        from rerankit.engine.bf16_linear import bf16_kernels

        kernels = bf16_kernels()
        if kernels is None or dtype != "bf16":
            return 0.0
        layer = kernels.pack(b, None)
        multiply = lambda: kernels.linear(a, layer)  # noqa: E731
    else:
        multiply = lambda: torch.matmul(a, b)  # noqa: E731
    multiply()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        multiply()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start)


def model_flops(engine: CrossEncoderReranker, query: str, texts: Sequence[str]) -> float:
    """2 * non-embedding params * tokens + attention (4 * L^2 * hidden per layer), unpadded tokens."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(engine.info.folder)
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    params = layers * (4 * h * h + 2 * h * inter)
    windows = engine.builder.build([query], [(0, t) for t in texts])
    return float(sum(2 * params * len(w.ids) + layers * 4 * len(w.ids) ** 2 * h for w in windows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--max-length", type=int,
                        help="tokens per pair for both (default: the model's rerankit.json max_length, else 512)")
    parser.add_argument("--long-docs", default="first", help="rerankit's long-document rule (first = truncation, as ST)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    qrels = read_qrels(args.data / "qrels" / "test-full.tsv")
    queries = read_queries_jsonl(args.data / "queries.jsonl")
    qids = select_queries(qrels, queries, args.max_queries)
    run = load_run(args.data / "runs" / "bm25.top100.trec", qids)
    qids = [q for q in qids if q in run]
    corpus = {d.id: d for d in read_corpus_jsonl(args.data / "corpus.jsonl")}

    max_length = args.max_length or trained_max_length(Path(args.model)) or 512
    t0 = time.perf_counter()
    reference = load_sentence_transformers(args.model, max_length)
    st_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = CrossEncoderReranker(args.model, backend=args.backend, max_length=max_length, long_docs=args.long_docs)
    engine_load = time.perf_counter() - t0
    print(f"model {args.model}; engine backend {engine.backend} (auto: {engine.auto_report}); cpu {describe()}")
    print(f"max_length {max_length} for both; long_docs={args.long_docs}")
    print(f"load: sentence-transformers {st_load:.2f} s, rerankit {engine_load:.2f} s")

    warm_docs = [corpus[d].full_text for d in trec_order(run[qids[0]])[: args.depth]]
    reference.predict([(queries[qids[0]], t) for t in warm_docs], show_progress_bar=False)
    engine.score(queries[qids[0]], warm_docs)

    st_ms, rk_ms, flops = {}, {}, {}
    st_scores, rk_scores = {}, {}
    for i, qid in enumerate(qids):
        query = queries[qid]
        texts = [corpus[d].full_text for d in trec_order(run[qid])[: args.depth]]
        pairs = [(query, t) for t in texts]
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            if which == 0:
                st_scores[query] = np.asarray(reference.predict(pairs, show_progress_bar=False), dtype=np.float32)
                st_ms[qid] = (time.perf_counter() - start) * 1000
            else:
                rk_scores[query] = engine.score(query, texts)
                rk_ms[qid] = (time.perf_counter() - start) * 1000
        flops[qid] = model_flops(engine, query, texts)

    speedups = [st_ms[q] / rk_ms[q] for q in qids]
    agreement = {}
    for qid in qids:
        q = queries[qid]
        a = set(np.argsort(-st_scores[q], kind="stable")[:10].tolist())
        b = set(np.argsort(-rk_scores[q], kind="stable")[:10].tolist())
        agreement[qid] = len(a & b)
    ndcg = {}
    for name, scores in (("sentence-transformers", st_scores), ("rerankit", rk_scores)):
        reranked = {qid: rerank_query(queries[qid], run[qid], corpus, Precomputed(scores), args.depth) for qid in qids}
        ndcg[name] = evaluate(reranked, qrels, ["nDCG@10"], query_ids=qids).aggregate["nDCG@10"]
    bm25_ndcg = evaluate(run, qrels, ["nDCG@10"], query_ids=qids).aggregate["nDCG@10"]
    achieved = sum(flops.values()) / (sum(rk_ms.values()) / 1000)
    torch_bf16, kernel_bf16 = gemm_peak_flops("bf16"), gemm_peak_flops("bf16", rerankit_kernel=True)
    bf16_peak, fp32_peak = max(torch_bf16, kernel_bf16), gemm_peak_flops("fp32")

    figures = {
        "queries": len(qids), "candidates_per_query": args.depth, "backend": engine.backend,
        "st_median_ms": statistics.median(st_ms.values()), "rerankit_median_ms": statistics.median(rk_ms.values()),
        "speedup_median": statistics.median(speedups), "speedup_min": min(speedups), "speedup_max": max(speedups),
        "top10_agreement_min": min(agreement.values()), "top10_agreement_mean": statistics.fmean(agreement.values()),
        "queries_below_9_of_10": sorted(q for q, v in agreement.items() if v < 9),
        "ndcg10_bm25": bm25_ndcg, "ndcg10_sentence_transformers": ndcg["sentence-transformers"],
        "ndcg10_rerankit": ndcg["rerankit"], "ndcg10_diff": ndcg["rerankit"] - ndcg["sentence-transformers"],
        "rerankit_docs_per_s": len(qids) * args.depth / (sum(rk_ms.values()) / 1000),
        "st_docs_per_s": len(qids) * args.depth / (sum(st_ms.values()) / 1000),
        "achieved_gflops": achieved / 1e9, "bf16_gemm_torch_gflops": torch_bf16 / 1e9,
        "bf16_gemm_rerankit_gflops": kernel_bf16 / 1e9, "bf16_gemm_peak_gflops": bf16_peak / 1e9,
        "fp32_gemm_peak_gflops": fp32_peak / 1e9, "fraction_of_bf16_peak": achieved / bf16_peak,
        "cpu": describe(),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.out:
        args.out.write_text(json.dumps({**figures, "per_query": {q: {"st_ms": st_ms[q], "rerankit_ms": rk_ms[q],
                                        "top10_agreement": agreement[q]} for q in qids}}, indent=2))


if __name__ == "__main__":
    main()
