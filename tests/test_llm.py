"""``llm:MODEL``: permutation repair, RankGPT's sliding window and the pointwise mode, against a local
OpenAI-compatible stand-in that answers fixed permutations and grades, malformed ones included."""

from __future__ import annotations

import pytest
from test_hosted_support import Reply, chat_reply, rank_by_number, scripted, stand_in, window_passages

from rerankit import ProviderError, RetryPolicy, load_reranker
from rerankit.errors import InvalidInputError, UnknownSpecError
from rerankit.rerankers.llm import LLMReranker, parse_grade, parse_permutation, repair_permutation, sliding_windows


@pytest.fixture
def openai_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return monkeypatch


# ---------------------------------------------------------------- permutation repair


@pytest.mark.parametrize(
    ("answer", "count", "order"),
    [
        ("[3] > [1] > [2]", 3, [2, 0, 1]),
        ("[2] > [4]", 4, [1, 3, 0, 2]),  # missing ids follow in their original order
        ("[2] > [2] > [1] > [2]", 3, [1, 0, 2]),  # duplicates dropped
        ("[9] > [0] > [3] > [-1] > [1]", 3, [2, 0, 1]),  # out of range ignored ([-1] reads as [1]'s text, not an id)
        ("[a] > [3] > [two] > [1] > [ ]", 3, [2, 0, 1]),  # non-numeric ids ignored
        ("3 > 1 > 2", 3, [2, 0, 1]),  # no brackets: bare numbers
        ("The ranking is: [2] > [1]. Passage 3 mentions 2020.", 3, [1, 0, 2]),  # brackets win over prose numbers
        ("I cannot rank these passages.", 3, [0, 1, 2]),  # nothing usable: first-stage order
        ("", 2, [0, 1]),
        ("[ 2 ]>[1]", 2, [1, 0]),
    ],
)
def test_parse_permutation_repairs(answer, count, order):
    assert parse_permutation(answer, count) == order
    assert sorted(order) == list(range(count))


def test_repair_permutation_on_ids():
    assert repair_permutation([5, 5, 0, 2, 7, 1], 5) == [4, 1, 0, 2, 3]
    assert repair_permutation([], 0) == []


def test_sliding_windows_bottom_up():
    assert sliding_windows(100) == [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40),
                                    (10, 30), (0, 20)]
    assert sliding_windows(25) == [(5, 25), (0, 15)]  # the top passages are reached too
    assert sliding_windows(20) == [(0, 20)] and sliding_windows(3) == [(0, 3)] and sliding_windows(0) == []
    assert sliding_windows(7, window=4, step=2) == [(3, 7), (1, 5), (0, 3)]


def test_parse_grade():
    assert parse_grade("8") == 8.0 and parse_grade("Relevance: 7.5/10") == 7.5
    assert parse_grade("42") == 10.0 and parse_grade("-3") == 0.0 and parse_grade("very relevant") is None


# ---------------------------------------------------------------- listwise against the stand-in


