"""Does this OpenVINO compute the faster int8 settings right on two streams? A check to rerun on each new
OpenVINO release before ``openvino-int8`` takes a larger dynamic-quantization group or the bf16 hint.

Compiles the cached int8 IR of a cross-encoder (``openvino-int8``'s) under each setting with the engine's
own ``StreamedModel``, once on two threads (``PERFORMANCE_HINT=THROUGHPUT``, two streams of one thread,
fed at once) and once on one thread (one stream, ``LATENCY``), scores the same batches of DL19 query-passage pairs with
both, and prints the largest difference between them and the mean logit. On an AMD EPYC (Zen 4) with
OpenVINO 2026.4.1, the bf16 hint gave logits near -1,700 on two streams against about 2 on one, for
every group (``benchmarks/engine-experiments.md``).

    python benchmarks/openvino_int8_streams.py [--queries 2] [--max-length 512]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rerankit.engine.openvino_backend import StreamedModel
from rerankit.engine.runtimes import openvino_runs_bf16
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.rerankers.registry import default_model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage"


def scores(model: StreamedModel, feeds: list[dict[int, np.ndarray]]) -> np.ndarray:
    """Every feed's logits, the feeds run as the engine runs them (``StreamedModel.run_batches``)."""
    out: list[np.ndarray | None] = [None] * len(feeds)
    model.run_batches(enumerate(feeds), out)
    return np.concatenate([o.ravel() for o in out])  # type: ignore[union-attr]


def main() -> None:
    import openvino as ov

    from openvino_profile import batches_of  # the engine's own batches (same folder)
    from backends import load_data, texts_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--queries", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()
    _, queries, qids, run, corpus = load_data(DATA, None)
    work = [(queries[q], texts_of(run, q, corpus, 100)) for q in qids[: args.queries]]
    engine = CrossEncoderReranker(args.model, backend="openvino-int8", max_length=args.max_length, long_docs="first")
    names = engine.runner.inputs
    feeds = [{i: batch[name] for i, name in enumerate(names)} for batch in batches_of(engine, work)]
    settings = [("f32", 32), ("f32", 64), ("f32", 128)]
    if openvino_runs_bf16():
        settings += [("bf16", 32), ("bf16", 128)]
    path = engine.runner.path
    print(f"OpenVINO {ov.__version__}; {len(feeds)} batches of {len(work)} DL19 queries; int8 IR {path}")
    print("| hint | group | one stream: mean logit | two streams: mean logit | largest difference |")
    print("|---|---|---|---|---|")
    for hint, group in settings:
        config = {"INFERENCE_PRECISION_HINT": hint, "DYNAMIC_QUANTIZATION_GROUP_SIZE": group}
        a = scores(StreamedModel(lambda: path, config, 1, f"{hint}/{group}, one stream"), feeds)
        b = scores(StreamedModel(lambda: path, config, 2, f"{hint}/{group}, two streams"), feeds)
        print(f"| {hint} | {group} | {a.mean():.3f} | {b.mean():.3f} | {np.abs(a - b).max():.4f} |")


if __name__ == "__main__":
    main()
