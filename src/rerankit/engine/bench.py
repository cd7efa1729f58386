"""Measure reranking latency per backend, with sentence-transformers' ``CrossEncoder.predict`` as reference.

Used by ``rerankit bench``. Every timing is the median of ``repeats`` calls after one warm-up call,
one query against ``n`` candidates; all backends run in this process, one after the other.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from itertools import islice
from pathlib import Path


REFERENCE = "sentence-transformers"


@dataclass
class BenchRow:
    """One backend's figures: load time, median latency per candidate count, docs/s at the largest."""

    backend: str
    load_s: float
    latency_ms: dict[int, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def docs_per_s(self) -> float:
        if not self.latency_ms:
            return 0.0
        n = max(self.latency_ms)
        return n / (self.latency_ms[n] / 1000.0)


def demo_passages() -> tuple[str, list[str]]:
    """A query and the passages of rerankit's demo corpus."""
    raw = json.loads(resources.files("rerankit").joinpath("demo_data/support.json").read_text(encoding="utf-8"))
    return raw["demo_query"], [d["text"] for d in raw["corpus"]]


def corpus_passages(path: str | Path, limit: int = 1000) -> list[str]:
    """Texts (title + text) of the first ``limit`` documents of a BEIR ``corpus.jsonl`` (or a folder holding one)."""
    from ..datasets import read_corpus_jsonl

    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    return [d.full_text for d in islice(read_corpus_jsonl(path), limit)]


def candidates(passages: Sequence[str], n: int) -> list[str]:
    """``n`` candidates cycled from ``passages``."""
    return [passages[i % len(passages)] for i in range(n)]


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: lazy initialisation, allocator, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def bench_engine(model: str, backend: str, query: str, passages: Sequence[str], sizes: Sequence[int],
                 repeats: int, **engine_kwargs) -> BenchRow:
    """Load ``CrossEncoderReranker(model, backend=...)`` and time ``score`` for each size."""
    from ..rerankers.cross_encoder import CrossEncoderReranker

    start = time.perf_counter()
    try:
        engine = CrossEncoderReranker(model, backend=backend, **engine_kwargs)
    except Exception as exc:  # a backend that cannot run this model is reported, not fatal
        return BenchRow(backend, 0.0, error=f"{type(exc).__name__}: {exc}")
    row = BenchRow(engine.backend if backend != "auto" else f"auto ({engine.backend})", time.perf_counter() - start)
    for n in sizes:
        docs = candidates(passages, n)
        row.latency_ms[n] = _time(lambda: engine.score(query, docs), repeats)  # noqa: B023
    return row


def load_sentence_transformers(model: str, max_length: int | None = None):
    """``sentence_transformers.CrossEncoder`` on CPU with fp32 weights (whatever dtype the folder stores)."""
    import torch
    from sentence_transformers import CrossEncoder

    from ..loading import quiet_hf_logging

    quiet_hf_logging()
    return CrossEncoder(model, device="cpu", max_length=max_length, model_kwargs={"dtype": torch.float32})


def bench_sentence_transformers(model: str, query: str, passages: Sequence[str], sizes: Sequence[int],
                                repeats: int, batch_size: int = 32, max_length: int | None = None) -> BenchRow:
    """Time ``sentence_transformers.CrossEncoder(model).predict`` (its defaults, fp32, CPU)."""
    start = time.perf_counter()
    try:
        model_ = load_sentence_transformers(model, max_length)
    except Exception as exc:
        return BenchRow(REFERENCE, 0.0, error=f"{type(exc).__name__}: {exc}")
    row = BenchRow(REFERENCE, time.perf_counter() - start)
    for n in sizes:
        pairs = [(query, d) for d in candidates(passages, n)]
        predict = lambda: model_.predict(pairs, batch_size=batch_size, show_progress_bar=False)  # noqa: E731,B023
        row.latency_ms[n] = _time(predict, repeats)
    return row
