"""Hosted backends: ``cohere:`` and ``http:`` against a real ``rerankit serve`` on 127.0.0.1 (tiny random
model), ``jina:`` and ``voyage:`` against stand-ins checking the request shapes, retries with backoff
and ``Retry-After``, timeouts, batching, and typed errors naming provider and status."""

from __future__ import annotations

import numpy as np
import pytest
from test_hosted_support import Reply, cohere_like, scripted, stand_in, tei_like, voyage_like
from test_server_support import free_port, running_server, tiny_reranker  # noqa: F401

from rerankit import ProviderError, ProviderTimeoutError, RetryPolicy, load_reranker
from rerankit.errors import InvalidInputError, UnknownSpecError
from rerankit.http_client import HttpConnection, parse_retry_after, retry_policy, with_retries
from rerankit.server import ServerConfig, create_app
from rerankit.server.config import ModelSpec

QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Cats purr when they are content.", "Berlin is in Germany.",
        "The Eiffel Tower is in Paris.", "Tea contains caffeine."]


class Sleeps:
    """An injectable ``sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast(max_retries: int = 3) -> tuple[RetryPolicy, Sleeps]:
    sleeps = Sleeps()
    return RetryPolicy(max_retries=max_retries, base_delay=0.5, max_delay=30.0, jitter=0.0, sleep=sleeps), sleeps


@pytest.fixture(scope="module")
def served(tiny_reranker):  # noqa: F811
    """``rerankit serve`` with the tiny random cross-encoder; yields its base URL."""
    config = ServerConfig(models=(ModelSpec("tiny", "tiny"),))
    with running_server(create_app(config, rerankers={"tiny": tiny_reranker})) as url:
        yield url


@pytest.fixture(scope="module")
def keyed(tiny_reranker):  # noqa: F811
    config = ServerConfig(models=(ModelSpec("tiny", "tiny"),), api_keys=("secret",))
    with running_server(create_app(config, rerankers={"tiny": tiny_reranker})) as url:
        yield url


def served_scores(reranker, query: str, docs: list[str]) -> np.ndarray:
    """What the server answers for ``reranker``: its probabilities, or its logits through the sigmoid."""
    scores = reranker.score(query, docs)
    return scores if reranker.score_kind == "probability" else 1.0 / (1.0 + np.exp(-scores))


# ---------------------------------------------------------------- cohere: through the SDK, real server


def test_cohere_backend_against_rerankit_serve(served, tiny_reranker):  # noqa: F811
    reranker = load_reranker("cohere:rerank-v3.5", api_key="any", base_url=served)
    assert reranker.score_kind == "provider" and reranker.name == "cohere:rerank-v3.5"
    results = reranker.rerank(QUERY, DOCS, top_k=3)
    want = tiny_reranker.rerank(QUERY, DOCS)
    assert [r.index for r in results] == [r.index for r in want][:3]
    assert all(r.backend == "cohere:rerank-v3.5" for r in results)
    # the backend keeps the server's [0, 1] range
    np.testing.assert_allclose(reranker.score(QUERY, DOCS), served_scores(tiny_reranker, QUERY, DOCS), atol=1e-5)


def test_cohere_key_and_url_from_the_environment_and_batching(served, tiny_reranker, monkeypatch):  # noqa: F811
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.setenv("COHERE_API_KEY", "from-env")
    monkeypatch.setenv("CO_API_URL", served)
    reranker = load_reranker("cohere:rerank-english-v3.0?batch_size=2&timeout=5&max_retries=1")
    assert (reranker.api_key, reranker.base_url, reranker.batch_size, reranker.timeout) == ("from-env", served, 2, 5.0)
    assert reranker.retry.max_retries == 1
    # 5 documents in batches of 2, 2 and 1, merged back in input order
    np.testing.assert_allclose(reranker.score(QUERY, DOCS), served_scores(tiny_reranker, QUERY, DOCS), atol=1e-5)


def test_cohere_sends_max_tokens_per_doc_and_reads_v2_results():
    with stand_in(cohere_like) as server:
        reranker = load_reranker("cohere:rerank-v3.5?max_tokens_per_doc=64", api_key="k", base_url=server.url)
        results = reranker.rerank("q", ["a", "ccc", "bb"])
    assert [r.index for r in results] == [1, 2, 0]
    (request,) = server.requests
    assert request.path == "/v2/rerank" and request.headers["authorization"] == "Bearer k"
    assert request.body["model"] == "rerank-v3.5" and request.body["documents"] == ["a", "ccc", "bb"]
    assert request.body["max_tokens_per_doc"] == 64 and request.body["top_n"] == 3


def test_cohere_wrong_key_is_a_typed_error_without_retries(keyed):
    policy, sleeps = fast()
    reranker = load_reranker("cohere:rerank-v3.5", api_key="wrong", base_url=keyed, retry=policy)
    with pytest.raises(ProviderError) as err:
        reranker.rerank(QUERY, DOCS)
    assert err.value.provider == "cohere" and err.value.status == 403 and not err.value.retryable
    assert str(err.value).startswith("cohere: HTTP 403") and sleeps.waits == []
    assert load_reranker("cohere:x", api_key="secret", base_url=keyed).rerank(QUERY, DOCS)[0].backend == "cohere:x"


def test_cohere_retries_429_honouring_retry_after_then_answers():
    policy, sleeps = fast()
    replies = scripted(Reply(429, {"message": "slow down"}, {"Retry-After": "2"}),
                       Reply(503, {"message": "busy"}), then=cohere_like)
    with stand_in(replies) as server:
        results = load_reranker("cohere:m", api_key="k", base_url=server.url, retry=policy).rerank("q", ["a", "bb"])
    assert [r.index for r in results] == [1, 0] and len(server.requests) == 3
    assert sleeps.waits == [2.0, 1.0]  # Retry-After (above the 0.5 s backoff), then 0.5 * 2


def test_missing_api_keys_name_the_variables(monkeypatch):
    for name in ("CO_API_KEY", "COHERE_API_KEY", "JINA_API_KEY", "VOYAGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for spec, variable in (("cohere:m", "CO_API_KEY"), ("jina:m", "JINA_API_KEY"), ("voyage:m", "VOYAGE_API_KEY")):
        with pytest.raises(ProviderError, match=f"no API key.*{variable}"):
            load_reranker(spec)


# ---------------------------------------------------------------- http: TEI and Cohere protocols, real server


def test_http_tei_protocol_against_rerankit_serve(served, tiny_reranker):  # noqa: F811
    want = [r.index for r in tiny_reranker.rerank(QUERY, DOCS)]
    for spec in (f"http:{served}", served, f"http:{served}/rerank"):
        reranker = load_reranker(spec)
        assert reranker.protocol == "tei" and reranker.url == f"{served}/rerank"
        results = reranker.rerank(QUERY, DOCS)
        assert [r.index for r in results] == want
        assert results[0].backend == f"http:{served}" or results[0].backend == f"http:{served}/rerank"
    np.testing.assert_allclose(load_reranker(served).score(QUERY, DOCS), served_scores(tiny_reranker, QUERY, DOCS),
                               atol=1e-5)


def test_http_cohere_protocol_against_rerankit_serve(served, tiny_reranker):  # noqa: F811
    want = [r.index for r in tiny_reranker.rerank(QUERY, DOCS)]
    v1 = load_reranker(f"http:{served}/v1/rerank")
    v2 = load_reranker(f"http:{served}/v2/rerank?model=tiny&batch_size=2")
    chosen = load_reranker(f"http:{served}?protocol=cohere")
    assert (v1.protocol, v2.protocol, chosen.protocol) == ("cohere", "cohere", "cohere")
    assert chosen.url == f"{served}/v1/rerank" and v2.batch_size == 2 and v2.remote_model == "tiny"
    for reranker in (v1, v2, chosen):
        assert [r.index for r in reranker.rerank(QUERY, DOCS)] == want
    with pytest.raises(InvalidInputError, match="needs a model"):
        load_reranker(f"http:{served}/v2/rerank")


def test_http_api_key_and_errors(keyed, monkeypatch):
    monkeypatch.setenv("RERANKIT_HTTP_API_KEY", "secret")
    assert len(load_reranker(f"http:{keyed}").rerank(QUERY, DOCS)) == len(DOCS)
    monkeypatch.setenv("RERANKIT_HTTP_API_KEY", "wrong")
    with pytest.raises(ProviderError) as err:
        load_reranker(f"http:{keyed}").rerank(QUERY, DOCS)
    assert err.value.provider == "http" and err.value.status == 403 and "/rerank" in str(err.value)
    with pytest.raises(UnknownSpecError):
        load_reranker("http:not-a-url")


def test_http_tei_batches_of_32_merged_in_input_order():
    docs = [f"doc {'x' * ((i * 7) % 50)}" for i in range(70)]
    with stand_in(tei_like) as server:
        reranker = load_reranker(f"http:{server.url}")
        scores = reranker.score("q", docs)
    assert [len(r.body["texts"]) for r in server.requests] == [32, 32, 6]
    assert all(r.body["raw_scores"] is False and r.body["query"] == "q" for r in server.requests)
    np.testing.assert_allclose(scores, [len(d) / (1 + len(d)) for d in docs], rtol=1e-6)


# ---------------------------------------------------------------- jina: and voyage: request shapes


def test_jina_request_shape_batching_and_env_key(monkeypatch):
    monkeypatch.setenv("JINA_API_KEY", "jina-key")
    with stand_in(cohere_like) as server:
        reranker = load_reranker("jina:jina-reranker-v2-base-multilingual?batch_size=2", base_url=f"{server.url}/v1")
        results = reranker.rerank("q", ["a", "bbbb", "cc", "ddd", "e"], top_k=2)
    assert [r.index for r in results] == [1, 3] and results[0].backend == "jina:jina-reranker-v2-base-multilingual"
    assert server.paths() == ["/v1/rerank"] * 3
    first = server.requests[0]
    assert first.headers["authorization"] == "Bearer jina-key"
    assert first.body == {"model": "jina-reranker-v2-base-multilingual", "query": "q", "documents": ["a", "bbbb"],
                          "top_n": 2, "return_documents": False}


def test_voyage_request_shape(monkeypatch):
    monkeypatch.setenv("VOYAGE_API_KEY", "voyage-key")
    with stand_in(voyage_like) as server:
        monkeypatch.setenv("VOYAGE_API_URL", f"{server.url}/v1")
        reranker = load_reranker("voyage:rerank-2.5")
        results = reranker.rerank("q", ["a", "ccc", "bb"])
    assert reranker.batch_size == 1000 and [r.index for r in results] == [1, 2, 0]
    (request,) = server.requests
    assert request.path == "/v1/rerank" and request.headers["authorization"] == "Bearer voyage-key"
    assert request.body == {"query": "q", "documents": ["a", "ccc", "bb"], "model": "rerank-2.5", "top_k": 3,
                            "truncation": True}


def test_unusable_answers_are_provider_errors():
    for body in ({"results": [{"index": 0, "relevance_score": 0.5}]},  # a document missing
                 {"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.1}]},
                 {"results": [{"index": 7, "relevance_score": 0.5}, {"index": 1, "relevance_score": 0.1}]},
                 {"nothing": True}):
        with stand_in(lambda request, body=body: Reply(200, body)) as server:
            with pytest.raises(ProviderError, match="unusable answer"):
                load_reranker("jina:m", api_key="k", base_url=server.url).score("q", ["a", "b"])


def test_voyage_reads_its_results_from_data_only():
    with stand_in(lambda request: Reply(200, {"results": [{"index": 0, "relevance_score": 0.5}]})) as server:
        with pytest.raises(ProviderError, match="voyage: unusable answer .* no 'data'"):
            load_reranker("voyage:m", api_key="k", base_url=server.url, max_retries=0).score("q", ["a"])


def test_cohere_unusable_answers_are_provider_errors():
    for body in ({"results": "nope"}, {"results": [{"index": 0}]}, b"not json", {"id": "no results"}):
        with stand_in(lambda request, body=body: Reply(200, body)) as server:
            reranker = load_reranker("cohere:m", api_key="k", base_url=server.url, max_retries=0)
            with pytest.raises(ProviderError, match="cohere: unusable answer"):
                reranker.score("q", ["a"])


# ---------------------------------------------------------------- retries, timeouts, errors


def test_5xx_retried_with_exponential_backoff_then_typed_error():
    policy, sleeps = fast(max_retries=3)
    with stand_in(lambda request: Reply(500, {"message": "internal"})) as server:
        with pytest.raises(ProviderError) as err:
            load_reranker("voyage:m", api_key="k", base_url=server.url, retry=policy).score("q", ["a"])
    assert len(server.requests) == 4 and sleeps.waits == [0.5, 1.0, 2.0]
    assert err.value.status == 500 and err.value.provider == "voyage"
    message = str(err.value)
    assert "voyage: HTTP 500" in message and "internal" in message and "after 4 attempts" in message


def test_4xx_is_not_retried():
    policy, sleeps = fast()
    with stand_in(lambda request: Reply(400, {"detail": "bad model"})) as server:
        with pytest.raises(ProviderError, match="jina: HTTP 400.*bad model") as err:
            load_reranker("jina:m", api_key="k", base_url=server.url, retry=policy).score("q", ["a"])
    assert len(server.requests) == 1 and sleeps.waits == [] and not err.value.retryable


def test_retry_after_above_max_delay_fails_at_once():
    sleeps = Sleeps()
    policy = RetryPolicy(max_retries=3, max_delay=10.0, jitter=0.0, sleep=sleeps)
    with stand_in(lambda request: Reply(429, {"message": "quota"}, {"Retry-After": "120"})) as server:
        with pytest.raises(ProviderError, match="above max_delay") as err:
            load_reranker(f"http:{server.url}", retry=policy).score("q", ["a"])
    assert err.value.status == 429 and err.value.retry_after == 120.0
    assert sleeps.waits == [] and len(server.requests) == 1


def test_timeouts_are_retried_then_a_timeout_error():
    policy, sleeps = fast(max_retries=1)
    with stand_in(lambda request: Reply(200, [], delay=5.0)) as server:
        reranker = load_reranker(f"http:{server.url}?timeout=0.2", retry=policy)
        with pytest.raises(ProviderTimeoutError) as err:
            reranker.score("q", ["a"])
    assert len(server.requests) == 2 and sleeps.waits == [0.5]
    assert err.value.status is None and err.value.provider == "http" and "within the timeout" in str(err.value)


def test_cohere_sdk_timeout_is_a_timeout_error():
    policy, sleeps = fast(max_retries=0)
    with stand_in(lambda request: Reply(200, {}, delay=5.0)) as server:
        with pytest.raises(ProviderTimeoutError, match="cohere"):
            load_reranker("cohere:m?timeout=0.2", api_key="k", base_url=server.url, retry=policy).score("q", ["a"])


def test_connection_refused_is_retryable():
    policy, sleeps = fast(max_retries=2)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderError, match="cannot reach") as err:
        load_reranker(f"http:{url}", retry=policy).score("q", ["a"])
    assert err.value.retryable and sleeps.waits == [0.5, 1.0]


def test_retry_after_parsing():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None and parse_retry_after({}) is None


def test_with_retries_returns_the_first_success():
    calls = []
    policy, sleeps = fast(max_retries=5)

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ProviderError("p", "busy", 503, retryable=True)
        return "ok"

    assert with_retries(flaky, policy) == "ok" and sleeps.waits == [0.5, 1.0]
    assert RetryPolicy(base_delay=1.0, jitter=0.5).backoff(2) >= 4.0


def test_max_retries_replaces_only_the_count_of_a_given_policy():
    policy, _ = fast(max_retries=5)
    two = retry_policy(policy, 2)
    assert (two.max_retries, two.base_delay, two.max_delay, two.jitter, two.sleep) == (
        2, policy.base_delay, policy.max_delay, policy.jitter, policy.sleep)
    assert retry_policy(policy, None) is policy and retry_policy(None, None) == RetryPolicy()
    with pytest.raises(ValueError, match="max_retries"):
        retry_policy(policy, -1)
    reranker = load_reranker("jina:m", api_key="k", max_retries=0, retry=policy)
    assert reranker.retry.max_retries == 0 and reranker.retry.sleep is policy.sleep


def test_http_connection_is_built_once_and_rebuilt_after_close():
    connection = HttpConnection(timeout=2.0)
    first = connection.client()
    assert connection.client() is first and first.timeout.read == 2.0
    connection.close()
    assert first.is_closed and connection.client() is not first
    connection.close()


def test_spec_options_are_checked():
    with pytest.raises(UnknownSpecError, match="unknown option 'colour'"):
        load_reranker("cohere:m?colour=red", api_key="k")
    with pytest.raises(UnknownSpecError, match="not a valid int"):
        load_reranker("cohere:m?max_retries=many", api_key="k")
    with pytest.raises(UnknownSpecError, match="needs a model"):
        load_reranker("jina:", api_key="k")
    with pytest.raises(InvalidInputError, match="timeout"):
        load_reranker("voyage:m?timeout=0", api_key="k")
