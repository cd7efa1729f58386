"""rerankit: two-stage retrieval with reranking, evaluation, a CLI and a service."""

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
from .pipeline import Answer, ChatAnswerer, ExtractiveAnswerer, Pipeline, Source
from .rerankers import Reranker, load_reranker, register
from .rerankers.fallback import FallbackReranker
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
    "FallbackReranker",
    "RetryPolicy",
    "Pipeline",
    "Answer",
    "Source",
    "ExtractiveAnswerer",
    "ChatAnswerer",
    "__version__",
]
