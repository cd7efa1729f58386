"""The dialect-independent core of a rerank request: check limits, pick the model, batch, order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from ..errors import OverloadedError, ServiceError
from ..rerankers.base import order_by_score
from .errors import OVERLOADED
from .limits import Limits
from .metrics import Metrics
from .models import ModelRegistry, ServedModel
from .tokens import count_tokens, truncate_tokens


@dataclass(frozen=True)
class Ranking:
    """Scores in input order (the reranker's own kind) and the indices to answer, best first."""

    model: ServedModel
    scores: np.ndarray
    order: np.ndarray

    @property
    def score_kind(self) -> str:
        return self.model.reranker.score_kind


class RerankService:
    """Validates a request's query and texts, scores them through the model's batcher, and orders them."""

    def __init__(self, registry: ModelRegistry, limits: Limits, metrics: Metrics) -> None:
        self.registry = registry
        self.limits = limits
        self.metrics = metrics

    async def rank(self, endpoint: str, model: str | None, query: str, texts: list[str], *,
                   top_n: int | None = None, max_tokens_per_doc: int | None = None,
                   field: str = "documents") -> Ranking:
        """Best-first order of ``texts`` for ``query`` (ties keep input order), cut to ``top_n``."""
        self.limits.check_documents(texts, field)
        self.limits.check_query(query)
        self.limits.check_top_n(top_n)
        self.limits.check_positive(max_tokens_per_doc, "max_tokens_per_doc")
        served = self.registry.get(model)
        if max_tokens_per_doc is not None:
            texts = await run_in_threadpool(truncate_tokens, served.tokenizer, texts, max_tokens_per_doc)
        try:
            scores = await served.batcher.score(query, texts)
        except OverloadedError as exc:
            raise ServiceError(OVERLOADED, f"model {served.name!r} is overloaded: {exc}; retry later",
                           {"Retry-After": str(exc.retry_after)}) from None
        self.metrics.documents.labels(endpoint, served.name).inc(len(texts))
        order = order_by_score(scores)
        return Ranking(served, scores, order[:top_n] if top_n is not None else order)

    async def count_tokens(self, ranking: Ranking, query: str, texts: list[str]) -> int:
        """Tokens of the request with the model's tokenizer (Jina's ``usage.total_tokens``)."""
        return await run_in_threadpool(count_tokens, ranking.model.tokenizer, query, texts)
