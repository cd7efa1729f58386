"""``voyage:MODEL``: Voyage AI's rerank API, ``POST {base}/rerank`` (``https://api.voyageai.com/v1`` by default).

Request ``{query, documents, model, top_k, truncation}``, answer ``{data: [{index, relevance_score}]}``.
Key from ``api_key=`` or ``VOYAGE_API_KEY``; base URL from ``base_url=`` or ``VOYAGE_API_URL``. Voyage
takes at most 1,000 documents per call (larger lists are batched). Scores are Voyage's ``relevance_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .hosted import (
    DEFAULT_TIMEOUT_S,
    HostedReranker,
    api_key_from_env,
    first_env,
    post_json,
    scores_from_items,
    split_options,
)
from .retry import ProviderError, RetryPolicy

KEY_ENV = ("VOYAGE_API_KEY",)
URL_ENV = ("VOYAGE_API_URL",)
DEFAULT_BASE_URL = "https://api.voyageai.com/v1"
OPTIONS = {"timeout": float, "max_retries": int, "batch_size": int, "truncation": bool}


class VoyageReranker(HostedReranker):
    """Voyage's rerank endpoint; ``truncation`` (default true) lets Voyage cut over-long inputs."""

    provider = "voyage"
    max_batch = 1000

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        truncation: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(model, timeout=timeout, max_retries=max_retries, retry=retry, batch_size=batch_size, name=name)
        self.api_key = api_key_from_env(self.provider, api_key, KEY_ENV)
        self.url = (base_url or first_env(URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/") + "/rerank"
        self.truncation = truncation

    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        body = {"query": query, "documents": texts, "model": self.model, "top_k": len(texts),
                "truncation": self.truncation}
        answer = post_json(self.http_client(), self.provider, self.url, body,
                           {"Authorization": f"Bearer {self.api_key}"})
        if not isinstance(answer, dict) or "data" not in answer:
            raise ProviderError(self.provider, f"unusable answer from {self.url}: no 'data'")
        return scores_from_items(self.provider, answer["data"], len(texts))


def load_voyage(arg: str, **kwargs: Any) -> VoyageReranker:
    """``voyage:MODEL[?timeout=S&max_retries=N&batch_size=N&truncation=BOOL]``."""
    model, options = split_options(arg, OPTIONS)
    return VoyageReranker(model, **{**options, **kwargs})
