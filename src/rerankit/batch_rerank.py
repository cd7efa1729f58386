"""Rerank a whole TREC run file in shards: in this process, or on a Ray cluster's actor pool; resumable.

The run's queries (sorted by id) are cut into shards of ``batch_queries`` queries. Each shard is
scored with one ``Reranker.score_many`` call (its pairs share batches) and ordered as
``evaluation.rerank_run`` orders a query (``order_candidates``), so both ways give the same run.

- In process (``ray_address=None``): shards one after another with one reranker.
- On Ray (``ray_address="local"`` starts a local cluster, else the address of a running one):
  ``ray.data`` maps the shards over an actor pool of ``workers`` actors (``map_batches`` with a
  callable class), each loading the reranker once, with ``cpus_per_worker`` CPUs and as many
  threads. Shards carry their query and passage texts, so workers need no shared disk.

Every finished shard is written atomically to ``OUT.parts/shard-NNNNN.trec`` beside the output,
under a ``job.json`` that names the inputs (the run file's and collection's fingerprints, the spec,
depth and shard size). A rerun of the same job skips the shards already there, so a killed job
resumes where it stopped; a different job in the same place starts over. When every shard is
there they are joined into ``OUT`` (atomically) and the parts folder is removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .datasets import Run, format_trec_run, read_corpus_jsonl, read_queries_jsonl, read_trec_run
from .engine.cache import files_fingerprint
from .errors import DataFormatError, InvalidInputError
from .io import atomic_write_json, atomic_write_text
from .types import Document
from .validation import positive_int

JOB_FILE = "job.json"
JOB_FORMAT = "rerankit-rerank-run-v1"
DEFAULT_BATCH_QUERIES = 8


@dataclass(frozen=True)
class Shard:
    """One unit of work: some queries with their candidates, and the texts of the candidates to rerank."""

    index: int
    queries: dict[str, str]  # qid -> query text
    candidates: dict[str, dict[str, float]]  # qid -> {docid: first-stage score}
    texts: dict[str, str]  # docid -> passage text (title and body, as the corpus gives them)

    def to_json(self) -> str:
        return json.dumps({"index": self.index, "queries": self.queries, "candidates": self.candidates,
                           "texts": self.texts}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Shard:
        data = json.loads(text)
        return cls(int(data["index"]), data["queries"], data["candidates"], data["texts"])


@dataclass(frozen=True)
class RerankRunResult:
    """What a ``rerank_run_file`` call did."""

    out: Path
    queries: int
    shards: int
    shards_done_before: int  # found finished from an earlier, interrupted call
    shards_run: int
    workers: int
    ray: bool


def rerank_shard(reranker, shard: Shard, depth: int, keep_tail: bool = True) -> Run:
    """The shard's queries reranked (``evaluation.rerank_run``'s ordering), in one ``score_many`` call."""
    from .evaluation.rerank_run import order_candidates, reranked_head

    qids = sorted(shard.queries)
    documents = {d: Document(id=d, text=t) for d, t in shard.texts.items()}
    heads = [reranked_head(shard.candidates[q], documents, depth) for q in qids]
    scores = reranker.score_many([shard.queries[q] for q in qids], [[documents[d] for d in head] for head in heads])
    name = getattr(reranker, "name", type(reranker).__name__)
    return {q: order_candidates(shard.candidates[q], s, depth, keep_tail, shard.queries[q], name)
            for q, s in zip(qids, scores)}


class ShardStore:
    """The finished shards of one job, in ``OUT.parts/`` beside the output (see the module docstring)."""

    def __init__(self, out: Path, job: dict) -> None:
        self.folder = out.with_name(out.name + ".parts")
        self.job = job
        current = None
        try:
            current = json.loads((self.folder / JOB_FILE).read_text())
        except (OSError, ValueError):
            pass
        if current != job:  # another job's (or no) parts: start over
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            atomic_write_json(self.folder / JOB_FILE, job)

    def path(self, index: int) -> Path:
        return self.folder / f"shard-{index:05d}.trec"

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("shard-*.trec")}

    def write(self, index: int, run: Run) -> None:
        atomic_write_text(self.path(index), format_trec_run(run))

    def join(self, out: Path, shards: int) -> None:
        """Every shard's lines, in shard order, into ``out`` (atomically); then the parts are removed."""
        atomic_write_text(out, "".join(self.path(i).read_text(encoding="utf-8") for i in range(shards)))
        shutil.rmtree(self.folder, ignore_errors=True)


def plan_shards(run: Run, queries: Mapping[str, str], corpus: Mapping[str, Document], depth: int,
                batch_queries: int) -> list[Shard]:
    """Shards of ``batch_queries`` queries (sorted ids), each with the texts of its top ``depth`` candidates."""
    from .evaluation.metrics import trec_order

    missing = sorted(q for q in run if q not in queries)
    if missing:
        raise DataFormatError(f"{len(missing)} run queries have no text, e.g. query id {missing[0]!r}")
    qids = sorted(run)
    shards = []
    for index in range(math.ceil(len(qids) / batch_queries)):
        chunk = qids[index * batch_queries : (index + 1) * batch_queries]
        texts: dict[str, str] = {}
        for q in chunk:
            for d in trec_order(run[q])[:depth]:
                if d not in corpus:
                    raise DataFormatError(f"query {q!r}: candidate {d!r} has no text in the corpus")
                texts[d] = corpus[d].full_text
        shards.append(Shard(index, {q: queries[q] for q in chunk}, {q: run[q] for q in chunk}, texts))
    return shards


