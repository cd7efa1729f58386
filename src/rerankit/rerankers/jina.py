"""``jina:MODEL``: Jina AI's rerank API, ``POST {base}/rerank`` (``https://api.jina.ai/v1`` by default).

Request ``{model, query, documents, top_n, return_documents: false}``, answer
``{results: [{index, relevance_score}], usage}``. Key from ``api_key=`` or ``JINA_API_KEY``; base URL
from ``base_url=`` or ``JINA_API_URL``. Scores are Jina's ``relevance_score`` (documented in [0, 1]).
"""

from __future__ import annotations

from typing import Any

from .hosted import JsonApiReranker, split_options

OPTIONS = {"timeout": float, "max_retries": int, "batch_size": int}


class JinaReranker(JsonApiReranker):
    """Jina's rerank endpoint, in batches of at most 1,000 documents."""

    provider = "jina"
    max_batch = 1000
    key_setting, url_setting = "jina_api_key", "jina_api_url"
    default_base_url = "https://api.jina.ai/v1"

    def request_body(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {"model": self.model, "query": query, "documents": texts, "top_n": len(texts),
                "return_documents": False}


def load_jina(arg: str, **kwargs: Any) -> JinaReranker:
    """``jina:MODEL[?timeout=S&max_retries=N&batch_size=N]``."""
    model, options = split_options(arg, OPTIONS)
    return JinaReranker(model, **{**options, **kwargs})
