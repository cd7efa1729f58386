"""Rerankers: one façade (``Reranker``), one module per backend, a registry of spec prefixes."""

from .base import Reranker, rank_documents
from .registry import default_model_path, load_reranker, register, registered_prefixes

__all__ = ["Reranker", "load_reranker", "register", "registered_prefixes", "default_model_path", "rank_documents"]
