"""The dynamic micro-batcher: one bounded queue and one worker thread per model.

Requests wait in the queue while the worker runs the model; when it is free, the worker takes
everything pending (up to ``max_batch_documents``, whole requests only) and scores it in one call:
``score_many`` where the reranker has it (the engine packs pairs of all queries into shared
token-budget batches), else ``score`` per request. The event loop only enqueues and awaits, so it
never blocks on the model. When the queue holds more than ``max_queue_documents`` documents a new
request is refused with ``OverloadedError`` (answered 429 with ``Retry-After``) rather than waiting without bound.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import OverloadedError
from ..rerankers.base import Reranker
from .metrics import Metrics

ScoreMany = Callable[[Sequence[str], Sequence[Sequence[str]]], list]


def many_scorer(reranker: Reranker) -> ScoreMany | None:
    """The reranker's multi-query scorer where it shares model calls across queries (``batches_queries``:
    local cross-encoders and the fused default built on one); else None, and each request is scored alone."""
    return reranker.score_many if getattr(reranker, "batches_queries", False) else None


@dataclass
class _Job:
    query: str
    texts: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


def _resolve(job: _Job, result: np.ndarray | BaseException) -> None:
    def apply() -> None:
        if job.future.done():  # the client went away and the request was cancelled
            return
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(apply)
    except RuntimeError:  # that event loop is closed
        pass


class MicroBatcher:
    """Scores requests for one reranker, merging concurrent ones into shared model calls."""

    def __init__(self, reranker: Reranker, *, name: str, metrics: Metrics, max_queue_documents: int,
                 max_batch_documents: int) -> None:
        self.reranker = reranker
        self.name = name
        self.metrics = metrics
        self.max_queue_documents = max_queue_documents
        self.max_batch_documents = max_batch_documents
        self.score_many = many_scorer(reranker)
        self._queue: deque[_Job] = deque()
        self._pending = 0
        metrics.queue_documents.labels(name).set(0)  # exported from the start: autoscalers read it
        self._docs_per_s = 0.0
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._start()

    def _start(self) -> None:
        """Start the worker thread (again, after ``close``); call with ``_cond`` held or before any use."""
        self._closed = False
        self._generation += 1
        self._thread = threading.Thread(target=self._run, args=(self._generation,),
                                        name=f"rerankit-batcher-{self.name}", daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        return "score_many" if self.score_many is not None else "score"

    async def score(self, query: str, texts: list[str]) -> np.ndarray:
        """Scores of ``texts`` for ``query`` in input order; raises ``OverloadedError`` when the queue is full."""
        loop = asyncio.get_running_loop()
        job = _Job(query, texts, loop, loop.create_future())
        with self._cond:
            if self._closed:  # closed by an app shutdown, used again (an app may run several lifespans)
                self._start()
            if self._pending and self._pending + len(texts) > self.max_queue_documents:
                self.metrics.rejected.labels(self.name).inc()
                raise OverloadedError(self._pending, self.max_queue_documents, self._retry_after())
            self._queue.append(job)
            self._pending += len(texts)
            self.metrics.queue_documents.labels(self.name).set(self._pending)
            self._cond.notify()
        return await job.future

    def _retry_after(self) -> int:
        """Seconds until the queue has drained at the measured throughput (1 to 60)."""
        if self._docs_per_s <= 0:
            return 1
        return int(min(60, max(1, math.ceil(self._pending / self._docs_per_s))))

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker after the jobs already queued; a later ``score`` starts it again."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _take(self, generation: int) -> list[_Job] | None:
        """Wait for work; return whole jobs up to ``max_batch_documents`` (at least one), or None when
        closed and drained, or when a newer worker has replaced this one."""
        with self._cond:
            while not self._queue and not self._closed and generation == self._generation:
                self._cond.wait()
            if not self._queue or generation != self._generation:
                return None
            jobs, docs = [], 0
            while self._queue and (not jobs or docs + len(self._queue[0].texts) <= self.max_batch_documents):
                job = self._queue.popleft()
                jobs.append(job)
                docs += len(job.texts)
            self._pending -= docs
            self.metrics.queue_documents.labels(self.name).set(self._pending)
            return jobs

    def _run(self, generation: int) -> None:
        while True:
            jobs = self._take(generation)
            if jobs is None:
                return
            jobs = [j for j in jobs if not j.future.done()]
            if not jobs:
                continue
            start = time.perf_counter()
            for job in jobs:
                self.metrics.queue_wait.labels(self.name).observe(start - job.enqueued)
            results = self._score(jobs)
            elapsed = time.perf_counter() - start
            docs = sum(len(j.texts) for j in jobs)
            self.metrics.inference.labels(self.name).observe(elapsed)
            self.metrics.batch_documents.labels(self.name).observe(docs)
            self.metrics.batch_requests.labels(self.name).observe(len(jobs))
            if elapsed > 0:
                rate = docs / elapsed
                self._docs_per_s = rate if self._docs_per_s <= 0 else 0.8 * self._docs_per_s + 0.2 * rate
            for job, result in zip(jobs, results):
                _resolve(job, result)

    def _score(self, jobs: list[_Job]) -> list[np.ndarray | BaseException]:
        """One ``score_many`` call for all jobs, else (or if it fails) ``score`` per job, errors kept per job."""
        if self.score_many is not None:
            try:
                out = [np.asarray(s, dtype=np.float32) for s in self.score_many([j.query for j in jobs],
                                                                                  [j.texts for j in jobs])]
                if [len(s) for s in out] != [len(j.texts) for j in jobs]:
                    raise RuntimeError(f"score_many of {self.name} returned the wrong number of scores")
                return out
            except Exception as exc:  # noqa: BLE001 - find the job that failed by scoring each alone
                if len(jobs) == 1:
                    return [exc]
        results: list[np.ndarray | BaseException] = []
        for job in jobs:
            try:
                results.append(np.asarray(self.reranker.score(job.query, job.texts), dtype=np.float32))
            except Exception as exc:  # noqa: BLE001 - answered to that request only
                results.append(exc)
        return results
