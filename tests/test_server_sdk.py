"""The real ``cohere`` SDK (``ClientV2`` and ``Client``) and plain HTTP clients against ``rerankit serve``
running on uvicorn at 127.0.0.1 (the shipped ``default`` model and the tiny random one)."""

from __future__ import annotations

import json

import cohere
import httpx
import pytest
from test_server_support import PASSWORD_DOCS, PASSWORD_QUERY, running_server, tiny_reranker  # noqa: F401

from rerankit.server import ServerConfig, create_app
from rerankit.server.config import ModelSpec

QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Cats purr when they are content.", "Berlin is in Germany.",
        "The Eiffel Tower is in Paris."]


@pytest.fixture(scope="module")
def default_reranker():
    from rerankit import load_reranker

    return load_reranker("default")


@pytest.fixture(scope="module")
def two_models(default_reranker, tiny_reranker):  # noqa: F811
    """A server with the shipped model and the tiny one; yields its base URL."""
    config = ServerConfig(models=(ModelSpec("default", "default"), ModelSpec("tiny", "tiny")))
    app = create_app(config, rerankers={"default": default_reranker, "tiny": tiny_reranker})
    with running_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def keyed(tiny_reranker):  # noqa: F811
    """A single-model server with an API key and a 64 KiB body limit."""
    config = ServerConfig(models=(ModelSpec("tiny", "tiny"),), api_keys=("secret",), max_body_bytes=64 * 1024)
    with running_server(create_app(config, rerankers={"tiny": tiny_reranker})) as url:
        yield url


def test_sdk_v2_default_model_ranks_the_password_passage_first(two_models):
    co = cohere.ClientV2(base_url=two_models, api_key="any-token")
    response = co.rerank(model="default", query=PASSWORD_QUERY, documents=PASSWORD_DOCS, top_n=2)
    assert [r.index for r in response.results][0] == 1 and len(response.results) == 2
    scores = [r.relevance_score for r in response.results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert response.id and response.meta.api_version.version == "2"
    assert response.meta.billed_units.search_units == 1


def test_sdk_v1_default_model_with_documents(two_models):
    co = cohere.Client(base_url=two_models, api_key="any-token")
    docs = [{"text": d, "source": f"kb-{i}"} for i, d in enumerate(PASSWORD_DOCS)]
    response = co.rerank(model="default", query=PASSWORD_QUERY, documents=docs, top_n=3, return_documents=True)
    best = response.results[0]
    assert best.index == 1 and best.document.text == PASSWORD_DOCS[1]
    assert response.meta.api_version.version == "1" and len(response.results) == 3
    plain = co.rerank(model="default", query=PASSWORD_QUERY, documents=PASSWORD_DOCS)
    assert plain.results[0].index == 1 and plain.results[0].document is None
    assert len(plain.results) == len(PASSWORD_DOCS)


def test_sdk_rankings_match_the_library(two_models, tiny_reranker):  # noqa: F811
    want = [r.index for r in tiny_reranker.rerank(QUERY, DOCS)]
    v2 = cohere.ClientV2(base_url=two_models, api_key="x").rerank(model="tiny", query=QUERY, documents=DOCS)
    v1 = cohere.Client(base_url=two_models, api_key="x").rerank(model="tiny", query=QUERY, documents=DOCS)
    assert [r.index for r in v2.results] == want and [r.index for r in v1.results] == want


def test_sdk_unknown_model_on_a_multi_model_server(two_models):
    with pytest.raises(cohere.errors.NotFoundError) as err:
        cohere.ClientV2(base_url=two_models, api_key="x").rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert "served models: default, tiny" in json.dumps(err.value.body)


def test_sdk_with_api_keys_and_any_model_name(keyed, tiny_reranker):  # noqa: F811
    response = cohere.ClientV2(base_url=keyed, api_key="secret").rerank(
        model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=1)  # one served model: any name is accepted
    assert response.results[0].index == tiny_reranker.rerank(QUERY, DOCS, top_k=1)[0].index
    with pytest.raises(cohere.errors.ForbiddenError):
        cohere.ClientV2(base_url=keyed, api_key="wrong").rerank(model="m", query=QUERY, documents=DOCS)
    r = httpx.post(f"{keyed}/v2/rerank", json={"model": "m", "query": QUERY, "documents": DOCS})
    assert r.status_code == 401 and "missing API key" in r.json()["message"]


def test_jina_and_tei_requests_over_http(two_models, tiny_reranker):  # noqa: F811
    want = [r.index for r in tiny_reranker.rerank(QUERY, DOCS)]
    headers = {"Authorization": "Bearer jina_anything"}
    jina = httpx.post(f"{two_models}/v1/rerank", headers=headers, json={
        "model": "tiny", "query": QUERY, "documents": [{"text": d} for d in DOCS], "top_n": 2,
        "return_documents": True}).json()
    assert [r["index"] for r in jina["results"]] == want[:2]
    assert jina["results"][0]["document"] == {"text": DOCS[want[0]]} and jina["usage"]["total_tokens"] > 0
    tei = httpx.post(f"{two_models}/rerank", json={"query": QUERY, "texts": DOCS, "model": "tiny",
                                                   "return_text": True, "truncate": True}).json()
    assert [r["index"] for r in tei] == want and tei[0]["text"] == DOCS[want[0]]


def test_oversized_body_over_the_socket(keyed):
    big = json.dumps({"model": "m", "query": QUERY, "documents": ["x" * 1000] * 100}).encode()  # ~100 KB
    r = httpx.post(f"{keyed}/v2/rerank", content=big,
                   headers={"Authorization": "Bearer secret", "Content-Type": "application/json"})
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["message"]
    health = httpx.get(f"{keyed}/health")
    assert health.status_code == 200  # and the server still answers
    assert "rerankit_requests_total" in httpx.get(f"{keyed}/metrics").text
