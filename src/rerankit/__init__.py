"""rerankit: two-stage retrieval with reranking, evaluation, a CLI and a service."""

from .errors import (
    DataFormatError,
    IndexNotFoundError,
    InvalidInputError,
    ModelNotFoundError,
    RerankitError,
    UnknownSpecError,
)
from .rerankers import Reranker, load_reranker, register
from .types import Document, RankedResult

__version__ = "0.1.0"

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
    "__version__",
]
