"""What both adapters share: turning a reranker or a spec into a ``Reranker``, loaded once."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..rerankers.base import Reranker


def resolve(reranker: Any) -> Reranker:
    """``reranker`` itself, or ``load_reranker(reranker)`` for a spec string."""
    if isinstance(reranker, Reranker):
        return reranker
    if isinstance(reranker, str):
        from ..rerankers import load_reranker

        return load_reranker(reranker)
    raise InvalidInputError(f"reranker must be a rerankit Reranker or a spec string, got {type(reranker).__name__}")


def missing(package: str, extra: str) -> ImportError:
    return ImportError(f"this adapter needs {package}: pip install 'rerankit[{extra}]' (or pip install {package})")
