"""The micro-batcher: concurrent requests share model calls (``score_many`` on the engine), a full queue
answers 429 with ``Retry-After``, and one bad request fails alone. Gated models hold requests in
flight, so nothing here depends on timing."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest
from test_server_support import GatedReranker, tiny_engine_reranker, tiny_reranker  # noqa: F401  (fixtures)

from rerankit.errors import OverloadedError
from rerankit.rerankers.base import Reranker
from rerankit.server import ServerConfig, create_app
from rerankit.server.batcher import MicroBatcher, many_scorer
from rerankit.server.config import ModelSpec
from rerankit.server.metrics import Metrics

QUERIES = ["what is the capital of france", "how do vaccines work", "why does bread rise"]
TEXTS = [
    ["Paris is the capital of France.", "Lyon is a city in France.", "Cats purr."],
    ["Vaccines train the immune system.", "The Louvre is a museum." * 5],
    ["Yeast ferments sugars and releases gas.", "Bread is baked in ovens.", "x", "Rivers flow to the sea."],
]


class GatedMany(Reranker):
    """Wraps a reranker's ``score_many``; the first call blocks until the gate opens; records call sizes."""

    score_kind = "probability"
    batches_queries = True

    def __init__(self, inner) -> None:
        self.inner = inner
        self.inner_many = many_scorer(inner)
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def score_many(self, queries, candidate_lists):
        self.calls.append(len(queries))
        if "bad" in queries:
            raise ValueError("a bad query in the batch")
        self.entered.set()
        self.gate.wait(60)
        return self.inner_many(queries, candidate_lists)

    def _score(self, query, documents):
        if query == "bad":
            raise ValueError("this query is bad")
        return self.inner._score(query, documents)


