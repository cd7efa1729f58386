"""Helpers for the ``rerankit serve`` tests (no tests here): a uvicorn server in a thread, gated rerankers.

A gated reranker blocks inside the model call until the test opens its gate, so that tests can
hold requests in flight (queue full, SIGTERM) without timing anything.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from rerankit.rerankers.base import Reranker
from rerankit.types import Document

LOCAL = "127.0.0.1"
PASSWORD_QUERY = "How do I reset my password?"
PASSWORD_DOCS = [
    "Our office is closed on public holidays.",
    "To reset your password, click 'Forgot password?' on the sign-in page and follow the emailed link.",
    "Invoices are sent on the first day of each month.",
    "The mobile app supports dark mode.",
]


class GatedReranker(Reranker):
    """Scores each document by its length, after ``started`` is set and ``gate`` opens."""

    score_kind = "logit"

    def __init__(self, timeout: float = 60.0) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.timeout = timeout
        self.name = "gated"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        self.started.set()
        if not self.gate.wait(self.timeout):
            raise TimeoutError("the test never opened the gate")
        return np.array([float(len(d.text)) for d in documents], dtype=np.float32)


class FileGatedReranker(GatedReranker):
    """The same across processes: writes ``FOLDER/started``, waits for ``FOLDER/release``."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = Path(folder)

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        (self.folder / "started").write_text("1")
        deadline = time.monotonic() + self.timeout
        while not (self.folder / "release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the request")
            time.sleep(0.01)
        return np.array([float(len(d.text)) for d in documents], dtype=np.float32)


def register_file_gated() -> None:
    """Make ``load_reranker("gated:FOLDER")`` build a ``FileGatedReranker`` (for a server subprocess)."""
    import rerankit

    rerankit.register("gated", lambda arg, **_: FileGatedReranker(arg))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 60.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOCAL, port)) == 0


@contextlib.contextmanager
def running_server(app, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=LOCAL, port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{LOCAL}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


class LengthReranker(Reranker):
    """Longer documents score higher (a second, instant model for multi-model tests)."""

    score_kind = "logit"
    name = "length"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return np.array([float(len(d.text)) for d in documents], dtype=np.float32)


@pytest.fixture(scope="session")
def tiny_reranker(tiny_cross_encoder_dir):
    """The conftest's tiny random BERT with ``backend="torch"`` (the torch module, fp32)."""
    from rerankit import load_reranker

    return load_reranker(str(tiny_cross_encoder_dir), backend="torch")


@pytest.fixture(scope="session")
def tiny_engine_reranker(tiny_cross_encoder_dir):
    """The same weights with ``backend="torch-fp32"`` named explicitly."""
    from rerankit import load_reranker

    return load_reranker(str(tiny_cross_encoder_dir), backend="torch-fp32")
