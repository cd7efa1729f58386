"""The first stage over the demo corpus shipped in the package (so ``rerankit ask`` runs with no index)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..retrieval.base import Retriever


def demo_retriever() -> Retriever:
    """Hybrid BM25 + all-MiniLM-L6-v2 retrieval over the 7-passage support corpus (offline)."""
    from ..demo import load_demo_data
    from ..retrieval import HybridRetriever

    return HybridRetriever.from_documents(load_demo_data().corpus)
