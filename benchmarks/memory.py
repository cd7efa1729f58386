"""Peak memory (RSS) of loading a reranker and reranking 100 DL19 candidates: rerankit vs sentence-transformers.

Each variant runs in a fresh subprocess that imports, loads the model, reranks the 100 BM25 candidates
of the first judged DL19 query once, and reports ``ru_maxrss``. Run from the repository root:

    .venv/bin/python benchmarks/memory.py [--model src/rerankit/models/default] [--variants st,auto,onnx-int8,torch-bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rerankit.rerankers.cross_encoder import trained_max_length
from rerankit.rerankers.registry import default_model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
variant, model, data, max_length = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
from rerankit.datasets import read_qrels, read_queries_jsonl
from rerankit.evaluation import load_run, select_queries, trec_order
qrels = read_qrels(data / "qrels" / "test-full.tsv")
queries = read_queries_jsonl(data / "queries.jsonl")
qid = select_queries(qrels, queries, 1)[0]
wanted = trec_order(load_run(data / "runs" / "bm25.top100.trec", [qid])[qid])[:100]
texts = {}
with open(data / "corpus.jsonl") as handle:
    for line in handle:
        doc = json.loads(line)
        if doc["_id"] in wanted:
            texts[doc["_id"]] = (doc.get("title") + ". " + doc["text"]) if doc.get("title") else doc["text"]
docs = [texts[d] for d in wanted]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if variant == "st":
    import torch
    from sentence_transformers import CrossEncoder
    model_ = CrossEncoder(model, device="cpu", max_length=max_length, model_kwargs={"dtype": torch.float32})
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_.predict([(queries[qid], d) for d in docs], show_progress_bar=False)
else:
    from rerankit.rerankers.cross_encoder import CrossEncoderReranker
    engine = CrossEncoderReranker(model, backend=variant, max_length=max_length, long_docs="first")
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.rerank(queries[qid], docs)
    variant = engine.backend if variant != "auto" else "auto (" + engine.backend + ")"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"variant": variant, "before_load_mb": base / 1024, "after_load_mb": loaded / 1024,
                  "peak_mb": peak / 1024, "seconds": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--variants", default="st,auto,torch-fp32,torch-bf16,onnx-fp32,onnx-int8")
    args = parser.parse_args()
    max_length = trained_max_length(Path(args.model)) or 512
    print(f"model {args.model}, max_length {max_length} for every variant")
    rows = []
    for variant in args.variants.split(","):
        out = subprocess.run([sys.executable, "-c", CHILD, variant, args.model, str(args.data), str(max_length)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    st = next((r for r in rows if r["variant"] == "st"), None)
    print(f"{'variant':<24}{'imports MB':>12}{'after load MB':>15}{'peak MB':>10}{'vs st':>8}{'s':>7}")
    for r in rows:
        ratio = f"{r['peak_mb'] / st['peak_mb']:.2f}" if st else "-"
        print(f"{r['variant']:<24}{r['before_load_mb']:>12.0f}{r['after_load_mb']:>15.0f}{r['peak_mb']:>10.0f}{ratio:>8}{r['seconds']:>7.1f}")


if __name__ == "__main__":
    main()
