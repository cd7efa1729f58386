"""``rerankit serve``: the HTTP rerank service (Cohere v1/v2, Jina and TEI dialects) on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInputError
from ..server import config as defaults
from .app import app


@app.command("serve")
def serve_command(
    models: list[str] = typer.Option(
        ["default"], "--model", "-m",
        help="[NAME=]SPEC of a model to serve (repeatable); requests pick one by name. Default: 'default'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Server processes (each loads its own copy of the models)."),
    backend: Optional[str] = typer.Option(
        None, "--backend",
        help="Engine backend for local models (auto, torch, torch-fp32, torch-bf16, torch-int8, onnx-fp32, onnx-int8)."),
    long_docs: str = typer.Option(
        "max", "--long-docs", help="Documents longer than the model's window: max (best of overlapping windows), "
                                   "mean, or first (truncate). Applies to cross-encoders."),
    api_keys: list[str] = typer.Option(
        [], "--api-key",
        help="Accept this Bearer key (repeatable). Also read from $RERANKIT_API_KEYS (comma-separated)."),
    api_keys_file: Optional[Path] = typer.Option(None, "--api-keys-file", help="A file of keys, one per line."),
    max_documents: int = typer.Option(defaults.DEFAULT_MAX_DOCUMENTS, "--max-documents", help="Documents per request."),
    max_query_chars: int = typer.Option(defaults.DEFAULT_MAX_QUERY_CHARS, "--max-query-chars",
                                        help="Characters per query."),
    max_document_chars: int = typer.Option(defaults.DEFAULT_MAX_DOCUMENT_CHARS, "--max-document-chars",
                                           help="Characters per document."),
    max_body_bytes: int = typer.Option(defaults.DEFAULT_MAX_BODY_BYTES, "--max-body-bytes",
                                       help="Bytes per request body."),
    max_queue_documents: int = typer.Option(
        defaults.DEFAULT_MAX_QUEUE_DOCUMENTS, "--max-queue-documents",
        help="Documents waiting per model before new requests get 429."),
    max_batch_documents: int = typer.Option(
        defaults.DEFAULT_MAX_BATCH_DOCUMENTS, "--max-batch-documents",
        help="Documents the batcher merges into one model call (whole requests)."),
    graceful_timeout: float = typer.Option(
        defaults.DEFAULT_GRACEFUL_TIMEOUT_S, "--graceful-timeout",
        help="Seconds to finish in-flight requests after SIGTERM."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    index: Optional[str] = typer.Option(
        None, "--index", help="The playground's first stage (/ui): an index folder or postgresql:// URL "
                              "(default: the demo support corpus)."),
    ray: bool = typer.Option(False, "--ray", help="Serve as a Ray Serve deployment (pip install 'rerankit[ray]')."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="With --ray: a running cluster's address (default: start a local one)."),
    replicas: Optional[int] = typer.Option(None, "--replicas", help="With --ray: replicas, each with its own models."),
    autoscale: Optional[str] = typer.Option(
        None, "--autoscale", help="With --ray: MIN:MAX replicas, scaled on ongoing requests."),
) -> None:
    """Serve rerankers over HTTP: POST /v2/rerank and /v1/rerank (Cohere, Jina), /rerank (TEI);
    GET /health, /metrics, /docs, and the playground at /ui."""
    from ..server.auth import collect_keys
    from ..server.config import ModelSpec, ServerConfig
    from ..server.run import serve

    config = ServerConfig(
        models=tuple(ModelSpec.parse(m) for m in models), backend=backend, long_docs=long_docs,
        api_keys=collect_keys(api_keys, api_keys_file), max_documents=max_documents,
        max_query_chars=max_query_chars, max_document_chars=max_document_chars, max_body_bytes=max_body_bytes,
        max_queue_documents=max_queue_documents, max_batch_documents=max_batch_documents,
        graceful_timeout_s=graceful_timeout, index=index)
    if not ray:
        if replicas is not None or autoscale is not None or ray_address is not None:
            raise InvalidInputError("--replicas, --autoscale and --ray-address go with --ray")
        serve(config, host=host, port=port, workers=workers, log_level=log_level)
        return
    from ..server.ray_serve import Scaling, serve_on_ray
    from ..server.run import check_address

    if workers != 1:
        raise InvalidInputError("--workers is for uvicorn; with --ray use --replicas or --autoscale")
    scaling = Scaling.parse(replicas, autoscale)
    check_address(host, port)
    serve_on_ray(config, host=host, port=port, scaling=scaling, address=ray_address, log_level=log_level)


@app.command("ui")
def ui_command(
    index: Optional[str] = typer.Argument(None, help="Index folder or postgresql:// URL (default: the demo corpus)."),
    models: list[str] = typer.Option(["default"], "--model", "-m", help="[NAME=]SPEC of a reranker (repeatable)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the page in the default browser."),
) -> None:
    """Serve the playground over INDEX and open it: the first stage and rerankers side by side, and Ask."""
    import threading
    import webbrowser

    from ..server.config import ModelSpec, ServerConfig
    from ..server.run import serve

    config = ServerConfig(models=tuple(ModelSpec.parse(m) for m in models), index=index)
    if open_browser:
        threading.Timer(3.0, webbrowser.open, args=(f"http://{host}:{port}/ui",)).start()
    serve(config, host=host, port=port, log_level="warning")
