"""``rerankit serve``: an HTTP rerank service that speaks Cohere (v1, v2), Jina and TEI.

One module per job: ``config`` (settings), ``errors`` / ``responses`` (error kinds and their
rendering per dialect), ``schemas`` (request and response bodies per dialect), ``auth`` (API
keys), ``limits`` (input limits), ``middleware`` (auth, body size and request metrics before the
body is parsed), ``batcher`` (the dynamic micro-batcher), ``models`` (the served rerankers),
``relevance`` (score mapping), ``tokens`` (token counting and truncation), ``metrics``
(Prometheus), ``service`` (validate, batch, rank), ``app`` (routes) and ``run`` (uvicorn).
"""

from __future__ import annotations

from typing import Any

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` imports FastAPI on first use only (the CLI imports this package for its defaults)."""
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
