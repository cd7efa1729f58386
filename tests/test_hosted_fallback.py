"""Fallback chains (``cohere:MODEL,default``): the next backend answers when one fails or times out,
the results and the log name the backend that answered."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from test_hosted_support import Reply, cohere_like, stand_in
from test_server_support import PASSWORD_DOCS, PASSWORD_QUERY, LengthReranker

import rerankit
from rerankit import FallbackError, RetryPolicy, load_reranker
from rerankit.errors import InvalidInputError, UnknownSpecError
from rerankit.rerankers.fallback import FallbackReranker


class Broken(LengthReranker):
    name = "broken"

    def _score(self, query, documents):
        raise RuntimeError("model crashed")


@pytest.fixture
def cohere_env(monkeypatch):
    """A Cohere key in the environment; tests set ``CO_API_URL`` to their stand-in."""
    monkeypatch.setenv("CO_API_KEY", "k")
    return monkeypatch


def test_local_model_answers_when_the_hosted_endpoint_times_out(cohere_env, caplog):
    """Acceptance: the hosted API sleeps past the timeout; the shipped local model answers, and says so."""
    with stand_in(lambda request: Reply(200, {}, delay=5.0)) as server:
        cohere_env.setenv("CO_API_URL", server.url)
        chain = load_reranker("cohere:rerank-english-v3.0?timeout=0.3&max_retries=0,default")
        assert isinstance(chain, FallbackReranker)
        assert [r.name for r in chain.rerankers] == ["cohere:rerank-english-v3.0", "default"]
        with caplog.at_level(logging.INFO, logger="rerankit.fallback"):
            results = chain.rerank(PASSWORD_QUERY, PASSWORD_DOCS, top_k=2)
    assert len(server.requests) == 1  # the hosted API was tried once, and timed out
    assert results[0].index == 1 and "Forgot password" in results[0].text  # the password passage
    assert {r.backend for r in results} == {"default"} and chain.last_backend == "default"
    assert 0.0 <= results[0].score <= 1.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("cohere:rerank-english-v3.0 failed (ProviderTimeoutError" in m and "falling back to default" in m
               for m in messages)
    assert any(m == "reranking answered by default after 1 failure(s)" for m in messages)


def test_hosted_answers_first_when_it_works(cohere_env):
    with stand_in(cohere_like) as server:
        cohere_env.setenv("CO_API_URL", server.url)
        chain = load_reranker("cohere:rerank-v3.5,bi-encoder")
        results = chain.rerank("q", ["a", "ccc", "bb"])
    assert [r.index for r in results] == [1, 2, 0] and {r.backend for r in results} == {"cohere:rerank-v3.5"}
    assert chain.last_backend == "cohere:rerank-v3.5" and chain.score_kind == "provider"


def test_chain_over_several_failures_and_5xx(cohere_env):
    rerankit.register("broken", lambda arg, **_: Broken())
    rerankit.register("length", lambda arg, **_: LengthReranker())
    sleeps: list[float] = []
    with stand_in(lambda request: Reply(500, {"message": "down"})) as server:
        cohere_env.setenv("CO_API_URL", server.url)
        chain = load_reranker("cohere:m, broken:, length:", retry=RetryPolicy(max_retries=2, sleep=sleeps.append))
        results = chain.rerank("q", ["a", "ccc", "bb"])
        assert len(server.requests) == 3 and len(sleeps) == 2  # the hosted member retried 5xx first
    assert [r.index for r in results] == [1, 2, 0] and results[0].backend == "length"
    np.testing.assert_allclose(chain.score("q", ["a", "bb"]), [1.0, 2.0])


def test_every_member_failing_is_one_error_listing_them(cohere_env):
    rerankit.register("broken", lambda arg, **_: Broken())
    with stand_in(lambda request: Reply(401, {"message": "invalid api token"})) as server:
        cohere_env.setenv("CO_API_URL", server.url)
        chain = load_reranker("cohere:m,broken:")
        with pytest.raises(FallbackError) as err:
            chain.rerank("q", ["a"])
    message = str(err.value)
    assert "cohere:m (ProviderError: cohere: HTTP 401" in message and "broken (RuntimeError: model crashed)" in message


def test_bad_input_is_not_a_reason_to_fall_back(cohere_env):
    rerankit.register("length", lambda arg, **_: LengthReranker())
    with stand_in(cohere_like) as server:
        cohere_env.setenv("CO_API_URL", server.url)
        with pytest.raises(InvalidInputError):
            load_reranker("cohere:m,length:").rerank("   ", ["a"])
        assert server.requests == []


def test_member_without_a_key_is_left_out(monkeypatch, caplog):
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    rerankit.register("length", lambda arg, **_: LengthReranker())
    with caplog.at_level(logging.WARNING, logger="rerankit.fallback"):
        chain = load_reranker("cohere:m,length:")
    assert [r.name for r in chain.rerankers] == ["length"]
    assert any("leaving out cohere:m" in r.getMessage() for r in caplog.records)
    with pytest.raises(FallbackError, match="no member could be started"):
        load_reranker("cohere:a,cohere:b")


def test_chain_spec_errors():
    with pytest.raises(UnknownSpecError, match="no empty member"):
        load_reranker("default,")
    with pytest.raises(UnknownSpecError):
        load_reranker("nonsense-backend:x,default")
    with pytest.raises(InvalidInputError):
        FallbackReranker([])
