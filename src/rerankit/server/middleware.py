"""An ASGI guard in front of the app: API keys and the body-size limit (checked before any body is parsed),
and per-request metrics.

The body limit is applied twice: a ``Content-Length`` above it is refused at once without reading,
and a body without one (chunked) is counted while it streams in and refused as soon as it passes
the limit, so that memory stays bounded by the limit.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ServiceError
from .auth import KeyChecker
from .errors import BODY_TOO_LARGE, INVALID
from .metrics import Metrics
from .responses import error_response


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class Guard:
    """Auth and body limit for ``protected`` paths; request counts and latency for every HTTP request."""

    def __init__(self, app: ASGIApp, *, keys: KeyChecker, max_body_bytes: int, metrics: Metrics,
                 protected: Collection[str], known: Collection[str]) -> None:
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.protected = frozenset(protected)
        self.known = frozenset(known)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.known else "other"
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        tracked = path in self.protected
        if tracked:
            self.metrics.in_progress.inc()
        try:
            if tracked:
                try:
                    receive = await self._admit(scope, receive)
                except ServiceError as exc:
                    await error_response(path, exc.kind, exc.message, exc.headers)(scope, receive, send_wrapper)
                    return
                if receive is None:  # the client went away while sending its body
                    status["code"] = 499  # nginx's "client closed request"
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            if tracked:
                self.metrics.in_progress.dec()
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive | None:
        """Check the key, then read the body within the limit; return a ``receive`` that replays it."""
        self.keys.check(_header(scope, b"authorization"))
        limit = self.max_body_bytes
        too_large = ServiceError(BODY_TOO_LARGE, f"request body above the limit of {limit} bytes (--max-body-bytes)")
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise ServiceError(INVALID, "invalid Content-Length header") from None
            if declared > limit:
                raise too_large
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > limit:
                raise too_large
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return replay
