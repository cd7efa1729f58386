"""Run the app on uvicorn: one process, or several workers that each rebuild it from the environment."""

from __future__ import annotations

import os
import socket

from ..errors import InvalidInputError
from ..validation import positive_int
from .config import ServerConfig

CONFIG_ENV = "RERANKIT_SERVE_CONFIG"


def check_address(host: str, port: int) -> None:
    """Fail early, with one clear line, when ``host:port`` cannot be bound."""
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port must be between 0 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInputError(f"cannot resolve --host {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def app_from_env():
    """The uvicorn factory of each worker process: the app for the config in ``$RERANKIT_SERVE_CONFIG``."""
    from ..settings import settings
    from .app import create_app

    return create_app(ServerConfig.from_json(settings().serve_config or ""))


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; uvicorn then stops accepting, finishes in-flight requests and exits.

    With one worker the models load here, before the port opens (a bad spec fails at once); with
    several, uvicorn starts that many processes and each loads its own copy.
    """
    import uvicorn

    positive_int(workers, "--workers")
    check_address(host, port)
    options = dict(host=host, port=port, log_level=log_level, timeout_graceful_shutdown=config.graceful_timeout_s)
    if workers == 1:
        from .app import create_app

        uvicorn.run(create_app(config), **options)
        return
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run("rerankit.server.run:app_from_env", factory=True, workers=workers, **options)
