"""The exception hierarchy: every error rerankit raises on purpose is a ``RerankitError``."""

from __future__ import annotations


class RerankitError(Exception):
    """Base class of every error rerankit raises on purpose."""


class InvalidInputError(RerankitError, ValueError):
    """A query, document, parameter or option that rerankit cannot use."""


class UnknownSpecError(InvalidInputError):
    """A reranker or retriever spec that names no known backend or model."""


class ModelNotFoundError(RerankitError):
    """A model that is neither shipped, nor a local folder, nor reachable on the hub."""


class DataFormatError(RerankitError):
    """A data file that cannot be parsed; the message names the file and the line."""


class IndexNotFoundError(RerankitError):
    """An on-disk index that is missing, incomplete or of an unknown version."""


class BackendUnavailableError(RerankitError):
    """An inference backend that this model, CPU or installation cannot run."""


class DatabaseError(RerankitError):
    """A database first stage that cannot be reached or lacks what it needs (the message says what to do)."""

class ProviderError(RerankitError):
    """A hosted API or remote server that failed: names the ``provider`` and the HTTP ``status`` (None when
    no answer came back). ``retryable`` errors (429, 5xx, timeouts, lost connections) are retried first."""

    def __init__(
        self,
        provider: str,
        message: str,
        status: int | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.provider, self.status, self.retryable, self.retry_after = provider, status, retryable, retry_after
        self.detail = message
        super().__init__(f"{provider}: HTTP {status}: {message}" if status is not None else f"{provider}: {message}")


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the timeout."""


class FallbackError(RerankitError):
    """Every reranker of a fallback chain failed; the message lists each failure."""


class EmbeddingServiceError(RerankitError):
    """An embeddings endpoint that failed, could not be reached, or answered something unusable."""


class OverloadedError(RerankitError):
    """A model's request queue is full; ``retry_after`` is the suggested wait in whole seconds (the service
    answers 429 with ``Retry-After``)."""

    def __init__(self, pending: int, limit: int, retry_after: int) -> None:
        super().__init__(f"{pending} documents are queued, the limit is {limit} (--max-queue-documents)")
        self.retry_after = retry_after


class ServiceError(RerankitError):
    """An error ``rerankit serve`` answers on purpose, as JSON in the dialect of the request's path: ``kind``
    (one of the ``ErrorKind`` values of ``rerankit.server.errors``) holds its HTTP statuses, ``headers`` any
    response headers to add."""

    def __init__(self, kind, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.headers = headers or {}


__all__ = [
    "RerankitError",
    "InvalidInputError",
    "UnknownSpecError",
    "ModelNotFoundError",
    "DataFormatError",
    "IndexNotFoundError",
    "BackendUnavailableError",
    "DatabaseError",
    "ProviderError",
    "ProviderTimeoutError",
    "FallbackError",
    "EmbeddingServiceError",
    "OverloadedError",
    "ServiceError",
]
