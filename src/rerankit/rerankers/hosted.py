"""The shared base of hosted rerankers (Cohere, Jina, Voyage, remote servers): API keys, spec options,
batching above the provider's documents-per-call limit, the answers' score lists, and the base of the
bearer-key JSON rerank APIs (``JsonApiReranker``). The HTTP calls and retries are ``rerankit.http_client``'s."""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import numpy as np

from ..errors import ProviderError, UnknownSpecError
from ..http_client import HttpConnection, RetryPolicy, with_retries
from ..settings import env_names, settings
from ..types import Document, DocumentInput, RankedResult, normalize_documents
from ..validation import positive_int, validate_top_k
from .base import Reranker, rank_documents

DEFAULT_TIMEOUT_S = 30.0


def api_key_from_env(provider: str, explicit: str | None, setting: str) -> str:
    """``explicit`` or the key the environment holds for ``setting`` (a ``Settings`` field); else ``ProviderError``."""
    value = explicit or getattr(settings(), setting)
    if value:
        return value
    raise ProviderError(provider, f"no API key: pass api_key=... or set {' or '.join(env_names(setting))}")


def split_options(arg: str, allowed: Mapping[str, type]) -> tuple[str, dict[str, Any]]:
    """``"MODEL?key=value&key=value"`` -> ``("MODEL", {key: value})``, values converted to ``allowed[key]``."""
    arg, sep, query = arg.partition("?")
    options: dict[str, Any] = {}
    if not sep:
        return arg, options
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise UnknownSpecError(f"unknown option {key!r} in spec {arg}?{query}; known: {', '.join(sorted(allowed))}")
        options[key] = convert_option(key, value, allowed[key])
    return arg, options


def convert_option(key: str, value: str, kind: type) -> Any:
    """A spec option's text as ``int``, ``float``, ``bool`` or ``str``."""
    try:
        if kind is bool:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return kind(value)
    except ValueError as exc:
        raise UnknownSpecError(f"option {key}={value!r} is not a valid {kind.__name__}") from exc


def scores_from_items(
    provider: str, items: Any, count: int, score_key: str = "relevance_score", index_key: str = "index"
) -> np.ndarray:
    """Scores in input order from ``[{index, score}, ...]``; each of the ``count`` indices must come exactly once."""
    if not isinstance(items, list):
        raise ProviderError(provider, f"unusable answer: expected a list of results, got {type(items).__name__}")
    scores = np.full(count, np.nan, dtype=np.float64)
    for item in items:
        try:
            index, score = item[index_key], float(item[score_key])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(provider, f"unusable answer: result {item!r} has no {index_key}/{score_key}") from exc
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ProviderError(provider, f"unusable answer: index {index!r} is not in 0..{count - 1}")
        if not np.isnan(scores[index]):
            raise ProviderError(provider, f"unusable answer: index {index} comes twice")
        scores[index] = score
    missing = np.flatnonzero(np.isnan(scores))
    if missing.size:
        raise ProviderError(provider, f"unusable answer: no score for {missing.size} of {count} documents "
                                      f"(first missing index {int(missing[0])})")
    return scores


def listed_scores(provider: str, url: str, answer: Any, field: str, count: int) -> np.ndarray:
    """Scores in input order from an answer ``{field: [{index, relevance_score}, ...]}``."""
    if not isinstance(answer, Mapping) or field not in answer:
        raise ProviderError(provider, f"unusable answer from {url}: no {field!r}")
    return scores_from_items(provider, answer[field], count)


class HostedReranker(Reranker):
    """A reranker behind an HTTP API: scores come from ``_call`` on batches of at most ``batch_size``
    documents (the provider's per-call limit by default), merged back in input order.

    Each call is retried per ``retry`` (``RetryPolicy``; ``max_retries`` sets its retry count); each
    HTTP request waits at most ``timeout`` seconds. Results name the backend (``RankedResult.backend``).
    Scores keep the provider's own range (``score_kind = "provider"``).
    """

    score_kind = "provider"
    provider: ClassVar[str] = "hosted"
    max_batch: ClassVar[int] = 1000

    def __init__(
        self,
        model: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        if not model:
            raise UnknownSpecError(f"'{self.provider}:' needs a model name after the colon")
        self._connection = HttpConnection(timeout, retry, max_retries)
        batch_size = self.max_batch if batch_size is None else batch_size
        self.model, self.batch_size = model, positive_int(batch_size, "batch_size")
        self.timeout, self.retry = self._connection.timeout, self._connection.retry
        self.name = name or f"{self.provider}:{model}"
        self._lock = threading.Lock()

    @abstractmethod
    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        """Scores of one batch (at most ``batch_size`` texts), in the batch's order."""

    def http_client(self) -> Any:
        """One ``httpx.Client`` per reranker (thread-safe, keeps connections alive)."""
        return self._connection.client()

    def close(self) -> None:
        self._connection.close()

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        texts = [d.full_text for d in documents]
        scores = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            part = with_retries(lambda batch=batch: self._call(query, batch), self.retry, "rerank request")
            scores[start : start + len(batch)] = part
        return scores

    def rerank(self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None) -> list[RankedResult]:
        """As ``Reranker.rerank``; every result's ``backend`` is this reranker's ``name``."""
        top_k = validate_top_k(top_k)
        docs = normalize_documents(documents)
        return rank_documents(self.score(query, docs), docs, top_k, backend=self.name)


class JsonApiReranker(HostedReranker):
    """A rerank API that takes a JSON POST to ``{base URL}/rerank`` with a bearer key and answers
    ``{results_field: [{index, relevance_score}, ...]}`` (Jina, Voyage). A subclass names its provider,
    settings (environment variables) and default base URL, and builds the request body."""

    key_setting: ClassVar[str]  # the Settings fields of its API key and base URL
    url_setting: ClassVar[str]
    default_base_url: ClassVar[str]
    results_field: ClassVar[str] = "results"

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
        self.api_key = api_key_from_env(self.provider, api_key, self.key_setting)
        self.url = (base_url or getattr(settings(), self.url_setting) or self.default_base_url).rstrip("/") + "/rerank"

    @abstractmethod
    def request_body(self, query: str, texts: list[str]) -> dict[str, Any]:
        """The JSON body that asks for the scores of ``texts``."""

    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        answer = self._connection.post_json(self.provider, self.url, self.request_body(query, texts), self.api_key)
        return listed_scores(self.provider, self.url, answer, self.results_field, len(texts))
