"""The ``Reranker`` façade that every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np

from ..types import Document, DocumentInput, RankedResult, normalize_documents, normalize_query
from ..validation import validate_top_k

ScoreKind = Literal["probability", "logit", "similarity", "provider"]


def order_by_score(scores: np.ndarray) -> np.ndarray:
    """Indices best first; ties keep their original order (stable sort on the negated scores)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def rank_documents(
    scores: np.ndarray, documents: Sequence[Document], top_k: int | None = None, backend: str | None = None
) -> list[RankedResult]:
    """Turn per-document scores into ``RankedResult`` objects, best first, ties by input position.

    ``backend``, if given, is recorded in every result (which backend produced the scores)."""
    order = order_by_score(scores)
    if top_k is not None:
        order = order[:top_k]
    return [
        RankedResult(index=int(i), score=float(scores[i]), document=documents[i], rank=r, backend=backend)
        for r, i in enumerate(order)
    ]


class Reranker(ABC):
    """Scores documents against a query; ``rerank`` sorts them best first.

    Subclasses implement ``_score`` on validated ``Document`` objects and set ``score_kind``
    to say what their scores are (``probability`` in [0, 1], raw ``logit``, cosine ``similarity``).
    """

    score_kind: ClassVar[ScoreKind] = "logit"
    name: str = "reranker"
    #: whether ``score_many`` shares model calls across queries (a service batches concurrent requests
    #: through it); the default ``score_many`` only loops over ``score``
    batches_queries: ClassVar[bool] = False

    @abstractmethod
    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        """One float per document, higher is more relevant."""

    def score(self, query: str, documents: Sequence[DocumentInput]) -> np.ndarray:
        """Relevance scores of ``documents`` for ``query``, in input order (float32 array)."""
        query = normalize_query(query)
        docs = normalize_documents(documents)
        if not docs:
            return np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._score(query, docs), dtype=np.float32)
        if scores.shape != (len(docs),):
            raise RuntimeError(f"{type(self).__name__} returned {scores.shape} scores for {len(docs)} documents")
        return scores

    def score_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[DocumentInput]]) -> list[np.ndarray]:
        """``score`` for several queries: one array per query, each equal to ``score``'s."""
        from ..errors import InvalidInputError

        if len(queries) != len(candidate_lists):
            raise InvalidInputError(f"{len(queries)} queries but {len(candidate_lists)} candidate lists")
        return [self.score(q, docs) for q, docs in zip(queries, candidate_lists)]

    def rerank(
        self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None
    ) -> list[RankedResult]:
        """Documents sorted best first (ties by original rank), cut to ``top_k`` if given."""
        top_k = validate_top_k(top_k)
        docs = normalize_documents(documents)
        scores = self.score(query, docs)
        return rank_documents(scores, docs, top_k)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, score_kind={self.score_kind!r})"
