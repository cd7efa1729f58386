"""``jina:MODEL``: Jina AI's rerank API, ``POST {base}/rerank`` (``https://api.jina.ai/v1`` by default).

Request ``{model, query, documents, top_n, return_documents: false}``, answer
``{results: [{index, relevance_score}], usage}``. Key from ``api_key=`` or ``JINA_API_KEY``; base URL
from ``base_url=`` or ``JINA_API_URL``. Scores are Jina's ``relevance_score`` (documented in [0, 1]).
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

KEY_ENV = ("JINA_API_KEY",)
URL_ENV = ("JINA_API_URL",)
DEFAULT_BASE_URL = "https://api.jina.ai/v1"
OPTIONS = {"timeout": float, "max_retries": int, "batch_size": int}


class JinaReranker(HostedReranker):
    """Jina's rerank endpoint, in batches of at most 1,000 documents."""

    provider = "jina"
    max_batch = 1000

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(model, timeout=timeout, max_retries=max_retries, retry=retry, batch_size=batch_size, name=name)
        self.api_key = api_key_from_env(self.provider, api_key, KEY_ENV)
        self.url = (base_url or first_env(URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/") + "/rerank"

    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        body = {"model": self.model, "query": query, "documents": texts, "top_n": len(texts),
                "return_documents": False}
        answer = post_json(self.http_client(), self.provider, self.url, body,
                           {"Authorization": f"Bearer {self.api_key}"})
        if not isinstance(answer, dict) or "results" not in answer:
            raise ProviderError(self.provider, f"unusable answer from {self.url}: no 'results'")
        return scores_from_items(self.provider, answer["results"], len(texts))


def load_jina(arg: str, **kwargs: Any) -> JinaReranker:
    """``jina:MODEL[?timeout=S&max_retries=N&batch_size=N]``."""
    model, options = split_options(arg, OPTIONS)
    return JinaReranker(model, **{**options, **kwargs})
