"""The playground at ``/ui``: one page shipped in the package (no external asset) that shows the first stage
and up to three served rerankers side by side, and answers with citations.

- ``GET /ui``: the page; ``GET /ui/api/config``: the served models, the corpus, whether keys are needed.
- ``POST /ui/api/search`` ``{query, candidates, k, models, documents?}``: the first stage's top
  ``candidates`` over the served index (``rerankit serve --index DIR``, else the demo support corpus)
  or over pasted ``documents``, and each model's top ``k`` of them with its rank move and time.
- ``POST /ui/api/ask`` ``{query, candidates, k, model, documents?}``: the extractive answer from the
  model's top ``k``, with ``[n]`` citations of the returned sources.

The two API routes take the server's API keys like the rerank routes. Scoring goes through each
model's micro-batcher (``BatcherScorer``), so the page shares the queue and its limits with the API;
the first stage runs one search at a time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from importlib import resources

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from ..errors import OverloadedError, ServiceError
from ..rerankers.base import Reranker
from ..types import Document
from .errors import OVERLOADED
from .limits import Limits
from .models import ModelRegistry, ServedModel

PAGE_PATHS = ("/ui", "/ui/api/config")
API_PATHS = ("/ui/api/search", "/ui/api/ask")


class SearchRequest(BaseModel):
    query: str
    candidates: int = Field(20, ge=1, le=100)
    k: int = Field(10, ge=1, le=50)
    models: list[str] = Field(default_factory=list, max_length=3)
    documents: list[str] | None = Field(None, description="Pasted passages to search instead of the index")


class AskRequest(BaseModel):
    query: str
    candidates: int = Field(20, ge=1, le=100)
    k: int = Field(5, ge=1, le=20)
    model: str | None = None
    documents: list[str] | None = None


class BatcherScorer(Reranker):
    """A served model's scores through its micro-batcher, callable from a worker thread."""

    def __init__(self, served: ServedModel, loop: asyncio.AbstractEventLoop) -> None:
        self.served, self.loop = served, loop
        self.name = served.name
        self.score_kind = served.reranker.score_kind  # type: ignore[misc]

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        future = asyncio.run_coroutine_threadsafe(self.served.batcher.score(query, [d.full_text for d in documents]),
                                                  self.loop)
        try:
            return future.result(timeout=300)
        except OverloadedError as exc:
            raise ServiceError(OVERLOADED, f"model {self.served.name!r} is overloaded: {exc}; retry later",
                           {"Retry-After": str(exc.retry_after)}) from None


class _LockedRetriever:
    def __init__(self, retriever, lock: threading.Lock) -> None:
        self.retriever, self.lock = retriever, lock

    def search(self, query: str, k: int):
        with self.lock:
            return self.retriever.search(query, k)


class Playground:
    """The page's first stage (the served index or the demo corpus) and its two actions."""

    def __init__(self, registry: ModelRegistry, limits: Limits, index: str | None) -> None:
        self.registry, self.limits, self.index = registry, limits, index
        self.corpus = index or "demo support corpus"
        self.lock = threading.Lock()
        self._retriever = None

    def retriever(self, documents: list[str] | None):
        if documents is not None:
            from ..retrieval import HybridRetriever

            self.limits.check_documents(documents)
            with self.lock:
                return HybridRetriever.from_documents([Document(text=t, id=str(i)) for i, t in enumerate(documents)])
        with self.lock:
            if self._retriever is None:
                if self.index:
                    from ..retrieval import load_index

                    self._retriever = load_index(self.index).retriever()
                else:
                    from ..pipeline import demo_retriever

                    self._retriever = demo_retriever()
        return _LockedRetriever(self._retriever, self.lock)

    def search(self, body: SearchRequest, loop: asyncio.AbstractEventLoop) -> dict:
        self.limits.check_query(body.query)
        models = [self.registry.get(name) for name in (body.models or [self.registry.default.name])]
        retriever = self.retriever(body.documents)
        start = time.perf_counter()
        hits = retriever.search(body.query, body.candidates)
        first_ms = (time.perf_counter() - start) * 1000
        docs = [h.document for h in hits]
        columns = []
        for served in models:
            start = time.perf_counter()
            results = BatcherScorer(served, loop).rerank(body.query, docs, top_k=body.k) if docs else []
            columns.append({"model": served.name, "ms": round((time.perf_counter() - start) * 1000, 1),
                            "score_kind": served.reranker.score_kind,
                            "results": [{"rank": r.rank + 1, "first_stage_rank": r.index + 1,
                                         "score": float(r.score), "id": docs[r.index].id} for r in results]})
        return {"query": body.query, "corpus": self.corpus,
                "first_stage": {"ms": round(first_ms, 1), "hits": [
                    {"rank": h.rank + 1, "id": h.document.id, "title": h.document.title, "text": h.document.text,
                     "score": float(h.score)} for h in hits]},
                "rerankers": columns}

    def ask(self, body: AskRequest, loop: asyncio.AbstractEventLoop) -> dict:
        from ..pipeline import ExtractiveAnswerer, Pipeline

        self.limits.check_query(body.query)
        scorer = BatcherScorer(self.registry.get(body.model), loop)
        pipeline = Pipeline(self.retriever(body.documents), scorer, ExtractiveAnswerer(scorer),
                            candidates=body.candidates, top_k=body.k)
        start = time.perf_counter()
        answer = pipeline.ask(body.query)
        return {"query": body.query, "answer": answer.text, "cited": answer.cited, "model": scorer.name,
                "answerer": answer.answerer, "ms": round((time.perf_counter() - start) * 1000, 1),
                "sources": [{"n": s.rank + 1, "id": s.id, "title": s.document.title, "text": s.document.text,
                             "score": float(s.score), "first_stage_rank": s.index + 1}
                            for s in answer.sources]}


def page_html() -> str:
    return resources.files("rerankit.server").joinpath("static/playground.html").read_text(encoding="utf-8")


def install_playground(app: FastAPI, registry: ModelRegistry, limits: Limits, index: str | None,
                       needs_key: bool) -> Playground:
    """Add the page and its API routes to ``app``."""
    playground = Playground(registry, limits, index)
    page = page_html()

    @app.get("/ui", include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; "
                                           "style-src 'unsafe-inline'; script-src 'unsafe-inline'"})

    @app.get("/ui/api/config", tags=["playground"], summary="What the playground can use")
    async def ui_config() -> dict:
        return {"models": registry.names, "corpus": playground.corpus, "needs_key": needs_key}

    @app.post("/ui/api/search", tags=["playground"], summary="First stage and rerankers side by side")
    async def ui_search(body: SearchRequest) -> dict:
        return await run_in_threadpool(playground.search, body, asyncio.get_running_loop())

    @app.post("/ui/api/ask", tags=["playground"], summary="An extractive answer with [n] citations")
    async def ui_ask(body: AskRequest) -> dict:
        return await run_in_threadpool(playground.ask, body, asyncio.get_running_loop())

    return playground
