"""LangChain adapter: ``RerankitCompressor``, a ``BaseDocumentCompressor`` that keeps the ``top_n``
documents best first, with the score in ``metadata["relevance_score"]`` (and the answering backend,
where the reranker names one, in ``metadata["rerank_backend"]``).

    from langchain_classic.retrievers import ContextualCompressionRetriever  # or langchain.retrievers
    compressor = RerankitCompressor(reranker="default", top_n=3)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._shared import missing, resolve

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise missing("langchain-core", "langchain") from exc

from pydantic import ConfigDict, Field, PrivateAttr


class RerankitCompressor(BaseDocumentCompressor):
    """Reranks LangChain documents with any rerankit reranker (an instance or a ``load_reranker`` spec)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = Field(default="default", description="A rerankit Reranker, or a spec for load_reranker.")
    top_n: int | None = Field(default=3, ge=1, description="Documents to keep; None keeps them all, reordered.")
    score_key: str = Field(default="relevance_score", description="Metadata key that receives the score.")
    _loaded: Any = PrivateAttr(default=None)

    def _reranker(self) -> Any:
        if self._loaded is None:
            self._loaded = resolve(self.reranker)
        return self._loaded

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The ``top_n`` most relevant ``documents`` for ``query``, best first, scores in metadata."""
        if not documents:
            return []
        results = self._reranker().rerank(query, [d.page_content for d in documents], top_k=self.top_n)
        kept = []
        for result in results:
            original = documents[result.index]
            metadata = {**original.metadata, self.score_key: result.score}
            if result.backend:
                metadata["rerank_backend"] = result.backend
            kept.append(Document(page_content=original.page_content, metadata=metadata, id=original.id))
        return kept
