"""The FastAPI application: Cohere v2/v1, Jina and TEI rerank routes, health, metrics and the OpenAPI docs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .. import __version__
from ..errors import InvalidInputError, ServiceError
from ..rerankers.base import Reranker
from .auth import KeyChecker
from .config import ServerConfig
from .errors import INTERNAL, INVALID, NOT_JSON, ErrorKind
from .limits import Limits
from .metrics import Metrics
from .middleware import Guard
from .models import ModelRegistry
from .playground import API_PATHS as PLAYGROUND_API
from .playground import PAGE_PATHS as PLAYGROUND_PAGES
from .playground import install_playground
from .relevance import to_raw, to_relevance
from .responses import SafeJSONResponse, error_response
from .schemas.cohere import V1RerankRequest, V1RerankResponse, V2RerankRequest, V2RerankResponse, meta
from .schemas.common import ErrorMessage, Health, TeiError
from .schemas.tei import TeiRank, TeiRerankRequest
from .service import RerankService

RERANK_PATHS = ("/v2/rerank", "/v1/rerank", "/rerank")
OTHER_PATHS = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")

_bearer = HTTPBearer(auto_error=False, description="Needed only when the server has API keys.")
_COHERE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text} for code, text in (
        (400, "Invalid request, or above a documents/length limit"), (401, "Missing API key"),
        (403, "Wrong API key"), (404, "Unknown model"), (413, "Body above --max-body-bytes"),
        (429, "Queue full (Retry-After)"))}
_TEI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": TeiError, "description": text} for code, text in (
        (400, "Empty texts or query (error_type empty)"), (401, "Missing API key"), (403, "Wrong API key"),
        (404, "Unknown model"), (413, "Too many texts, too long, or body too large (validation)"),
        (422, "Invalid request (validation)"), (429, "Model overloaded (overloaded)"))}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """``invalid request: field: problem; ...`` from pydantic's errors (at most five)."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        if err.get("type") == "json_invalid":
            parts.append(f"body is not valid JSON ({(err.get('ctx') or {}).get('error', 'decode error')})")
        elif err.get("type") == "missing":
            parts.append(f"{loc or 'body'}: field required")
        else:
            parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid value')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(parts) + more


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return error_response(request.url.path, exc.kind, exc.message, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower() and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            return error_response(request.url.path, NOT_JSON, "the body must be JSON sent with "
                                  f"'Content-Type: application/json' (got {content_type or 'no Content-Type'})")
        return error_response(request.url.path, INVALID, _validation_message(errors))

    async def library_error(request: Request, exc: Exception) -> Response:
        return error_response(request.url.path, INVALID, f"invalid request: {exc}")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # FastAPI could not decode the body (not UTF-8, a number too long to parse)
            return error_response(request.url.path, INVALID,
                                  f"invalid request: body is not valid JSON ({exc.detail})", dict(exc.headers or {}))
        kind = ErrorKind(exc.status_code, exc.status_code, "validation")
        return error_response(request.url.path, kind, str(exc.detail), dict(exc.headers or {}))

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(request.url.path, INTERNAL, f"internal error ({type(exc).__name__})")

    app.add_exception_handler(ServiceError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(InvalidInputError, library_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)


def create_app(config: ServerConfig | None = None, *, rerankers: dict[str, Reranker] | None = None) -> FastAPI:
    """Load the models of ``config`` (or use ``rerankers``, by model name) and build the app.

    The models' batcher threads start here; they stop at the app's shutdown (or ``app.state.registry.close()``).
    """
    config = config or ServerConfig()
    metrics = Metrics()
    registry = ModelRegistry.build(config, metrics, rerankers)
    limits = Limits(config.max_documents, config.max_query_chars, config.max_document_chars)
    service = RerankService(registry, limits, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close()

    app = FastAPI(title="rerankit", version=__version__, lifespan=lifespan, default_response_class=SafeJSONResponse,
                  description="Reranking over HTTP in the Cohere (v1, v2), Jina and TEI dialects.")
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.config = config
    _install_error_handlers(app)
    app.add_middleware(Guard, keys=KeyChecker(config.api_keys), max_body_bytes=config.max_body_bytes,
                       metrics=metrics, protected=RERANK_PATHS + PLAYGROUND_API,
                       known=RERANK_PATHS + OTHER_PATHS + PLAYGROUND_PAGES + PLAYGROUND_API)
    install_playground(app, registry, limits, config.index, needs_key=bool(config.api_keys))
    secured = [Depends(_bearer)]

    @app.post("/v2/rerank", response_model=V2RerankResponse, responses=_COHERE_ERRORS, dependencies=secured,
              tags=["cohere"], summary="Cohere Rerank v2")
    async def rerank_v2(body: V2RerankRequest) -> Response:
        ranking = await service.rank("/v2/rerank", body.model, body.query, body.documents, top_n=body.top_n,
                                     max_tokens_per_doc=body.max_tokens_per_doc)
        relevance = to_relevance(ranking.scores, ranking.score_kind)
        results = [{"index": int(i), "relevance_score": float(relevance[i])} for i in ranking.order]
        return SafeJSONResponse({"id": str(uuid.uuid4()), "results": results, "meta": meta("2", len(body.documents))})

    @app.post("/v1/rerank", response_model=V1RerankResponse, responses=_COHERE_ERRORS, dependencies=secured,
              tags=["cohere", "jina"], summary="Cohere Rerank v1, and Jina's rerank API")
    async def rerank_v1(body: V1RerankRequest) -> Response:
        Limits.check_positive(body.max_chunks_per_doc, "max_chunks_per_doc")
        limits.check_count(len(body.documents))  # before building texts from the documents
        texts = body.texts()
        ranking = await service.rank("/v1/rerank", body.model, body.query, texts, top_n=body.top_n)
        relevance = to_relevance(ranking.scores, ranking.score_kind)
        with_docs = body.wants_documents()
        results = []
        for i in ranking.order:
            result: dict[str, Any] = {"index": int(i), "relevance_score": float(relevance[i])}
            if with_docs:
                result["document"] = body.returned_document(int(i))
            results.append(result)
        tokens = await service.count_tokens(ranking, body.query, texts)
        return SafeJSONResponse({"id": str(uuid.uuid4()), "results": results, "meta": meta("1", len(texts)),
                                 "model": body.model or ranking.model.name, "usage": {"total_tokens": tokens}})

    @app.post("/rerank", response_model=list[TeiRank], response_model_exclude_none=True, responses=_TEI_ERRORS,
              dependencies=secured, tags=["tei"], summary="text-embeddings-inference rerank")
    async def rerank_tei(body: TeiRerankRequest) -> Response:
        ranking = await service.rank("/rerank", body.model, body.query, body.texts, field="texts")
        scores = (to_raw if body.raw_scores else to_relevance)(ranking.scores, ranking.score_kind)
        ranks = []
        for i in ranking.order:
            rank: dict[str, Any] = {"index": int(i), "score": float(scores[i])}
            if body.return_text:
                rank["text"] = body.texts[i]
            ranks.append(rank)
        return SafeJSONResponse(ranks)

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness and the served models")
    async def health() -> Response:
        return SafeJSONResponse({"status": "ok", "models": [m.describe() for m in registry.models.values()]})

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics",
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def prometheus_metrics() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    return app

