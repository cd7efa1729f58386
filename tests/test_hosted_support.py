"""Helpers for the hosted-API, LLM and pipeline tests (no tests here): stand-in HTTP servers on 127.0.0.1.

``StandIn`` answers each POST with what a test's ``reply(request)`` returns, records every request,
and can fail on purpose (429 with ``Retry-After``, 500, or sleeping past the client's timeout).
``chat_reply`` builds OpenAI chat-completions answers for the LLM stand-in.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCAL = "127.0.0.1"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (sleeps past a client's timeout)


Responder = Callable[[Request], Reply]


class StandIn:
    """A threaded HTTP server whose answers come from ``responder``; ``requests`` lists what it got."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[Request] = []
        self.release = threading.Event()  # set at exit: wakes handlers that still sleep
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with stand_in._lock:
                    stand_in.requests.append(request)
                reply = stand_in.responder(request)
                if reply.delay:
                    stand_in.release.wait(reply.delay)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.server = ThreadingHTTPServer((LOCAL, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOCAL}:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@contextlib.contextmanager
def stand_in(responder: Responder) -> Iterator[StandIn]:
    with StandIn(responder) as server:
        yield server


def scripted(*replies: Reply, then: Responder | None = None) -> Responder:
    """Answer with ``replies`` in order, then with ``then`` (or the last reply again)."""
    queue = list(replies)

    def respond(request: Request) -> Reply:
        if queue:
            return queue.pop(0)
        return then(request) if then is not None else replies[-1]

    return respond


def length_scores(texts: list[str]) -> list[float]:
    """The stand-ins' relevance: longer is better, scaled into (0, 1)."""
    return [len(t) / (1.0 + len(t)) for t in texts]


def cohere_like(request: Request) -> Reply:
    """Cohere v1/v2, Jina: ``{results: [{index, relevance_score}]}`` best first (so order != input order)."""
    scores = length_scores(request.body["documents"])
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return Reply(body={"results": [{"index": i, "relevance_score": scores[i]} for i in order]})


def voyage_like(request: Request) -> Reply:
    scores = length_scores(request.body["documents"])
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return Reply(body={"object": "list", "data": [{"index": i, "relevance_score": scores[i]} for i in order],
                       "model": request.body["model"], "usage": {"total_tokens": 1}})


def tei_like(request: Request) -> Reply:
    scores = length_scores(request.body["texts"])
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return Reply(body=[{"index": i, "score": scores[i]} for i in order])


def chat_reply(content: str) -> Reply:
    """An OpenAI chat-completions answer carrying ``content``."""
    return Reply(body={
        "id": "chatcmpl-test", "object": "chat.completion", "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    })


_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.S)


def window_passages(request: Request) -> list[str]:
    """The passages of a RankGPT conversation, in the order they were sent."""
    found = []
    for message in request.body["messages"]:
        match = _PASSAGE.match(message["content"]) if message["role"] == "user" else None
        if match:
            found.append(match.group(2))
    return found


def rank_by_number(request: Request) -> Reply:
    """An honest RankGPT stand-in: passages read ``relevance N ...``; it ranks them by N, highest first."""
    passages = window_passages(request)
    values = [int(re.search(r"relevance (\d+)", p).group(1)) for p in passages]
    order = sorted(range(len(values)), key=lambda i: -values[i])
    return chat_reply(" > ".join(f"[{i + 1}]" for i in order))
