"""``voyage:MODEL``: Voyage AI's rerank API, ``POST {base}/rerank`` (``https://api.voyageai.com/v1`` by default).

Request ``{query, documents, model, top_k, truncation}``, answer ``{data: [{index, relevance_score}]}``.
Key from ``api_key=`` or ``VOYAGE_API_KEY``; base URL from ``base_url=`` or ``VOYAGE_API_URL``. Voyage
takes at most 1,000 documents per call (larger lists are batched). Scores are Voyage's ``relevance_score``.
"""

from __future__ import annotations

from typing import Any

from .hosted import JsonApiReranker, split_options

OPTIONS = {"timeout": float, "max_retries": int, "batch_size": int, "truncation": bool}


class VoyageReranker(JsonApiReranker):
    """Voyage's rerank endpoint; ``truncation`` (default true) lets Voyage cut over-long inputs. The other
    keyword arguments are ``JsonApiReranker``'s (``api_key``, ``base_url``, ``timeout``, ``max_retries``,
    ``retry``, ``batch_size``, ``name``)."""

    provider = "voyage"
    max_batch = 1000
    key_setting, url_setting = "voyage_api_key", "voyage_api_url"
    default_base_url = "https://api.voyageai.com/v1"
    results_field = "data"

    def __init__(self, model: str, *, truncation: bool = True, **options: Any) -> None:
        super().__init__(model, **options)
        self.truncation = truncation

    def request_body(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {"query": query, "documents": texts, "model": self.model, "top_k": len(texts),
                "truncation": self.truncation}


def load_voyage(arg: str, **kwargs: Any) -> VoyageReranker:
    """``voyage:MODEL[?timeout=S&max_retries=N&batch_size=N&truncation=BOOL]``."""
    model, options = split_options(arg, OPTIONS)
    return VoyageReranker(model, **{**options, **kwargs})
