"""Loopback load test: rerankit serve against infinity-emb serving the same cross-encoder weights, same run.

Each request reranks ``--docs`` (50) BM25 candidates of a TREC DL19 query (queries rotate). For each
concurrency level (1, 8, 32, 64 by default), ``N`` clients send requests back to back for
``--duration`` seconds (60) through one ``httpx.AsyncClient``; a request counts as an error when it
fails or is not answered 200. The servers run one at a time, so they never share the two cores; the
load generator runs in this process for both.

The weights: the default model's cross-encoder (the folder without its fusion file, so that both
servers read the same plain Hugging Face cross-encoder). infinity-emb 0.0.78 (torch engine) runs in
its own virtual environment, ``.bench/infinity``, which the script creates on first use (CPU torch
2.13.0 first, then ``infinity-emb[server,torch]==0.0.78``; PyPI only, no model download).

    .venv/bin/python benchmarks/load.py [--duration 60] [--concurrency 1,8,32,64] [--servers rerankit,infinity]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "trec-dl19-passage"
INFINITY_VENV = ROOT / ".bench" / "infinity"
INFINITY_VERSION = "0.0.78"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payloads(docs_per_request: int) -> list[tuple[str, list[str]]]:
    """(query, BM25 top-``docs_per_request`` texts) for every DL19 query of the official run."""
    sys.path.insert(0, str(ROOT / "src"))
    from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl, read_trec_run
    from rerankit.evaluation import trec_order

    corpus = {d.id: d.full_text for d in read_corpus_jsonl(DATA / "corpus.jsonl")}
    queries = read_queries_jsonl(DATA / "queries.jsonl")
    run = read_trec_run(DATA / "runs" / "bm25.top100.trec")
    return [(queries[q], [corpus[d] for d in trec_order(run[q])[:docs_per_request]]) for q in run if q in queries]


def plain_cross_encoder(target: Path) -> Path:
    """A copy of the default model's folder without ``rerankit.json``: the bare cross-encoder."""
    from rerankit.rerankers.registry import default_model_path

    source = default_model_path()
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name not in ("rerankit.json",) and item.is_file():
            shutil.copy2(item, target / item.name)
    return target


def ensure_infinity() -> Path:
    """``.bench/infinity/bin/infinity_emb``, installing it on first use."""
    exe = INFINITY_VENV / "bin" / "infinity_emb"
    if exe.exists():
        return exe
    print(f"creating {INFINITY_VENV} (torch==2.13.0 CPU, infinity-emb[server,torch]=={INFINITY_VERSION})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(INFINITY_VENV)], check=True)
    pip = [str(INFINITY_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"infinity-emb[server,torch]=={INFINITY_VERSION}"], check=True)
    return exe


class Server:
    """A server subprocess: its start command, request path and body shape."""

    def __init__(self, name: str, command: list[str], port: int, path: str, model: str, env: dict | None = None):
        self.name, self.command, self.port, self.path, self.model = name, command, port, path, model
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def body(self, query: str, documents: list[str]) -> dict:
        return {"model": self.model, "query": query, "documents": documents}

    def start(self, log: Path, timeout: float = 300.0) -> None:
        import httpx

        self.process = subprocess.Popen(self.command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=self.env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        probe = self.body("warm up", ["warm up document"])
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {log}")
            try:
                if httpx.post(f"http://127.0.0.1:{self.port}{self.path}", json=probe, timeout=30).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s; see {log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


async def load(server: Server, work: list[tuple[str, list[str]]], clients: int, duration: float) -> dict:
    """``clients`` workers posting back to back for ``duration`` seconds."""
    import httpx

    url = f"http://127.0.0.1:{server.port}{server.path}"
    latencies: list[float] = []
    errors = 0
    docs = 0
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        async def worker(offset: int) -> None:
            nonlocal errors, docs
            i = offset
            while time.perf_counter() < stop_at:
                query, documents = work[i % len(work)]
                i += clients
                start = time.perf_counter()
                try:
                    response = await client.post(url, json=server.body(query, documents))
                    ok = response.status_code == 200 and len(response.json()["results"]) == len(documents)
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - start)
                    docs += len(documents)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    pick = (lambda f: ordered[min(len(ordered) - 1, int(f * len(ordered)))] * 1000) if ordered else (lambda f: float("nan"))
    return {"clients": clients, "requests": len(latencies), "errors": errors, "docs_per_s": docs / elapsed,
            "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"), "p99_ms": pick(0.99),
            "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--docs", type=int, default=50)
    parser.add_argument("--servers", default="rerankit,infinity")
    parser.add_argument("--rerankit-args", default="", help="extra arguments for rerankit serve")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    work = payloads(args.docs)
    scratch = Path(tempfile.mkdtemp(prefix="rerankit-load-"))
    model = plain_cross_encoder(scratch / "minilm-ce")
    servers: list[Server] = []
    for name in args.servers.split(","):
        port = free_port()
        if name == "rerankit":
            command = [str(ROOT / ".venv" / "bin" / "rerankit"), "serve", "--model", f"ce={model}", "--port", str(port),
                       "--log-level", "warning", *args.rerankit_args.split()]
            servers.append(Server("rerankit", command, port, "/v2/rerank", "ce"))
        elif name == "infinity":
            exe = ensure_infinity()
            command = [str(exe), "v2", "--model-id", str(model), "--served-model-name", "ce", "--engine", "torch",
                       "--device", "cpu", "--port", str(port), "--no-model-warmup"]
            servers.append(Server("infinity", command, port, "/rerank", "ce",
                                  env={"HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0",
                                       "DO_NOT_TRACK": "1"}))
        else:
            raise SystemExit(f"unknown server {name!r}")
    results: dict[str, list[dict]] = {}
    for server in servers:
        log = scratch / f"{server.name}.log"
        print(f"starting {server.name} on port {server.port} (log {log})", flush=True)
        server.start(log)
        try:
            asyncio.run(load(server, work, 1, 5.0))  # warm-up
            rows = []
            for clients in levels:
                row = asyncio.run(load(server, work, clients, args.duration))
                rows.append(row)
                print(f"{server.name:9s} clients {clients:3d}: {row['docs_per_s']:8.1f} docs/s  p50 {row['p50_ms']:8.1f} ms"
                      f"  p99 {row['p99_ms']:8.1f} ms  errors {row['errors']}  ({row['requests']} requests)", flush=True)
            results[server.name] = rows
        finally:
            server.stop()
    print(f"\n| clients | {' | '.join(f'{s} docs/s | {s} p50 / p99 ms | {s} errors' for s in results)} |"
          + (" rerankit / infinity docs/s |" if {"rerankit", "infinity"} <= set(results) else ""))
    print("|---" * (1 + 3 * len(results) + ({"rerankit", "infinity"} <= set(results))) + "|")
    for i, clients in enumerate(levels):
        cells = []
        for rows in results.values():
            r = rows[i]
            cells += [f"{r['docs_per_s']:.1f}", f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f}", str(r["errors"])]
        if {"rerankit", "infinity"} <= set(results):
            ratio = results["rerankit"][i]["docs_per_s"] / max(results["infinity"][i]["docs_per_s"], 1e-9)
            cells.append(f"**{ratio:.2f}x**")
        print(f"| {clients} | " + " | ".join(cells) + " |")
    if args.out:
        from rerankit.io import atomic_write_json

        atomic_write_json(args.out, {"docs_per_request": args.docs, "duration_s": args.duration, "results": results})
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
