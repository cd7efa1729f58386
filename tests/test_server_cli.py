"""``rerankit serve`` as a command: one-line errors with exit code 2, and a graceful SIGTERM
(stop accepting, finish the request in flight, then exit) on a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from cli_helpers import run_cli
from test_server_support import LOCAL, free_port, port_open, wait_for

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(("argv", "says"), [
    (["--model", "/no/such/model"], "unknown reranker spec"),
    (["--model", "a=default", "--model", "a=bi-encoder"], "--model names must be unique"),
    (["--model", "a="], "empty spec"),
    (["--max-documents", "0"], "--max-documents must be a positive integer"),
    (["--workers", "0"], "--workers must be a positive integer"),
    (["--api-keys-file", "/no/such/keys.txt"], "cannot read API keys file"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
])
def test_serve_errors_are_one_line_with_exit_2(argv, says, capsys):
    assert run_cli(["serve", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err


def test_serve_on_a_busy_port(capsys):
    with socket.socket() as busy:
        busy.bind((LOCAL, 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_cli(["serve", "--port", str(port), "--model", "/no/such/model"]) == 2
    assert f"error: cannot listen on {LOCAL}:{port}" in capsys.readouterr().err


SERVER = """
import sys
sys.path.insert(0, {tests!r})
from test_server_support import register_file_gated
register_file_gated()
from rerankit.cli import main
main(["serve", "--model", "gated:" + {gate!r}, "--host", "127.0.0.1", "--port", {port!r}, "--log-level", "warning"])
"""


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RERANKIT_API_KEYS", None)
    code = SERVER.format(tests=str(TESTS), gate=str(tmp_path), port=str(port))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                return httpx.get(f"http://{LOCAL}:{port}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the server to start")
        answer: dict = {}

        def request() -> None:
            answer["response"] = httpx.post(f"http://{LOCAL}:{port}/v2/rerank", timeout=60, json={
                "model": "any", "query": "q", "documents": ["a", "ccc", "bb"]})

        client = threading.Thread(target=request)
        client.start()
        wait_for((tmp_path / "started").exists, "the request to reach the model")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not port_open(port), "the server to stop accepting connections")
        assert proc.poll() is None  # still finishing the request in flight
        (tmp_path / "release").write_text("1")
        client.join(60)
        response = answer["response"]
        assert response.status_code == 200
        assert [r["index"] for r in response.json()["results"]] == [1, 2, 0]
        # uvicorn re-raises the SIGTERM it caught once shut down, so the exit is "terminated by SIGTERM"
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
