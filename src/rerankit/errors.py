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
]