def test_listwise_sliding_window_brings_the_best_ten_to_the_top(openai_env):
    values = [(i * 37) % 45 for i in range(45)]  # a shuffled 0..44
    docs = [f"relevance {v} passage number {i}" for i, v in enumerate(values)]
    with stand_in(rank_by_number) as server:
        openai_env.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        reranker = load_reranker("llm:gpt-test")
        results = reranker.rerank("which passage is most relevant?", docs)
    # windows (25, 45), (15, 35), (5, 25), (0, 15): four requests, each with its window's passages
    assert [len(window_passages(r)) for r in server.requests] == [20, 20, 20, 15]
    assert window_passages(server.requests[0]) == docs[25:45]
    best = sorted(range(45), key=lambda i: -values[i])
    assert [r.index for r in results[:10]] == best[:10]
    assert results[0].score == 1.0 and [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert {r.backend for r in results} == {"llm:gpt-test"} and reranker.score_kind == "provider"
    request = server.requests[0]
    assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-test" and request.body["temperature"] == 0.0
    assert "which passage is most relevant?" in request.body["messages"][-1]["content"]


def test_listwise_with_malformed_answers(openai_env):
    answers = iter(["[2] > [2] > [9] > [x] > Sorry, that is all.",  # window 1 of 2: docs 2..6 (5 passages)
                    "ranking: 3, 1"])  # window 2: docs 0..3 after window 1
    with stand_in(lambda request: chat_reply(next(answers))) as server:
        reranker = LLMReranker("m", base_url=server.url, window=5, step=3)
        docs = [f"passage {i}" for i in range(7)]
        order = [r.index for r in reranker.rerank("q", docs)]
    assert [window_passages(r) for r in server.requests] == [
        ["passage 2", "passage 3", "passage 4", "passage 5", "passage 6"],
        ["passage 0", "passage 1", "passage 3", "passage 2"],
    ]
    # window 1: [2] first, the rest (1, 3, 4, 5 of the window) in their order -> 3, 2, 4, 5, 6
    # window 2 over [0, 1, 3, 2]: "3, 1" -> 3, 0, then 1, 2 in order
    assert order == [3, 0, 1, 2, 4, 5, 6]


def test_pointwise_mode_grades_each_passage(openai_env):
    grades = {"alpha": "9", "beta": "Relevance: 4", "gamma": "no idea", "delta": "7/10"}

    def grade(request):
        passage = request.body["messages"][-1]["content"].split("Passage: ")[1].split("\n")[0]
        return chat_reply(grades[passage])

    with stand_in(grade) as server:
        openai_env.setenv("OPENAI_BASE_URL", server.url)
        reranker = load_reranker("llm:m?mode=pointwise&concurrency=2")
        results = reranker.rerank("q", list(grades))
    assert reranker.mode == "pointwise" and reranker.name == "llm:m?mode=pointwise"
    assert [r.text for r in results] == ["alpha", "delta", "beta", "gamma"]
    assert [r.score for r in results] == pytest.approx([0.9, 0.7, 0.4, 0.0])
    assert len(server.requests) == 4 and all(r.body["max_tokens"] == 8 for r in server.requests)


def test_llm_errors_are_retried_then_typed(openai_env):
    waits: list[float] = []
    policy = RetryPolicy(max_retries=2, jitter=0.0, sleep=waits.append)
    with stand_in(scripted(Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"}),
                           then=lambda r: chat_reply("[2] > [1]"))) as server:
        results = LLMReranker("m", base_url=server.url, retry=policy).rerank("q", ["a", "b"])
    assert [r.index for r in results] == [1, 0] and waits == [1.0]
    with stand_in(lambda request: Reply(500, {"error": {"message": "overloaded"}})) as server:
        with pytest.raises(ProviderError, match="llm: HTTP 500.*overloaded") as err:
            LLMReranker("m", base_url=server.url, retry=policy).rerank("q", ["a", "b"])
    assert err.value.status == 500 and len(server.requests) == 3
    with stand_in(lambda request: Reply(200, {"choices": []})) as server:
        with pytest.raises(ProviderError, match="unusable answer"):
            LLMReranker("m", base_url=server.url).rerank("q", ["a", "b"])


def test_llm_configuration_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ProviderError, match="OPENAI_API_KEY"):
        load_reranker("llm:gpt-4o-mini")
    with pytest.raises(UnknownSpecError, match="unknown option"):
        load_reranker("llm:m?temperature=1", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidInputError, match="mode"):
        load_reranker("llm:m?mode=pairwise", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidInputError, match="step"):
        LLMReranker("m", base_url="http://127.0.0.1:9", window=10, step=11)


def test_one_passage_needs_no_request():
    reranker = LLMReranker("m", base_url="http://127.0.0.1:9")  # nothing listens there
    assert [r.index for r in reranker.rerank("q", ["only"])] == [0]
