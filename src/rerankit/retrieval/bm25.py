"""BM25 first stage on the ``bm25s`` library (sparse matrices, English stemming and stopwords)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..types import Document, RankedResult, normalize_query
from ..validation import positive_int
from .base import hits_from_scores


class BM25:
    """A BM25 index over a list of texts; ``search`` returns (indices, scores), best first."""

    def __init__(self, k1: float = 0.9, b: float = 0.4, language: str | None = "english") -> None:
        import bm25s

        self.k1, self.b, self.language = k1, b, language
        self._model = bm25s.BM25(k1=k1, b=b)
        self._size = 0

    def _stemmer(self):
        if not self.language:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.language)

    def _tokenize(self, texts: Sequence[str]):
        import bm25s

        return bm25s.tokenize(
            list(texts), stopwords="en" if self.language == "english" else None,
            stemmer=self._stemmer(), show_progress=False,
        )

    def query_terms(self, query: str) -> list[str]:
        """The query's terms as the index reads them (stemmed, stopwords out, repeats kept: each counts)."""
        import bm25s

        return bm25s.tokenize([query], stopwords="en" if self.language == "english" else None,
                              stemmer=self._stemmer(), show_progress=False, return_ids=False)[0]

    def index(self, texts: Sequence[str]) -> BM25:
        if not texts:
            raise InvalidInputError("cannot build a BM25 index over no texts")
        tokens = self._tokenize(texts)
        if not tokens.vocab:  # bm25s crashes with a bare ValueError on an empty vocabulary
            raise InvalidInputError("cannot build a BM25 index: the texts hold no indexable words")
        self._model.index(tokens, show_progress=False)
        self._size = len(texts)
        return self

    def __len__(self) -> int:
        return self._size

    def search_many(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) arrays of shape (len(queries), min(k, size)), best first; equal positive
        scores in document order, so the top ``k`` are the first ``k`` of any larger search (bm25s cuts
        a tie at the ``k``-th score arbitrarily: the search widens until it holds the whole tie).
        Zero-score hits trail in no set order."""
        if self._size == 0:
            raise InvalidInputError("the BM25 index is empty")
        k = min(k, self._size)
        tokens = self._tokenize(queries)
        wanted = k
        while True:
            indices, scores = self._model.retrieve(tokens, k=wanted, show_progress=False, n_threads=1)
            indices, scores = np.asarray(indices), np.asarray(scores, dtype=np.float32)
            kth = scores[:, k - 1]
            whole_tie = (kth <= 0) | (scores[:, wanted - 1] < kth) if wanted > k else kth <= 0
            if wanted == self._size or bool(np.all(whole_tie)):
                break
            wanted = min(self._size, max(2 * wanted, k + 16))
        order = np.lexsort((indices, -scores), axis=1)[:, :k]
        return np.take_along_axis(indices, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        indices, scores = self.search_many([query], k)
        return indices[0], scores[0]

    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder`` (the caller makes the write atomic)."""
        self._model.save(str(folder))

    @classmethod
    def load(cls, folder: str | Path, language: str | None = "english") -> BM25:
        import bm25s

        bm25 = cls.__new__(cls)
        bm25._model = bm25s.BM25.load(str(folder))
        bm25.k1, bm25.b, bm25.language = bm25._model.k1, bm25._model.b, language
        bm25._size = int(bm25._model.scores["num_docs"])
        return bm25


class BM25Retriever:
    """``Retriever`` over a ``BM25`` index and its documents; passages with a zero score are left out."""

    def __init__(self, bm25: BM25, documents: Sequence[Document]) -> None:
        if len(bm25) != len(documents):
            raise InvalidInputError(f"BM25 index has {len(bm25)} entries but {len(documents)} documents were given")
        self.bm25, self.documents = bm25, list(documents)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], **kwargs) -> BM25Retriever:
        return cls(BM25(**kwargs).index([d.full_text for d in documents]), documents)

    def search(self, query: str, k: int) -> list[RankedResult]:
        query, k = normalize_query(query), positive_int(k, "k")
        indices, scores = self.bm25.search(query, k)
        keep = scores > 0
        return hits_from_scores(self.documents, indices[keep], scores[keep])
