"""``http:URL``: any self-hosted rerank server (text-embeddings-inference, Infinity, ``rerankit serve``).

Two protocols; the URL's path picks one unless ``protocol=`` says otherwise:

- ``tei`` (a bare server URL or one ending in ``/rerank``): ``POST /rerank {query, texts, raw_scores,
  truncate: true}`` -> ``[{index, score}]``. TEI, and ``rerankit serve``. Batches of 32 (TEI's default
  ``--max-client-batch-size``).
- ``cohere`` (a URL ending in ``/v1/rerank`` or ``/v2/rerank``, or ``protocol=cohere``; a bare URL then
  gets ``/v1/rerank``): ``POST {model?, query, documents, top_n}`` -> ``{results: [{index, relevance_score}]}``.
  Infinity (``http://host:7997/rerank`` with ``protocol=cohere``), ``rerankit serve``, Jina-compatible servers.
  Batches of 1,000.

Options go in the keyword arguments or in the URL's query string (``?protocol=cohere&model=NAME&timeout=S``),
from which they are removed before the request. An API key (``api_key=`` or ``RERANKIT_HTTP_API_KEY``)
is sent as ``Authorization: Bearer``. Scores are the server's (TEI and rerankit: [0, 1] with
``raw_scores`` false).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from ..errors import InvalidInputError, UnknownSpecError
from ..http_client import RetryPolicy
from ..settings import settings
from .hosted import DEFAULT_TIMEOUT_S, HostedReranker, convert_option, listed_scores, scores_from_items

PROTOCOLS = ("tei", "cohere")
OPTIONS = {"protocol": str, "model": str, "timeout": float, "max_retries": int, "batch_size": int, "raw_scores": bool}
BATCH = {"tei": 32, "cohere": 1000}


def endpoint(url: str, protocol: str | None) -> tuple[str, str]:
    """The URL to POST to, and the protocol (from the path when ``protocol`` is None)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if protocol is None:
        protocol = "cohere" if path.endswith(("/v1/rerank", "/v2/rerank")) else "tei"
    if protocol not in PROTOCOLS:
        raise InvalidInputError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if not path.endswith("/rerank"):
        path += "/rerank" if protocol == "tei" else "/v1/rerank"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")), protocol


class RemoteReranker(HostedReranker):
    """A rerank server at ``url`` speaking the ``tei`` or ``cohere`` protocol."""

    provider = "http"

    def __init__(
        self,
        url: str,
        *,
        protocol: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        raw_scores: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")) or not urlsplit(url).netloc:
            raise UnknownSpecError(f"'http:' needs an http(s) URL after the colon, got {url!r}")
        self.url, self.protocol = endpoint(url, protocol)
        if self.protocol == "cohere" and urlsplit(self.url).path.endswith("/v2/rerank") and not model:
            raise InvalidInputError(f"{url}: a Cohere v2 endpoint needs a model name (model=... or ?model=NAME)")
        super().__init__(model or url, timeout=timeout, max_retries=max_retries, retry=retry,
                         batch_size=BATCH[self.protocol] if batch_size is None else batch_size,
                         name=name or f"http:{url}")
        self.remote_model, self.raw_scores = model, raw_scores
        self.api_key = api_key or settings().http_api_key or None

    def _call(self, query: str, texts: list[str]) -> np.ndarray:
        if self.protocol == "tei":
            body: dict[str, Any] = {"query": query, "texts": texts, "raw_scores": self.raw_scores, "truncate": True}
            answer = self._connection.post_json(self.provider, self.url, body, self.api_key)
            return scores_from_items(self.provider, answer, len(texts), score_key="score")
        body = {"query": query, "documents": texts, "top_n": len(texts)}
        if self.remote_model:
            body["model"] = self.remote_model
        answer = self._connection.post_json(self.provider, self.url, body, self.api_key)
        return listed_scores(self.provider, self.url, answer, "results", len(texts))


def load_http(arg: str, scheme: str = "", **kwargs: Any) -> RemoteReranker:
    """``http:URL[?protocol=tei|cohere&model=NAME&timeout=S&max_retries=N&batch_size=N&raw_scores=BOOL]``.

    ``scheme`` lets the bare spec ``http://host:port`` (prefix ``http``, argument ``//host:port``) work too.
    """
    url = f"{scheme}:{arg}" if scheme and arg.startswith("//") else arg
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in OPTIONS:
            options[key] = convert_option(key, value, OPTIONS[key])
        else:
            kept.append((key, value))
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return RemoteReranker(url, **{**options, **kwargs})
