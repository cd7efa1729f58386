"""``cohere:MODEL``: Cohere Rerank through the official ``cohere`` SDK (v2 API, ``ClientV2.rerank``).

Key from ``api_key=`` or ``CO_API_KEY`` / ``COHERE_API_KEY``; base URL from ``base_url=`` or ``CO_API_URL``
(without ``/v2``: any Cohere-compatible server, e.g. ``rerankit serve``). Scores are Cohere's
``relevance_score`` in [0, 1]. The SDK's own retries are switched off: ``RetryPolicy`` retries instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ProviderError, ProviderTimeoutError
from ..http_client import RetryPolicy, is_retryable_status, parse_retry_after
from ..settings import settings
from .hosted import DEFAULT_TIMEOUT_S, HostedReranker, api_key_from_env, scores_from_items, split_options

OPTIONS = {"timeout": float, "max_retries": int, "batch_size": int, "max_tokens_per_doc": int}


class CohereReranker(HostedReranker):
    """Cohere's ``/v2/rerank``; batches of 1,000 documents (Cohere recommends at most 1,000 per call)."""

    provider = "cohere"
    max_batch = 1000

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens_per_doc: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(model, timeout=timeout, max_retries=max_retries, retry=retry, batch_size=batch_size, name=name)
        try:
            import cohere  # noqa: F401
        except ImportError as exc:
            raise ProviderError(self.provider,
                                "the cohere SDK is not installed: pip install 'rerankit[cohere]'") from exc
        self.api_key = api_key_from_env(self.provider, api_key, "cohere_api_key")
        self.base_url = (base_url or settings().cohere_api_url or "").rstrip("/") or None
        self.max_tokens_per_doc = max_tokens_per_doc
        self._sdk: Any = None

    def sdk(self) -> Any:
        """The ``cohere.ClientV2`` (built on first use, with retries off)."""
        with self._lock:
            if self._sdk is None:
                import cohere

                kwargs: dict[str, Any] = {"api_key": self.api_key, "timeout": self.timeout, "max_retries": 0}
                if self.base_url:
                    kwargs["base_url"] = self.base_url
                self._sdk = cohere.ClientV2(**kwargs)
            return self._sdk

    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        import httpx
        from cohere.core.api_error import ApiError

        options: dict[str, Any] = {"top_n": len(texts)}
        if self.max_tokens_per_doc is not None:
            options["max_tokens_per_doc"] = self.max_tokens_per_doc
        try:
            response = self.sdk().rerank(model=self.model, query=query, documents=texts,
                                         request_options={"max_retries": 0, "timeout": self.timeout}, **options)
        except ApiError as exc:
            status = exc.status_code
            body = exc.body.get("message", exc.body) if isinstance(exc.body, dict) else exc.body
            if status is not None and 200 <= status < 300:  # the SDK could not decode a success
                raise ProviderError(self.provider, f"unusable answer: {str(body)[:200]!r}") from exc
            raise ProviderError(self.provider, str(body)[:300], status,
                                retryable=status is None or is_retryable_status(status),
                                retry_after=parse_retry_after(exc.headers)) from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(self.provider, f"no answer within {self.timeout:g} s", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(self.provider, f"cannot reach the API: {type(exc).__name__}: {exc}",
                                retryable=True) from exc
        except (ValueError, TypeError) as exc:  # the SDK could not parse the answer
            raise ProviderError(self.provider, f"unusable answer: {type(exc).__name__}: {exc}"[:300]) from exc
        try:
            items = [{"index": r.index, "relevance_score": r.relevance_score} for r in response.results]
        except (AttributeError, TypeError) as exc:  # the SDK builds answers without validating them
            raise ProviderError(self.provider, f"unusable answer: {type(exc).__name__}: {exc}") from exc
        return scores_from_items(self.provider, items, len(texts))


def load_cohere(arg: str, **kwargs: Any) -> CohereReranker:
    """``cohere:MODEL[?timeout=S&max_retries=N&batch_size=N&max_tokens_per_doc=N]``."""
    model, options = split_options(arg, OPTIONS)
    return CohereReranker(model, **{**options, **kwargs})