async def wait_until(predicate, what: str) -> None:
    for _ in range(6000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def sample(batcher: MicroBatcher, name: str, **labels) -> float:
    return batcher.metrics.registry.get_sample_value(name, {"model": "m", **labels}) or 0.0


def make_batcher(reranker, **options) -> MicroBatcher:
    options = {"max_queue_documents": 100, "max_batch_documents": 64, **options}
    return MicroBatcher(reranker, name="m", metrics=Metrics(), **options)


def test_many_scorer_follows_the_reranker_contract(tiny_engine_reranker, tiny_reranker):  # noqa: F811
    assert many_scorer(tiny_engine_reranker) == tiny_engine_reranker.score_many
    assert many_scorer(tiny_reranker) == tiny_reranker.score_many  # backend="torch" is a runner like the others
    assert many_scorer(GatedReranker()) is None  # the base score_many only loops: scored per request


def test_concurrent_requests_share_one_engine_call(tiny_engine_reranker):  # noqa: F811
    model = GatedMany(tiny_engine_reranker)
    batcher = make_batcher(model)

    async def scenario():
        first = asyncio.create_task(batcher.score(QUERIES[0], TEXTS[0]))
        await wait_until(model.entered.is_set, "the first call started")
        rest = [asyncio.create_task(batcher.score(q, t)) for q, t in zip(QUERIES[1:], TEXTS[1:])]
        await wait_until(lambda: batcher._pending == len(TEXTS[1]) + len(TEXTS[2]), "both queued")
        model.gate.set()
        return await asyncio.gather(first, *rest)

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.close()
    assert model.calls == [1, 2]  # the two requests that waited went into one call
    for query, texts, got in zip(QUERIES, TEXTS, results):
        np.testing.assert_allclose(got, tiny_engine_reranker.score(query, texts), rtol=1e-4, atol=1e-5)
    assert sample(batcher, "rerankit_batch_requests_sum") == 3 and sample(batcher, "rerankit_batch_requests_count") == 2


def test_per_request_fallback_and_batch_size_limit():
    model = GatedReranker()
    batcher = make_batcher(model, max_batch_documents=5)

    async def scenario():
        first = asyncio.create_task(batcher.score("q", ["aaa"]))
        await asyncio.to_thread(model.started.wait, 60)
        rest = [asyncio.create_task(batcher.score("q", ["a", "bb", "cccc"])) for _ in range(3)]
        await wait_until(lambda: batcher._pending == 9, "all queued")
        model.gate.set()
        return await asyncio.gather(first, *rest)

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.close()
    assert [list(r) for r in results] == [[3.0]] + [[1.0, 2.0, 4.0]] * 3
    assert sample(batcher, "rerankit_batch_documents_sum") == 10
    # 3-document requests under a 5-document batch limit: one request per call
    assert sample(batcher, "rerankit_batch_requests_count") == 4
    assert sample(batcher, "rerankit_batch_requests_bucket", le="1.0") == 4


def test_full_queue_raises_overloaded_with_retry_after():
    model = GatedReranker()
    batcher = make_batcher(model, max_queue_documents=3)

    async def scenario():
        first = asyncio.create_task(batcher.score("q", ["a", "b"]))
        await asyncio.to_thread(model.started.wait, 60)
        second = asyncio.create_task(batcher.score("q", ["c", "d"]))
        await wait_until(lambda: batcher._pending == 2, "second queued")
        with pytest.raises(OverloadedError) as refused:
            await batcher.score("q", ["e", "f"])
        model.gate.set()
        await asyncio.gather(first, second)
        return refused.value

    try:
        refused = asyncio.run(scenario())
    finally:
        batcher.close()
    assert refused.retry_after >= 1 and "--max-queue-documents" in str(refused)
    assert sample(batcher, "rerankit_overloaded_total") == 1


def test_a_bad_request_fails_alone(tiny_engine_reranker):  # noqa: F811
    model = GatedMany(tiny_engine_reranker)
    batcher = make_batcher(model)

    async def scenario():
        first = asyncio.create_task(batcher.score(QUERIES[0], TEXTS[0]))
        await wait_until(model.entered.is_set, "the first call started")
        good = asyncio.create_task(batcher.score(QUERIES[1], TEXTS[1]))
        bad = asyncio.create_task(batcher.score("bad", TEXTS[2]))
        await wait_until(lambda: batcher._pending == len(TEXTS[1]) + len(TEXTS[2]), "both queued")
        model.gate.set()
        return await asyncio.gather(first, good, bad, return_exceptions=True)

    try:
        first, good, bad = asyncio.run(scenario())
    finally:
        batcher.close()
    assert isinstance(bad, ValueError) and "bad" in str(bad)
    np.testing.assert_allclose(good, tiny_engine_reranker.score(QUERIES[1], TEXTS[1]), rtol=1e-4, atol=1e-5)
    assert len(first) == len(TEXTS[0])


def test_http_429_with_retry_after_in_both_dialects():
    model = GatedReranker()
    config = ServerConfig(models=(ModelSpec("gated", "gated"),), max_documents=2, max_queue_documents=3)
    app = create_app(config, rerankers={"gated": model})
    body = {"model": "gated", "query": "q", "documents": ["a", "b"]}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.create_task(client.post("/v2/rerank", json=body))
            await asyncio.to_thread(model.started.wait, 60)
            second = asyncio.create_task(client.post("/v2/rerank", json=body))
            batcher = app.state.registry.get("gated").batcher
            await wait_until(lambda: batcher._pending == 2, "second queued")
            cohere = await client.post("/v2/rerank", json=body)
            tei = await client.post("/rerank", json={"query": "q", "texts": ["a", "b"]})
            model.gate.set()
            return cohere, tei, await first, await second

    try:
        cohere, tei, first, second = asyncio.run(scenario())
    finally:
        app.state.registry.close()
    assert cohere.status_code == 429 and int(cohere.headers["retry-after"]) >= 1
    assert "overloaded" in cohere.json()["message"] and "--max-queue-documents" in cohere.json()["message"]
    assert tei.status_code == 429 and tei.json()["error_type"] == "overloaded" and "retry-after" in tei.headers
    assert first.status_code == 200 and second.status_code == 200
    assert [r["index"] for r in first.json()["results"]] == [0, 1]
