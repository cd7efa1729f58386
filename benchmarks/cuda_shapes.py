"""Where a ``cuda-*`` backend's time goes on a GPU: the model (runner) against the rest (tokenizing, packing),
on a first pass over 64 DL19 queries x 100 BM25 candidates and on a second pass over the same inputs, whose
(batch, length) shapes the process has seen. A large first-pass excess is per-shape set-up (the note in
``rerankit.engine.torch_backend``). ``--pad N`` pads every batch's length to a multiple of N, to compare.
``--st`` also times sentence-transformers' CrossEncoder (fp16 and fp32, its defaults) on both passes.

    python benchmarks/cuda_shapes.py [--backend cuda-fp16] [--pad 1] [--st] [--data PATH]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage"


def passes(score, work, runner_ms: list[float] | None = None) -> list[str]:
    """Two timed passes over ``work``; per pass, mean and median ms per query (and in the runner)."""
    import torch

    lines = []
    for number in (1, 2):
        total, in_runner = [], []
        for query, texts in work:
            if runner_ms is not None:
                runner_ms.clear()
            torch.cuda.synchronize()
            start = time.perf_counter()
            score(query, texts)
            torch.cuda.synchronize()
            total.append((time.perf_counter() - start) * 1000)
            in_runner.append(sum(runner_ms) if runner_ms is not None else 0.0)
        line = f"pass {number}: {statistics.fmean(total):.1f} ms/query mean, {statistics.median(total):.1f} median"
        if runner_ms is not None:
            line += f"; in the model {statistics.fmean(in_runner):.1f} mean, {statistics.median(in_runner):.1f} median"
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cuda-fp16")
    parser.add_argument("--pad", type=int, default=1)
    parser.add_argument("--st", action="store_true")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    import torch

    import rerankit.rerankers.cross_encoder as cross_encoder
    from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl
    from rerankit.evaluation import load_run, trec_order
    from rerankit.rerankers.registry import default_model_path

    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    if args.pad > 1:
        collate = cross_encoder.collate

        def padded(ids, types, pad_id):
            batch = collate(ids, types, pad_id)
            extra = -batch["input_ids"].shape[1] % args.pad
            return {k: np.pad(v, ((0, 0), (0, extra)), constant_values=pad_id if k == "input_ids" else 0)
                    for k, v in batch.items()}

        cross_encoder.collate = padded
    queries = read_queries_jsonl(args.data / "queries.jsonl")
    run = load_run(args.data / "runs" / "bm25.top100.trec", set(queries))
    corpus = {d.id: d.full_text for d in read_corpus_jsonl(args.data / "corpus.jsonl")}
    qids = sorted(q for q in run if q in queries)
    work = [(queries[q], [corpus[d] for d in trec_order(run[q])[:100]])
            for q in itertools.islice(itertools.cycle(qids), 64)]

    engine = cross_encoder.CrossEncoderReranker(default_model_path(), backend=args.backend, max_length=512)
    runner, runner_ms = engine.runner, []

    def timed_runner(batch):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = runner(batch)
        runner_ms.append((time.perf_counter() - start) * 1000)
        return out

    engine.runner = timed_runner
    engine.score(*work[0])
    for line in passes(engine.score, work, runner_ms):
        print(f"rerankit {args.backend} (pad {args.pad}) {line}", flush=True)
    if args.st:
        from sentence_transformers import CrossEncoder

        for dtype in (torch.float16, torch.float32):
            model = CrossEncoder(str(default_model_path()), device="cuda", max_length=512,
                                 model_kwargs={"dtype": dtype})
            model.predict([(work[0][0], t) for t in work[0][1]], show_progress_bar=False)
            score = lambda q, texts, m=model: m.predict([(q, t) for t in texts], show_progress_bar=False)  # noqa: E731
            for line in passes(score, work):
                print(f"sentence-transformers {dtype} {line}", flush=True)


if __name__ == "__main__":
    main()
