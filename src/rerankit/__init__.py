"""rerankit: two-stage retrieval with reranking, evaluation, a CLI and a service.

The top level holds what a user needs: ``load_reranker`` (and ``register``), the types (``Document``,
``RankedResult``, ``Reranker``, ``RetryPolicy``), ``Pipeline`` and ``Answer``, and the errors. The rest is
reached through its module: ``rerankit.retrieval`` (indexes and first stages), ``rerankit.pipeline``
(answerers), ``rerankit.evaluation``, ``rerankit.rerankers`` (the reranker classes), ``rerankit.settings``."""

from .errors import (
    BackendUnavailableError,
    DatabaseError,
    DataFormatError,
    EmbeddingServiceError,
    FallbackError,
    IndexNotFoundError,
    InvalidInputError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RerankitError,
    UnknownSpecError,
)
from .http_client import RetryPolicy
from .pipeline import Answer, Pipeline
from .rerankers import Reranker, load_reranker, register
from .types import Document, RankedResult
from .version import __version__

__all__ = [
    "Document",
    "RankedResult",
    "Reranker",
    "load_reranker",
    "register",
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
    "RetryPolicy",
    "Pipeline",
    "Answer",
    "__version__",
]
