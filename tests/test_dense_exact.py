"""Dense search stays exact when a bf16 copy of the matrix preselects the candidates."""

from __future__ import annotations

import numpy as np
import pytest

from rerankit.retrieval import dense
from rerankit.retrieval.base import top_k
from rerankit.retrieval.dense import DenseRetriever
from rerankit.types import Document


class FixedEmbedder:
    provider, model = "test", "fixed"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def embed(self, texts):
        return np.stack([self.vectors[t] for t in texts])


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_preselected_search_equals_the_full_float32_product(k, monkeypatch):
    rng = np.random.default_rng(0)
    matrix = unit(rng.normal(size=(30_000, 64)))
    matrix[1000:1010] = matrix[5]  # exact ties: lower row first, as the full product orders them
    queries = {f"q{i}": unit(rng.normal(size=64)) for i in range(5)}
    queries["tied"] = matrix[5].copy()
    queries["near"] = unit(matrix[7] + 0.01 * rng.normal(size=64))  # many close scores
    docs = [Document(text=str(i), id=str(i)) for i in range(len(matrix))]
    monkeypatch.setattr(dense, "_BF16_MIN_ROWS", 1)
    retriever = DenseRetriever(docs, matrix, FixedEmbedder(queries))
    if retriever._bf16 is None:
        pytest.skip("this CPU has no bf16 units: the float32 product is used alone")
    for name, vector in queries.items():
        exact = matrix @ vector
        want = top_k(exact, k)
        hits = retriever.search(name, k)
        assert [h.document.id for h in hits] == [str(i) for i in want], name
        np.testing.assert_allclose([h.score for h in hits], exact[want], rtol=1e-6)
        rows, _ = retriever.scores(vector, k)
        assert len(rows) < len(matrix) // 2  # the preselection really narrows the work
