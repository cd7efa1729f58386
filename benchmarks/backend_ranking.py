"""Does an engine backend keep the fp32 ranking on this CPU, and how fast is it? Any backends, one run.

Scores the BM25 top 100 of a judged collection's queries (DL21 by default: the development set, where
``auto``'s candidates are chosen) with ``torch-fp32`` (the reference) and each ``--backends`` entry,
in one process, the backends taking turns query by query. Prints for each: top-10 agreement with the
reference (min, mean, queries below 9), the mean per-query score correlation, the nDCG@10
difference and the median milliseconds per query with its ratio to the reference's. Run from the
repository root, nothing else busy:

    .venv/bin/python benchmarks/backend_ranking.py [--backends onnx-fp32,onnx-int8] [--collection trec-dl19-passage]

``--reference FILE`` reads the reference's scores from FILE (``.npz``) where it exists, and writes them
there otherwise: so the reference can be scored natively and the backends on an emulated CPU
(``tools/emulated-avx2 --python benchmarks/backend_ranking.py ...``), where fp32 would take hours.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.engine.hardware import describe
from rerankit.io import write_atomically
from rerankit.rerankers.registry import default_model_path
from rerankit.training.fusion import DevPairs, ndcg10
from rerankit.training.recipe import TrecDevSet

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--collection", default="trec-dl21-passage")
    parser.add_argument("--backends", default="onnx-fp32,onnx-int8")
    parser.add_argument("--queries", type=int, help="only the first N queries")
    parser.add_argument("--reference", type=Path, help="torch-fp32's scores: read if the file exists, else written")
    args = parser.parse_args()
    if not (args.data / args.collection).is_dir():
        raise SystemExit(f"{args.data / args.collection} not found: this benchmark needs ../shared/data")
    dev = TrecDevSet(args.data / args.collection, depth=100)
    if args.queries:
        dev.qids, dev.queries, dev.doc_ids, dev.texts = (dev.qids[: args.queries], dev.queries[: args.queries],
                                                        dev.doc_ids[: args.queries], dev.texts[: args.queries])
    names = ["torch-fp32", *[b.strip() for b in args.backends.split(",") if b.strip()]]
    stored = args.reference is not None and args.reference.is_file()
    timed = names[1:] if stored else names
    engines = {name: CrossEncoderReranker(args.model, backend=name, long_docs="first") for name in timed}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    if stored:
        with np.load(args.reference) as saved:
            scores["torch-fp32"] = [saved[qid] for qid in dev.qids]
    for i, (query, texts) in enumerate(zip(dev.queries, dev.texts)):
        for name in timed if i % 2 == 0 else reversed(timed):
            started = time.perf_counter()
            scores[name].append(engines[name].score(query, texts))
            times[name].append(time.perf_counter() - started)
    if args.reference is not None and not stored:
        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:  # a handle: np.savez would add ".npz" to a path
                np.savez(handle, **dict(zip(dev.qids, scores["torch-fp32"])))

        write_atomically(args.reference, save)

    def ndcg(lists: list[np.ndarray]) -> float:
        return ndcg10(DevPairs(dev.qids, dev.doc_ids, lists, lists), lists, dev.qrels)

    reference = scores["torch-fp32"]
    base_ms = statistics.median(times["torch-fp32"]) * 1000 if times["torch-fp32"] else None
    cpu = describe()
    print(f"{args.collection}: {len(dev.qids)} queries x 100 BM25 candidates; CPU flags amx {cpu['amx']}, "
          f"avx512_bf16 {cpu['avx512_bf16']}, vnni {cpu['vnni']}; torch-fp32 nDCG@10 {ndcg(reference):.4f}, "
          + (f"{base_ms:.0f} ms/query" if base_ms else f"scores read from {args.reference}"))
    for name in names[1:]:
        got = scores[name]
        agreement = [len(set(np.argsort(-r)[:10]) & set(np.argsort(-g)[:10])) for r, g in zip(reference, got)]
        correlation = float(np.mean([np.corrcoef(r, g)[0, 1] for r, g in zip(reference, got)]))
        ms = statistics.median(times[name]) * 1000
        print(f"{name:<12} top-10 agreement min {min(agreement)} mean {np.mean(agreement):.2f} "
              f"(below 9: {sum(a < 9 for a in agreement)}), correlation {correlation:.4f}, "
              f"nDCG@10 {ndcg(got) - ndcg(reference):+.4f}, {ms:.0f} ms/query"
              + (f" ({base_ms / ms:.2f}x torch-fp32)" if base_ms else ""))


if __name__ == "__main__":
    main()
