"""Bi-encoder reranking: cosine similarity of query and document embeddings.

Score range: cosine similarity in [-1, 1] (``score_kind = "similarity"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER, embed, load_embedder
from ..types import Document
from .base import Reranker


class BiEncoderReranker(Reranker):
    """Ranks by the cosine of sentence-transformers embeddings (fast, approximate)."""

    score_kind = "similarity"

    def __init__(self, model_name_or_path: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> None:
        load_embedder(model_name_or_path)  # fail at load time, not at the first query
        self.name = f"bi-encoder:{model_name_or_path}"
        self.model_name = model_name_or_path
        self.batch_size = batch_size

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        vectors = embed([query, *[d.full_text for d in documents]], self.model_name, self.batch_size)
        return vectors[1:] @ vectors[0]
