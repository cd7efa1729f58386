"""Hybrid first stage: reciprocal rank fusion (RRF) of several rankings, e.g. BM25 and dense."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidInputError
from ..types import Document, RankedResult, normalize_query
from ..validation import positive_int
from .base import MODES, Retriever

RRF_K = 60


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse rankings of ids (best first): ``score(d) = sum over rankings of 1 / (k + rank)``, rank 1-based.

    Returns ``(id, score)`` best first; equal scores are ordered by id, so the result never depends on
    the order of the rankings. An id repeated within one ranking counts at its best position only.
    """
    positive_int(k, "rrf k", minimum=0)
    ranks: dict[str, list[int]] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for position, doc_id in enumerate(ranking, start=1):
            if doc_id not in seen:
                seen.add(doc_id)
                ranks.setdefault(doc_id, []).append(position)
    # Sum in a fixed (sorted) order so equal rank multisets give bit-identical scores.
    scores = {doc_id: sum(1.0 / (k + r) for r in sorted(rs)) for doc_id, rs in ranks.items()}
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


class HybridRetriever:
    """RRF of several retrievers (BM25 and dense): each returns ``depth`` candidates, the fusion keeps ``k``.

    The documents must carry ids: fusion matches passages by id. A result's ``score`` is the RRF score and its ``index`` the passage's position in the first retriever that returned it.
    """

    def __init__(self, retrievers: Sequence[Retriever], depth: int = 100, rrf_k: int = RRF_K) -> None:
        if not retrievers:
            raise InvalidInputError("HybridRetriever needs at least one retriever")
        self.retrievers, self.depth, self.rrf_k = list(retrievers), positive_int(depth, "depth"), rrf_k

    @classmethod
    def from_documents(cls, documents: Sequence[Document], **kwargs) -> HybridRetriever:
        """BM25 and dense retrieval (all-MiniLM-L6-v2) over ``documents`` in memory, fused."""
        from .bm25 import BM25Retriever
        from .dense import DenseRetriever

        return cls([BM25Retriever.from_documents(documents), DenseRetriever.from_documents(documents)], **kwargs)

    def search(self, query: str, k: int) -> list[RankedResult]:
        query, k = normalize_query(query), positive_int(k, "k")
        depth = max(k, self.depth)
        first_seen: dict[str, RankedResult] = {}
        rankings = []
        for retriever in self.retrievers:
            hits = retriever.search(query, depth)
            for hit in hits:
                if hit.document.id is None:
                    raise InvalidInputError("hybrid retrieval needs documents with ids")
                first_seen.setdefault(hit.document.id, hit)
            rankings.append([hit.document.id for hit in hits])
        fused = rrf(rankings, self.rrf_k)[:k]
        return [RankedResult(first_seen[doc_id].index, score, first_seen[doc_id].document, rank)
                for rank, (doc_id, score) in enumerate(fused)]


class SearchModes:
    """``retriever(mode)`` and ``search`` of an index: ``bm25``, ``dense`` or ``hybrid`` (RRF of the two),
    built once each from the subclass's ``_bm25_retriever()`` and ``_dense_retriever()``."""

    manifest: dict
    _retrievers: dict[str, Retriever]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def has_dense(self) -> bool:
        return bool(self.manifest.get("dense"))

    @property
    def default_mode(self) -> str:
        """``hybrid`` for indexes with embeddings, else ``bm25``."""
        return "hybrid" if self.has_dense else "bm25"

    def _bm25_retriever(self) -> Retriever:
        raise NotImplementedError

    def _dense_retriever(self) -> Retriever:
        raise NotImplementedError

    def retriever(self, mode: str | None = None) -> Retriever:
        """The first stage for ``mode`` (``bm25``, ``dense`` or ``hybrid``; default ``default_mode``)."""
        mode = mode or self.default_mode
        if mode not in MODES:
            raise InvalidInputError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
        if mode not in self._retrievers:
            if mode == "bm25":
                self._retrievers[mode] = self._bm25_retriever()
            elif mode == "dense":
                self._retrievers[mode] = self._dense_retriever()
            else:
                self._retrievers[mode] = HybridRetriever([self.retriever("bm25"), self.retriever("dense")])
        return self._retrievers[mode]

    def search(self, query: str, k: int = 10, mode: str | None = "bm25") -> list[RankedResult]:
        """The ``k`` best passages for ``query``, best first (``mode=None`` means ``default_mode``)."""
        return self.retriever(mode).search(query, positive_int(k, "k"))
