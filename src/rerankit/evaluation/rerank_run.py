"""Rerank the top candidates of a first-stage run with a ``Reranker``, timing each query.

Ordering contract of the returned run, per query:

- The first-stage order is trec_eval's (score descending, ties by doc id descending), so
  "first-stage rank" means the rank the evaluator saw for the input run.
- The top ``depth`` candidates are reordered by reranker score, ties broken by first-stage rank.
  Their scores are the reranker scores; where two are equal, the later one is moved down by one
  float32 ulp (``numpy.nextafter``) so that evaluators which sort by score and break ties by doc id
  keep this order (trec_eval/pytrec_eval hold scores as 32-bit floats, so a float64 ulp would not do).
- Candidates below ``depth`` are kept (``keep_tail=True``, the default) after the reranked ones, in
  their first-stage order, with scores strictly below every reranked score (``floor(min) - 1 - i``,
  nudged like ties if needed); with ``keep_tail=False`` they are dropped.
- A query whose reranker scores include an infinity keeps the reranked order, written as rank-based
  scores (the number reranked minus the rank); NaN scores raise ``RerankitError``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..datasets import Run
from ..errors import DataFormatError, RerankitError
from ..rerankers.base import Reranker
from ..types import Document
from ..validation import positive_int
from .metrics import trec_order


@dataclass
class RerankTiming:
    """Wall-clock reranking time in milliseconds: total and per query (scoring calls only)."""

    total_ms: float = 0.0
    per_query_ms: dict[str, float] = field(default_factory=dict)
    num_docs: int = 0

    def summary(self) -> dict[str, float]:
        values = sorted(self.per_query_ms.values())
        if not values:
            return {"total_ms": self.total_ms, "num_queries": 0, "num_docs": self.num_docs}
        p95 = values[min(len(values) - 1, max(0, math.ceil(0.95 * len(values)) - 1))]
        return {
            "total_ms": self.total_ms,
            "num_queries": len(values),
            "num_docs": self.num_docs,
            "mean_query_ms": statistics.fmean(values),
            "median_query_ms": statistics.median(values),
            "p95_query_ms": p95,
            "max_query_ms": values[-1],
            "docs_per_second": self.num_docs / (self.total_ms / 1000.0) if self.total_ms > 0 else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "per_query_ms": dict(self.per_query_ms)}


class RerankedRun(dict):  # type: ignore[type-arg]
    """A Run (``qid -> {docid: score}``, best first) that also carries its ``timing``."""

    timing: RerankTiming

    def __init__(self, *args: Any, timing: RerankTiming | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timing = timing or RerankTiming()


def _strictly_decreasing(scores: Sequence[float]) -> list[float]:
    """Scores as float32 values, each one that is not below its predecessor moved one float32 ulp below it."""
    down = np.float32(-np.inf)
    out: list[np.float32] = []
    for s in scores:
        value = np.float32(s)
        if out and not value < out[-1]:
            value = np.nextafter(out[-1], down)
        out.append(value)
    return [float(v) for v in out]


def rerank_query(
    query: str,
    candidates: Mapping[str, float],
    corpus_by_id: Mapping[str, Document],
    reranker: Reranker,
    depth: int = 100,
    keep_tail: bool = True,
) -> dict[str, float]:
    """Rerank one query's candidates (see the module docstring for the ordering contract)."""
    head = reranked_head(candidates, corpus_by_id, depth)
    scores = reranker.score(query, [corpus_by_id[d] for d in head])
    return order_candidates(candidates, scores, depth, keep_tail, query, getattr(reranker, "name", type(reranker).__name__))


def reranked_head(candidates: Mapping[str, float], corpus_by_id: Mapping[str, Document], depth: int) -> list[str]:
    """The ids of the top ``depth`` candidates in first-stage (trec_eval) order; each needs a text."""
    head = trec_order(candidates)[:depth]
    missing = [d for d in head if d not in corpus_by_id]
    if missing:
        raise DataFormatError(
            f"{len(missing)} candidate(s) have no text in the corpus, e.g. doc id {missing[0]!r}"
        )
    return head


def order_candidates(candidates: Mapping[str, float], head_scores: Sequence[float] | np.ndarray, depth: int = 100,
                     keep_tail: bool = True, query: str = "", reranker_name: str = "the reranker") -> dict[str, float]:
    """A query's run entry from the reranker's scores of its ``reranked_head`` (the module docstring's contract)."""
    order = trec_order(candidates)
    head, tail = order[:depth], order[depth:]
    scores = np.asarray(head_scores, dtype=np.float32)
    if scores.shape != (len(head),):
        raise RerankitError(f"{reranker_name} gave {scores.shape} scores for {len(head)} candidates")
    nan_count = int(np.isnan(scores).sum())
    if nan_count:
        raise RerankitError(f"{reranker_name} gave NaN scores for {nan_count} of {len(head)} candidates of query {query!r}")
    # Stable sort on negated scores: equal scores keep first-stage order.
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
    ids = [head[i] for i in ranked]
    values = [float(scores[i]) for i in ranked]
    if not np.isfinite(scores).all():  # an infinite score has no score below it: keep the order, write ranks
        values = [float(len(values) - r) for r in range(len(values))]
    if keep_tail and tail:
        floor = math.floor(min(values)) if values else 0.0
        ids += tail
        values += [floor - 1.0 - j for j in range(len(tail))]
    return dict(zip(ids, _strictly_decreasing(values)))


def rerank_run(
    run: Run,
    queries: Mapping[str, str],
    corpus_by_id: Mapping[str, Document],
    reranker: Reranker,
    depth: int = 100,
    progress: bool = True,
    keep_tail: bool = True,
) -> RerankedRun:
    """Rerank the top ``depth`` candidates of every query in ``run``; the result carries ``.timing``.

    Every query of ``run`` needs a text in ``queries`` and every reranked candidate a document in
    ``corpus_by_id`` (else ``DataFormatError``). Queries are processed in sorted id order.
    """
    from tqdm.auto import tqdm

    positive_int(depth, "depth")
    missing = sorted(q for q in run if q not in queries)
    if missing:
        raise DataFormatError(f"{len(missing)} run queries have no text, e.g. query id {missing[0]!r}")
    no_text = sorted({d for docs in run.values() for d in trec_order(docs)[:depth] if d not in corpus_by_id})
    if no_text:  # checked up front so that a long run does not fail halfway
        raise DataFormatError(f"{len(no_text)} candidate(s) have no text in the corpus, e.g. doc id {no_text[0]!r}")
    timing = RerankTiming()
    out = RerankedRun(timing=timing)
    qids = sorted(run)
    bar = tqdm(qids, desc="reranking", unit="query", disable=not progress, leave=False)
    for qid in bar:
        start = time.perf_counter()
        out[qid] = rerank_query(queries[qid], run[qid], corpus_by_id, reranker, depth, keep_tail)
        elapsed = (time.perf_counter() - start) * 1000.0
        timing.per_query_ms[qid] = elapsed
        timing.total_ms += elapsed
        timing.num_docs += min(depth, len(run[qid]))
    return out
