"""LlamaIndex adapter: ``RerankitPostprocessor``, a ``BaseNodePostprocessor`` that returns the ``top_n``
nodes best first as ``NodeWithScore`` carrying the reranker's score.

    postprocessor = RerankitPostprocessor(reranker="default", top_n=3)
    query_engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[postprocessor])
"""

from __future__ import annotations

from typing import Any

from ._shared import missing, resolve

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise missing("llama-index-core", "llamaindex") from exc


class RerankitPostprocessor(BaseNodePostprocessor):
    """Reranks LlamaIndex nodes with any rerankit reranker (an instance or a ``load_reranker`` spec)."""

    reranker: Any = Field(default="default", description="A rerankit Reranker, or a spec for load_reranker.")
    top_n: int | None = Field(default=3, ge=1, description="Nodes to keep; None keeps them all, reordered.")
    _loaded: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "RerankitPostprocessor"

    def _reranker(self) -> Any:
        if self._loaded is None:
            self._loaded = resolve(self.reranker)
        return self._loaded

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("RerankitPostprocessor needs the query (query_bundle or query_str)")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        results = self._reranker().rerank(query_bundle.query_str, texts, top_k=self.top_n)
        return [NodeWithScore(node=nodes[r.index].node, score=r.score) for r in results]
