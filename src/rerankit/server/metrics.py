"""Prometheus metrics of one server process (its own registry, so that several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
DOCUMENT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
REQUEST_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)


class Metrics:
    """Requests, documents, batch sizes, queue wait and latency histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rerankit_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("rerankit_request_duration_seconds", "HTTP request latency, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_progress = Gauge("rerankit_requests_in_progress", "Rerank requests being answered now.",
                                 registry=r)
        self.documents = Counter("rerankit_documents", "Documents reranked, by endpoint and model.",
                                 ["endpoint", "model"], registry=r)
        self.batch_documents = Histogram("rerankit_batch_documents", "Documents per model call of the batcher.",
                                         ["model"], buckets=DOCUMENT_BUCKETS, registry=r)
        self.batch_requests = Histogram("rerankit_batch_requests", "Requests merged into one model call.",
                                        ["model"], buckets=REQUEST_BUCKETS, registry=r)
        self.queue_wait = Histogram("rerankit_queue_wait_seconds", "Time a request waits before its model call.",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("rerankit_inference_seconds", "Duration of one model call of the batcher.",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_documents = Gauge("rerankit_queue_documents", "Documents waiting in the model's queue.",
                                     ["model"], registry=r)
        self.rejected = Counter("rerankit_overloaded", "Requests refused with 429 because the queue was full.",
                                ["model"], registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
