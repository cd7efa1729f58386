"""Scale-out figures: ``rerank-run`` in process against Ray Data with 1 and 2 workers, and the
PostgreSQL + pgvector first stage against the in-memory index (query p50/p99 at 100k passages, and
how often SciFact's top 10 agree).

Parts (``--part``):

- ``rerank-run``: the DL19 BM25 top 100 (43 queries, 4,300 passages) reranked with ``--rerank``
  (``default``), one warm-up pass of each way first (it fills the export and ``auto`` caches), then
  each way timed in turn, alternating over ``--rounds``; prints docs/s, the ratio to the in-process
  run, and whether every way wrote the same ranking (same documents in the same order per query).
  The Ray cluster is started once (``ray.init``), so the times include building each actor pool and
  loading its rerankers, not starting the cluster.
- ``pgvector`` (= ``pg-agreement`` + ``pg-latency``): a real PostgreSQL 16 with pgvector 0.6
  (``pgserver``, in a temporary folder). (1) SciFact (5,183 passages, every query): identical top 10 from PostgreSQL and from the
  in-memory index, per mode. (2) 100k passages built as ``first_stage.py`` builds them (shared
  collections plus perturbed copies; ``--embed`` passages really embedded, the rest of the matrix
  tiled from them with noise), the same rows in both; p50/p99 query latency per mode over the DL19 +
  DL21 + MS MARCO dev-small queries (each query embedded for real in the dense and hybrid modes).

Run from the repository root with ``make extras`` done and nothing else busy:

    .venv/bin/python benchmarks/scale.py [--part all] [--rounds 2] [--size 100000] [--embed 3000]
"""

from __future__ import annotations

import os

os.environ.setdefault("RERANKIT_EMBED_CACHE", "0")  # every query embedded for real

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_stage import QUERY_SETS, build_corpus, percentiles, time_queries  # noqa: E402

from rerankit.batch_rerank import rerank_run_file  # noqa: E402
from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl, read_trec_run  # noqa: E402
from rerankit.evaluation.metrics import trec_order  # noqa: E402
from rerankit.retrieval import build_index, load_index  # noqa: E402
from rerankit.retrieval.dense import LocalEmbedder  # noqa: E402
from rerankit.types import Document  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def rerank_run_part(args) -> None:
    import ray

    collection = args.data / "trec-dl19-passage"
    run = read_trec_run(collection / "runs" / "bm25.top100.trec")
    docs = sum(min(100, len(c)) for c in run.values())
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ways = {"in process": {}, "Ray, 1 worker": {"ray_address": "local", "workers": 1},
            "Ray, 2 workers": {"ray_address": "local", "workers": 2}}
    times: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="rerankit-scale-") as tmp:
        for round_ in range(args.rounds + 1):  # round 0 warms the caches up
            for name in (ways if round_ % 2 else reversed(ways)):
                out = Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}-{round_}.trec"
                start = time.perf_counter()
                rerank_run_file("runs/bm25.top100.trec", collection, args.rerank, out, batch_queries=4, **ways[name])
                if round_:
                    times[name].append(time.perf_counter() - start)
                outputs[name] = out
        orders = {name: {q: trec_order(d) for q, d in read_trec_run(path).items()} for name, path in outputs.items()}
    ray.shutdown()
    base = docs / statistics.median(times["in process"])
    print(f"rerank-run, DL19 BM25 top 100 ({len(run)} queries, {docs} passages), --rerank {args.rerank}, "
          f"{os.cpu_count()} CPUs, median of {args.rounds} rounds")
    for name, values in times.items():
        rate = docs / statistics.median(values)
        print(f"  {name:<16} {rate:8.1f} docs/s  {rate / base:5.2f}x in process  "
              f"({', '.join(f'{v:.1f}' for v in values)} s)")
    same = all(orders[name] == orders["in process"] for name in orders)
    print(f"  same ranking every way: {same}")


class TableEmbedder:
    """Embeddings looked up by text (the benchmark's matrix), under the local model's name."""

    provider = "local"

    def __init__(self, texts: list[str], matrix: np.ndarray, model: str) -> None:
        self.rows = {t: i for i, t in enumerate(texts)}
        self.matrix, self.model = matrix, model

    def embed(self, texts):
        return self.matrix[[self.rows[t] for t in texts]]


