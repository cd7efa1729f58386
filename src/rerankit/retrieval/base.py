"""What a first stage implements (``Retriever``, returning ``RankedResult``s) and the two-stage step
(``retrieve_and_rerank``, which ``Pipeline`` and the CLI share)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..types import Document, DocumentInput, RankedResult, normalize_documents
from ..validation import positive_int

if TYPE_CHECKING:
    from ..rerankers.base import Reranker


MODES = ("bm25", "dense", "hybrid")  # the first stages an index offers


@runtime_checkable
class Retriever(Protocol):
    """A first stage: the ``k`` best passages for a query, best first, as ``RankedResult``s whose ``index`` is
    the passage's position in the retriever's collection and ``rank`` its 0-based rank."""

    def search(self, query: str, k: int) -> list[RankedResult]: ...


def prepare_passages(passages: Sequence[DocumentInput]) -> list[Document]:
    """Passages to index as validated documents; a missing id becomes the 0-based position; ids must be unique."""
    docs = normalize_documents(passages)
    if not docs:
        raise InvalidInputError("cannot build an index over no passages")
    docs = [d if d.id is not None else Document(d.text, d.title, str(i), d.metadata) for i, d in enumerate(docs)]
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise InvalidInputError(f"duplicate passage id {doc.id!r}")
        seen.add(doc.id)  # type: ignore[arg-type]
    return docs


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first; ties by lower index (argpartition, then sort)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    # argpartition may cut a tie at the boundary arbitrarily: widen to every index tied with the k-th score.
    kth = scores[candidates].min()
    candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:k]


def hits_from_scores(documents: Sequence[Document], indices: np.ndarray, scores: np.ndarray) -> list[RankedResult]:
    """Results for parallel arrays of document indices and scores, already best first."""
    return [RankedResult(int(i), float(s), documents[int(i)], r) for r, (i, s) in enumerate(zip(indices, scores))]


def retrieve_and_rerank(
    retriever: Retriever,
    query: str,
    k: int,
    candidates: int,
    reranker: Reranker | None = None,
) -> list[RankedResult]:
    """Retrieve ``max(candidates, k)`` passages, rerank them if a reranker is given, keep the best ``k``.

    Each result's ``index`` is its first-stage rank and ``first_stage_score`` the retriever's score."""
    return ranked_candidates(retriever, query, k, candidates, reranker)[0]


def ranked_candidates(retriever: Retriever, query: str, k: int, candidates: int,
                      reranker: Reranker | None = None) -> tuple[list[RankedResult], int]:
    """``retrieve_and_rerank``'s results and how many passages the first stage returned."""
    k, candidates = positive_int(k, "k"), positive_int(candidates, "candidates")
    hits = retriever.search(query, max(k, candidates) if reranker is not None else k)
    if reranker is None or not hits:
        return [RankedResult(i, h.score, h.document, i, first_stage_score=h.score) for i, h in enumerate(hits[:k])], len(hits)
    results = reranker.rerank(query, [h.document for h in hits], top_k=k)
    return [replace(r, first_stage_score=hits[r.index].score) for r in results], len(hits)
