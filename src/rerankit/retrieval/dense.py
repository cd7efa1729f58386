"""Dense first stage: cosine similarity of normalized embeddings (one matmul, argpartition top-k).

Embedders turn texts into L2-normalized float32 rows: ``LocalEmbedder`` runs sentence-transformers
offline (all-MiniLM-L6-v2 by default); ``OpenAIEmbedder`` calls an OpenAI-compatible ``/embeddings`` endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER
from ..errors import EmbeddingServiceError, InvalidInputError, ProviderError
from ..http_client import HttpConnection, RetryPolicy, with_retries
from ..types import Document, RankedResult, normalize_query
from ..validation import positive_int
from .base import hits_from_scores, top_k

ProgressCallback = Callable[[int, int], None]  # (texts done, texts in all)


@runtime_checkable
class Embedder(Protocol):
    """Texts to L2-normalized float32 embeddings, one row per text."""

    provider: str
    model: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def embed_in_batches(
    embedder: Embedder, texts: Sequence[str], batch_size: int = 256, progress: ProgressCallback | None = None
) -> np.ndarray:
    """``embedder.embed`` over ``texts`` in batches, reporting progress after each batch."""
    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(embedder.embed(texts[start : start + batch_size]))
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


class LocalEmbedder:
    """A sentence-transformers model run locally (``encoders.embed``)."""

    provider = "local"

    def __init__(self, model: str = DEFAULT_BI_ENCODER, batch_size: int = 64) -> None:
        self.model, self.batch_size = model, batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from ..encoders import embed

        return embed(list(texts), self.model, self.batch_size)

    def __repr__(self) -> str:
        return f"LocalEmbedder(model={self.model!r})"


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint: ``POST {base_url}/embeddings`` in batches of ``batch_size``,
    through rerankit's HTTP client (``rerankit.http_client``: one kept-alive connection, retries with
    backoff on 429, 5xx, timeouts and lost connections). A failure is an ``EmbeddingServiceError``."""

    provider = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str = "text-embedding-3-small",
        batch_size: int = 128,
        timeout: float = 30.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url, self.api_key, self.model = base_url.rstrip("/"), api_key, model
        self.batch_size = positive_int(batch_size, "batch_size")
        self._connection = HttpConnection(timeout, retry, max_retries)
        self.timeout, self.retry = self._connection.timeout, self._connection.retry

    def _post(self, batch: list[str]) -> np.ndarray:
        url = f"{self.base_url}/embeddings"
        body = {"model": self.model, "input": batch}
        try:
            answer = with_retries(lambda: self._connection.post_json(self.provider, url, body, self.api_key),
                                  self.retry, "embeddings request")
        except ProviderError as exc:
            raise EmbeddingServiceError(f"embeddings request failed: {exc}") from exc
        try:
            data = answer["data"]
            if len(data) != len(batch):
                raise ValueError(f"{len(data)} embeddings for {len(batch)} inputs")
            data = sorted(data, key=lambda item: item.get("index", 0)) if all("index" in d for d in data) else data
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
            if vectors.ndim != 2:
                raise ValueError("embeddings of different lengths")
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingServiceError(f"embeddings endpoint {url} sent an unusable answer: {exc}") from exc
        return vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        parts = [self._post(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return normalize_rows(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)

    def close(self) -> None:
        """Close the kept-alive connection."""
        self._connection.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(base_url={self.base_url!r}, model={self.model!r})"


# bf16 rounds each unit-vector component to 8 significant bits, so a bf16 dot product of two unit
# vectors is within 2 * 2**-8 (about 0.008) of the exact one; candidates within this margin of the
# k-th approximate score are rescored exactly.
_BF16_MARGIN = 0.02
_BF16_MIN_ROWS = 20_000  # below this, the exact float32 product is already fast


class DenseRetriever:
    """``Retriever`` over a matrix of normalized passage embeddings (row ``i`` is ``documents[i]``).

    Search is exact. On CPUs with bf16 units and at least ``_BF16_MIN_ROWS`` passages, a bf16 copy
    of the matrix (half the memory traffic) preselects every passage whose approximate score is
    within ``_BF16_MARGIN`` of the k-th best, and those are rescored in float32: the same hits as a
    float32 product over all rows, in a fraction of the time.
    """

    def __init__(self, documents: Sequence[Document], embeddings: np.ndarray, embedder: Embedder) -> None:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(documents):
            raise InvalidInputError(f"need one embedding row per document: {embeddings.shape} for {len(documents)}")
        self.documents, self.embeddings, self.embedder = list(documents), embeddings, embedder
        self._bf16 = self._bf16_copy(embeddings)
        if self._bf16 is not None:  # the bf16 preselection's threads, read once (the settings are read at load)
            from ..engine.hardware import engine_threads

            self._threads = engine_threads()

    @staticmethod
    def _bf16_copy(embeddings: np.ndarray):
        if embeddings.shape[0] < _BF16_MIN_ROWS:
            return None
        from ..engine.hardware import has_bf16_units

        if not has_bf16_units():
            return None
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return None
        return torch.from_numpy(embeddings).to(torch.bfloat16)

    def scores(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, exact float32 scores) of every row that can be in the top ``k``."""
        if self._bf16 is None or k >= self.embeddings.shape[0]:
            return np.arange(self.embeddings.shape[0]), self.embeddings @ vector
        import torch

        torch.set_num_threads(self._threads)
        approx = torch.mv(self._bf16, torch.from_numpy(vector).to(torch.bfloat16)).float().numpy()
        kth = np.partition(approx, -k)[-k]
        rows = np.flatnonzero(approx >= kth - _BF16_MARGIN)
        return rows, self.embeddings[rows] @ vector

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], embedder: Embedder | None = None, progress: ProgressCallback | None = None
    ) -> DenseRetriever:
        """Embed ``documents`` (title and text) with ``embedder`` (local all-MiniLM-L6-v2 by default)."""
        embedder = embedder or LocalEmbedder()
        return cls(documents, embed_in_batches(embedder, [d.full_text for d in documents], progress=progress), embedder)

    def search(self, query: str, k: int) -> list[RankedResult]:
        query, k = normalize_query(query), positive_int(k, "k")
        vector = self.embedder.embed([query])[0]
        if vector.shape[0] != self.embeddings.shape[1]:
            raise InvalidInputError(
                f"query embedding has {vector.shape[0]} dimensions but the passages have {self.embeddings.shape[1]}: "
                f"{self.embedder!r} is not the model the passages were embedded with"
            )
        rows, scores = self.scores(vector, k)
        order = top_k(scores, k)
        return hits_from_scores(self.documents, rows[order], scores[order])


def manifest_embedder(manifest: dict, where: str) -> LocalEmbedder:
    """The local embedder an index's manifest names; ``InvalidInputError`` for a remote one (``where``
    names the index in the message), whose embedder the caller must pass to ``load_index``."""
    info = manifest["embedding"]
    if info.get("provider") != "local":
        raise InvalidInputError(f"{where} was embedded with {info.get('provider')} model {info.get('model')!r}: "
                                "pass that embedder to load_index(..., embedder=...)")
    return LocalEmbedder(info["model"])