def scifact_agreement(server, args, tmp: Path) -> None:
    """How often PostgreSQL's top 10 equals the in-memory index's, per mode, over every SciFact query."""
    scifact = args.data / "scifact"
    corpus = read_corpus_jsonl(scifact / "corpus.jsonl")
    queries = list(read_queries_jsonl(scifact / "queries.jsonl").values())
    url = f"{server.get_uri()}&table=scifact"
    start = time.perf_counter()
    build_index(corpus, tmp / "scifact")
    disk_s = time.perf_counter() - start
    start = time.perf_counter()
    build_index(corpus, url)
    pg_s = time.perf_counter() - start
    database, disk = load_index(url), load_index(tmp / "scifact")
    print(f"SciFact: {len(corpus)} passages, {len(queries)} queries; build on disk {disk_s:.1f} s, "
          f"in PostgreSQL {pg_s:.1f} s (both embed the passages)")
    for mode in ("bm25", "dense", "hybrid"):
        same = sum([h.document.id for h in database.search(q, 10, mode)] ==
                   [h.document.id for h in disk.search(q, 10, mode)] for q in queries)
        print(f"  {mode:<7} identical top 10 on {same}/{len(queries)} queries ({100 * same / len(queries):.1f}%)")
    database.close()


def large_latency(server, args, tmp: Path) -> None:
    """Query p50/p99 per mode at ``--size`` passages, PostgreSQL against the in-memory index."""
    docs = build_corpus(args.data, args.size + args.size // 5)
    unique = list({d.full_text: d for d in docs}.values())[: args.size]  # perturbed copies may repeat a text
    docs = [Document(d.text, d.title, f"p{i}") for i, d in enumerate(unique)]  # collections share ids
    texts = [d.full_text for d in docs]
    embedder = LocalEmbedder()
    real = embedder.embed(texts[: args.embed])
    rng = np.random.default_rng(0)
    matrix = np.tile(real, (-(-len(docs) // len(real)), 1))[: len(docs)]
    matrix = matrix + rng.normal(0, 0.05, matrix.shape).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    table = TableEmbedder(texts, matrix.astype(np.float32), embedder.model)
    url = f"{server.get_uri()}&table=large"
    start = time.perf_counter()
    build_index(docs, tmp / "large", embedder=table)
    disk_s = time.perf_counter() - start
    start = time.perf_counter()
    build_index(docs, url, embedder=table)
    pg_s = time.perf_counter() - start
    database, disk = load_index(url), load_index(tmp / "large")
    queries = [q for name in QUERY_SETS if (args.data / name / "queries.jsonl").is_file()
               for q in read_queries_jsonl(args.data / name / "queries.jsonl").values()][: args.queries]
    print(f"{len(docs)} passages (build: on disk {disk_s:.1f} s, PostgreSQL {pg_s:.1f} s, embeddings given: "
          f"{args.embed} real, tiled with noise), {len(queries)} queries, k={args.k}; p50 / p99 ms")
    for mode in ("bm25", "dense", "hybrid"):
        mem = percentiles(time_queries(lambda q, k, m=mode: disk.search(q, k, m), queries, args.k))
        pg = percentiles(time_queries(lambda q, k, m=mode: database.search(q, k, m), queries, args.k))
        print(f"  {mode:<7} in memory {mem[0]:7.2f} / {mem[1]:7.2f}   PostgreSQL {pg[0]:7.2f} / {pg[1]:7.2f}   "
              f"p50 ratio {pg[0] / mem[0]:.2f}x")
    database.close()


def pgvector_part(args) -> None:
    import pgserver

    with tempfile.TemporaryDirectory(prefix="rerankit-pg-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            if args.part in ("all", "pgvector", "pg-agreement"):
                scifact_agreement(server, args, Path(tmp))
            if args.part in ("all", "pgvector", "pg-latency"):
                large_latency(server, args, Path(tmp))
        finally:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "rerank-run", "pgvector", "pg-agreement", "pg-latency"), default="all")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rerank", default="default")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--embed", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    if not (args.data / "trec-dl19-passage").is_dir():
        raise SystemExit(f"{args.data} has no trec-dl19-passage: this benchmark needs ../shared/data")
    print("CPU:", next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                       "unknown"))
    if args.part in ("all", "rerank-run"):
        rerank_run_part(args)
    if args.part != "rerank-run":
        pgvector_part(args)


if __name__ == "__main__":
    main()
