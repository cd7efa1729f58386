"""First-stage latency at 100k passages: BM25 and dense (all-MiniLM-L6-v2) query latency p50/p99 and build time.

The corpus (never written to disk) is every shared collection's passages, then copies of them with words
dropped and swapped (a different random perturbation per copy) until there are ``--size`` passages.
Dense: embedding 100k passages on a 2-core CPU takes long, so ``--embed`` passages are really embedded
(time measured and extrapolated) and the 100k-row matrix is those embeddings tiled with Gaussian noise,
renormalized; the query side is real (each query is embedded at search time, included in the latency).
Queries: TREC DL19 + DL21 + MS MARCO dev-small. Run from the repository root:

    .venv/bin/python benchmarks/first_stage.py [--size 100000] [--embed 3000]
"""

from __future__ import annotations

import os

# every query is embedded for real at search time: no cache of recent texts' embeddings
os.environ["RERANKIT_EMBED_CACHE"] = "0"

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl  # noqa: E402
from rerankit.retrieval import BM25Retriever, DenseRetriever, LocalEmbedder  # noqa: E402
from rerankit.types import Document  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUERY_SETS = ("trec-dl19-passage", "trec-dl21-passage", "msmarco-dev-small")


def perturb(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    """Drop ~10% of the words and replace ~10% with random corpus words."""
    words = [w for w in text.split() if rng.random() > 0.1]
    return " ".join(rng.choice(vocabulary) if rng.random() < 0.1 else w for w in words) or text


def build_corpus(data: Path, size: int, seed: int = 0) -> list[Document]:
    base = [d for corpus in sorted(data.glob("*/corpus.jsonl")) for d in read_corpus_jsonl(corpus)]
    rng = random.Random(seed)
    vocabulary = list({w for d in base[:5000] for w in d.text.split()})
    docs = list(base[:size])
    copy = 0
    while len(docs) < size:
        copy += 1
        for d in base:
            if len(docs) >= size:
                break
            docs.append(Document(text=perturb(d.text, rng, vocabulary), title=d.title, id=f"{d.id}~{copy}"))
    return docs


def percentiles(values_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(values_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def time_queries(search, queries: list[str], k: int) -> list[float]:
    for q in queries[:5]:
        search(q, k)  # warm-up
    out = []
    for q in queries:
        start = time.perf_counter()
        search(q, k)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--embed", type=int, default=3000, help="passages really embedded (the rest tiled + noise)")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("-k", type=int, default=100)
    args = parser.parse_args()

    start = time.perf_counter()
    docs = build_corpus(args.data, args.size)
    print(f"corpus: {len(docs)} passages built in {time.perf_counter() - start:.1f} s (in memory, not saved)")
    queries = [q for name in QUERY_SETS if (args.data / name / "queries.jsonl").is_file()
               for q in read_queries_jsonl(args.data / name / "queries.jsonl").values()]
    print(f"queries: {len(queries)} from {', '.join(QUERY_SETS)}; k={args.k}")

    start = time.perf_counter()
    bm25 = BM25Retriever.from_documents(docs)
    bm25_build = time.perf_counter() - start
    bm25_p50, bm25_p99 = percentiles(time_queries(bm25.search, queries, args.k))

    embedder = LocalEmbedder()
    embedder.embed(["warm up"])
    start = time.perf_counter()
    real = embedder.embed([d.full_text for d in docs[: args.embed]])
    embed_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    reps = -(-len(docs) // len(real))
    noise = rng.normal(0, args.noise, (len(docs), real.shape[1])).astype(np.float32)
    matrix = np.tile(real, (reps, 1))[: len(docs)] + noise
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    dense = DenseRetriever(docs, matrix.astype(np.float32), embedder)
    dense_p50, dense_p99 = percentiles(time_queries(dense.search, queries, args.k))
    encode_p50, _ = percentiles(time_queries(lambda q, k: embedder.embed([q]), queries, args.k))

    print(f"{'':<34}{'p50 ms':>9}{'p99 ms':>9}   build")
    print(f"{'BM25 (bm25s, 1 thread)':<34}{bm25_p50:>9.2f}{bm25_p99:>9.2f}   {bm25_build:.1f} s for {len(docs)} passages")
    print(f"{'dense (embed query + exact search)':<34}{dense_p50:>9.2f}{dense_p99:>9.2f}   "
          f"{embed_s:.1f} s for {args.embed} passages = {args.embed / embed_s:.0f}/s -> "
          f"~{len(docs) / (args.embed / embed_s) / 60:.0f} min for {len(docs)} (extrapolated)")
    print(f"{'  of which query embedding':<34}{encode_p50:>9.2f}")
    print(f"dense matrix: {args.embed} real embeddings tiled to {len(docs)} rows + N(0, {args.noise}) noise, renormalized")
    verdict = {True: "met", False: "NOT met"}
    print(f"targets: BM25 p50 < 10 ms: {verdict[bm25_p50 < 10]}; dense p50 < 20 ms: {verdict[dense_p50 < 20]}")


if __name__ == "__main__":
    main()
