"""First-stage retrieval: BM25, dense and hybrid retrievers, passage sources, and a persistent index."""

from ..errors import EmbeddingServiceError
from .base import Retriever, retrieve_and_rerank
from .bm25 import BM25, BM25Retriever
from .dense import DenseRetriever, Embedder, LocalEmbedder, OpenAIEmbedder
from .hybrid import HybridRetriever, rrf
from .index import Index, build_index, load_index, read_manifest
from .sources import load_passages

__all__ = [
    "Retriever",
    "retrieve_and_rerank",
    "BM25",
    "BM25Retriever",
    "DenseRetriever",
    "Embedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "EmbeddingServiceError",
    "HybridRetriever",
    "rrf",
    "Index",
    "build_index",
    "load_index",
    "read_manifest",
    "load_passages",
]