class ShardWorker:
    """A Ray Data actor: loads the reranker once, then reranks one shard per row it is given."""

    def __init__(self, spec: str, depth: int, keep_tail: bool, threads: int) -> None:
        os.environ["RERANKIT_THREADS"] = str(threads)  # read by the engine when the reranker loads
        from .rerankers import load_reranker

        self.reranker = load_reranker(spec)
        self.depth, self.keep_tail = depth, keep_tail

    def __call__(self, batch: dict) -> dict:
        indices, lines = [], []
        for payload in batch["shard"]:
            shard = Shard.from_json(str(payload))
            indices.append(shard.index)
            lines.append(format_trec_run(rerank_shard(self.reranker, shard, self.depth, self.keep_tail)))
        return {"index": indices, "lines": lines}


def _run_on_ray(shards: Sequence[Shard], store: ShardStore, spec: str, depth: int, keep_tail: bool, address: str,
                workers: int, cpus_per_worker: int, on_shard: Callable[[int], None]) -> None:
    try:
        import ray
    except ImportError as exc:
        from .errors import BackendUnavailableError

        raise BackendUnavailableError("--ray needs Ray Data: pip install 'rerankit[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(num_cpus=max(os.cpu_count() or 1, workers * cpus_per_worker), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        dataset = ray.data.from_items([{"shard": s.to_json()} for s in shards], override_num_blocks=len(shards))
        results = dataset.map_batches(
            ShardWorker, fn_constructor_kwargs={"spec": spec, "depth": depth, "keep_tail": keep_tail,
                                                "threads": cpus_per_worker},
            batch_size=1, concurrency=workers, num_cpus=cpus_per_worker)
        for row in results.iter_rows():  # as shards finish, in any order
            atomic_write_text(store.path(int(row["index"])), str(row["lines"]))
            on_shard(int(row["index"]))
    finally:
        if started_here:
            ray.shutdown()


def rerank_run_file(
    run_path: str | Path,
    collection: str | Path,
    spec: str,
    out: str | Path,
    *,
    depth: int = 100,
    batch_queries: int = DEFAULT_BATCH_QUERIES,
    ray_address: str | None = None,
    workers: int = 1,
    cpus_per_worker: int | None = None,
    keep_tail: bool = True,
    on_shard: Callable[[int, int], None] | None = None,
) -> RerankRunResult:
    """Rerank every query of a TREC run with ``spec`` and write the reranked run to ``out``.

    ``collection``: a BEIR folder with ``corpus.jsonl`` and ``queries.jsonl``. ``on_shard(done,
    total)`` is called after each finished shard. See the module docstring for sharding, Ray and
    resuming.
    """
    from .evaluation.first_stage import resolve_data_dir, resolve_run_path

    depth, batch_queries, workers = (positive_int(depth, "depth"), positive_int(batch_queries, "batch_queries"),
                                     positive_int(workers, "workers"))
    folder = resolve_data_dir(collection)
    run_file = resolve_run_path(folder, run_path)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DataFormatError(f"{folder} has no {name}")
    out = Path(out).expanduser()
    if out.is_dir():
        raise InvalidInputError(f"{out} is a folder; --out takes a file path")
    cpus = cpus_per_worker or max(1, (os.cpu_count() or 1) // workers)
    positive_int(cpus, "cpus_per_worker")
    job = {"format": JOB_FORMAT, "run": files_fingerprint([run_file]),
           "corpus": files_fingerprint([folder / "corpus.jsonl"]), "queries": files_fingerprint([folder / "queries.jsonl"]),
           "spec": spec, "depth": depth,
           "batch_queries": batch_queries, "keep_tail": keep_tail}
    run = read_trec_run(run_file)
    shards = plan_shards(run, read_queries_jsonl(folder / "queries.jsonl"),
                         {d.id: d for d in read_corpus_jsonl(folder / "corpus.jsonl")}, depth, batch_queries)
    store = ShardStore(out, job)
    before = store.done() & set(range(len(shards)))
    todo = [s for s in shards if s.index not in before]
    finished = len(before)

    def shard_done(_index: int) -> None:
        nonlocal finished
        finished += 1
        if on_shard is not None:
            on_shard(finished, len(shards))

    if todo and ray_address is not None:
        _run_on_ray(todo, store, spec, depth, keep_tail, ray_address, workers, cpus, shard_done)
    elif todo:
        from .rerankers import load_reranker

        reranker = load_reranker(spec)
        for shard in todo:
            store.write(shard.index, rerank_shard(reranker, shard, depth, keep_tail))
            shard_done(shard.index)
    store.join(out, len(shards))
    return RerankRunResult(out, len(run), len(shards), len(before), len(todo), workers if ray_address else 1,
                           ray_address is not None)
