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

__all__ = [
    "RerankitError",
    "InvalidInputError",
    "UnknownSpecError",
    "ModelNotFoundError",
    "DataFormatError",
    "IndexNotFoundError",
    "BackendUnavailableError",
    "DatabaseError",
]
