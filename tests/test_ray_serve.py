"""``rerankit serve --ray``: the app as a Ray Serve deployment on a local cluster the server starts; the real
``cohere`` SDK gets correct rankings, and a replica killed under load costs the client no failed request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from test_server_support import free_port, wait_for

from rerankit.errors import InvalidInputError
from rerankit.server.ray_serve import Scaling

QUERY = "how do I reset my password"
DOCS = ["Click 'Forgot password?' on the sign-in page to reset your password.", "Invoices are emailed monthly.",
        "Our office is closed on public holidays.", "To change a password, open Settings > Security."]


def test_scaling_options():
    assert Scaling.parse(None, None) == Scaling(1, 1)
    assert Scaling.parse(3, None) == Scaling(3, 3) and Scaling.parse(3, None).fixed
    assert Scaling.parse(None, "1:4") == Scaling(1, 4) and not Scaling.parse(None, "1:4").fixed
    for replicas, autoscale in ((0, None), (None, "4:1"), (None, "x"), (2, "1:2"), (None, "0:0")):
        with pytest.raises(InvalidInputError):
            Scaling.parse(replicas, autoscale)


def _replica_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ServeReplica:rerankit" in line]


def test_cohere_sdk_against_two_replicas_and_a_replica_killed_under_load(tiny_cross_encoder_dir, tmp_path):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'rerankit[ray]')")
    import cohere

    from rerankit.rerankers.cross_encoder import CrossEncoderReranker

    port = free_port()
    env = {**os.environ, "RERANKIT_BACKEND": "torch-fp32", "PYTHONUNBUFFERED": "1"}
    env.pop("RERANKIT_API_KEYS", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "rerankit", "serve", "--ray", "--replicas", "2", "--model",
                             f"tiny={tiny_cross_encoder_dir}", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the Ray Serve deployment", 240, interval=0.2)
        wait_for(lambda: len(_replica_pids()) == 2, "two replicas", 120, interval=0.2)
        expected = CrossEncoderReranker(tiny_cross_encoder_dir, backend="torch-fp32").rerank(QUERY, DOCS)
        statuses: list[int] = []
        http = httpx.Client(timeout=30, event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
        client = cohere.ClientV2(base_url=base, api_key="any", httpx_client=http)
        got = client.rerank(model="tiny", query=QUERY, documents=DOCS)
        assert [r.index for r in got.results] == [r.index for r in expected]
        assert [round(r.relevance_score, 4) for r in got.results] == [round(r.score, 4) for r in expected]

        victim = _replica_pids()[0]
        failures: list[str] = []
        done = 0

        def one(i: int) -> None:
            nonlocal done
            try:
                answer = client.rerank(model="tiny", query=QUERY, documents=DOCS[i % 4:] + DOCS[: i % 4])
                assert len(answer.results) == 4
            except Exception as exc:  # what the client would see after the SDK's own retries
                failures.append(f"{type(exc).__name__}: {exc}"[:300])
            done += 1

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(one, i) for i in range(120)]
            wait_for(lambda: done >= 20, "20 requests answered", 120, interval=0.2)
            os.kill(victim, signal.SIGKILL)
            for future in futures:
                future.result()
        assert failures == [], failures
        print(f"statuses the SDK saw (retries included): {sorted(set(statuses))}, "
              f"non-200: {sum(s != 200 for s in statuses)} of {len(statuses)}")
        wait_for(lambda: len(_replica_pids()) == 2 and victim not in _replica_pids(), "the replica to be replaced", 180, interval=0.2)
        assert client.rerank(model="tiny", query=QUERY, documents=DOCS).results[0].index == expected[0].index
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the cluster still in the server's session
        except ProcessLookupError:
            pass
        log.close()
