"""``Pipeline`` (retrieve -> rerank -> answer with [n] citations) and ``rerankit ask``: the extractive
answerer offline, the generated answer against a local OpenAI-compatible stand-in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
from cli_helpers import run_cli_captured
from test_hosted_support import Reply, chat_reply, cohere_like, stand_in

from rerankit import Answer, Document, Pipeline, load_reranker
from rerankit.errors import InvalidInputError
from rerankit.pipeline import ChatAnswerer, ExtractiveAnswerer, clean_citations, split_sentences
from rerankit.rerankers.base import Reranker
from rerankit.retrieval import BM25Retriever, build_index

PASSWORD_QUESTION = "How do I reset my password?"


class OverlapReranker(Reranker):
    """Scores by the number of query words in the text (a deterministic local stand-in for a model)."""

    score_kind = "logit"
    name = "overlap"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        words = set(re.findall(r"\w+", query.lower()))
        counts = [len(words & set(re.findall(r"\w+", d.full_text.lower()))) for d in documents]
        return np.array(counts, dtype=np.float32)


@pytest.fixture
def retriever(tiny_docs):
    return BM25Retriever.from_documents(tiny_docs)


# ---------------------------------------------------------------- sentences and citations


def test_split_sentences():
    text = ("To reset it, click 'Forgot password?' and follow the link. It expires in 1 hour! Why? \"Security.\"\n"
            "Next line")
    assert split_sentences(text) == [
        "To reset it, click 'Forgot password?' and follow the link.", "It expires in 1 hour!", "Why?",
        '"Security."', "Next line",
    ]
    assert split_sentences("  ") == [] and split_sentences("no full stop") == ["no full stop"]


def test_clean_citations_drops_sources_that_do_not_exist():
    text, cited = clean_citations("Paris is the capital [2]. It has a tower [1, 7]. Also [9].", 3)
    assert text == "Paris is the capital [2]. It has a tower [1]. Also." and cited == [2, 1]
    assert clean_citations("No citations here.", 2) == ("No citations here.", [])
    assert clean_citations("A [1][2] B [2; 3]", 3) == ("A [1][2] B [2, 3]", [1, 2, 3])


# ---------------------------------------------------------------- the pipeline


def test_extractive_pipeline_cites_the_passage_of_each_sentence(retriever):
    pipeline = Pipeline(retriever, OverlapReranker(), ExtractiveAnswerer(OverlapReranker(), max_sentences=2),
                        candidates=4, top_k=3)
    answer = pipeline.ask("which programming language has memory safety without a garbage collector")
    assert isinstance(answer, Answer) and answer.answerer == "extractive" and answer.reranker == "overlap"
    assert [s.rank + 1 for s in answer.sources] == [1, 2] and answer.sources[0].id == "rust"
    assert answer.retrieved == 2  # BM25 leaves out passages without a query word
    lines = answer.text.splitlines()
    assert len(lines) <= 2 and answer.cited and answer.cited[0] == 1
    for line in lines:
        sentence, number = re.fullmatch(r"(.*) \[(\d+)\]", line).groups()
        assert sentence in answer.sources[int(number) - 1].document.text  # each sentence from the passage it cites
    assert answer.cited_sources()[0].document.title == "Rust"
    assert all(s.index >= 0 for s in answer.sources)


def test_pipeline_without_reranker_and_with_a_hosted_one(retriever, monkeypatch):
    plain = Pipeline(retriever, None, ExtractiveAnswerer(OverlapReranker()), top_k=2).sources("green tea caffeine")
    assert [s.id for s in plain] == ["tea"] and plain[0].backend is None  # BM25 drops zero-score passages
    monkeypatch.setenv("CO_API_KEY", "k")
    with stand_in(cohere_like) as server:
        hosted = load_reranker("cohere:rerank-v3.5", base_url=server.url)
        pipeline = Pipeline(retriever, hosted, ExtractiveAnswerer(OverlapReranker()), candidates=6, top_k=2)
        answer = pipeline.ask("programming language")
    assert {s.backend for s in answer.sources} == {"cohere:rerank-v3.5"} and len(answer.sources) == 2
    assert answer.reranker == "cohere:rerank-v3.5"


def test_generated_answer_only_from_the_top_passages(retriever):
    reply = "Rust is memory safe without a garbage collector [1]. Python is popular [2][5]."
    with stand_in(lambda request: chat_reply(reply)) as server:
        answerer = ChatAnswerer("gpt-test", base_url=server.url, api_key="k")
        answer = Pipeline(retriever, OverlapReranker(), answerer, candidates=6, top_k=2).ask("programming language")
    assert answer.text == "Rust is memory safe without a garbage collector [1]. Python is popular [2]."
    assert answer.cited == [1, 2] and answer.answerer == "llm:gpt-test"
    (request,) = server.requests
    system, user = request.body["messages"]
    assert "only" in system["content"] and "does not contain the answer" in system["content"]
    first, second = (s.document.full_text for s in answer.sources)
    assert f"[1] {first}\n\n[2] {second}\n" in user["content"] and "[3]" not in user["content"]
    assert user["content"].rstrip().endswith("Question: programming language\nAnswer:")
    assert request.body["max_tokens"] == 512 and request.body["temperature"] == 0.0


def test_generated_answer_may_say_the_context_lacks_it(retriever):
    with stand_in(lambda request: chat_reply("The context does not contain the answer.")) as server:
        answer = Pipeline(retriever, OverlapReranker(), ChatAnswerer("m", base_url=server.url)).ask("paris museum")
    assert answer.text == "The context does not contain the answer." and answer.cited == []


def test_pipeline_input_errors(retriever):
    with pytest.raises(InvalidInputError):
        Pipeline(object(), OverlapReranker())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Pipeline(retriever, OverlapReranker(), ExtractiveAnswerer(OverlapReranker()), top_k=0)
    with pytest.raises(InvalidInputError):
        Pipeline(retriever, OverlapReranker(), ExtractiveAnswerer(OverlapReranker())).ask("  ")
    with pytest.raises(InvalidInputError, match="top_k"):
        Pipeline(retriever, OverlapReranker(), ExtractiveAnswerer(OverlapReranker())).ask("rust", top_k=0)
    none = Pipeline(retriever, OverlapReranker(), ExtractiveAnswerer(OverlapReranker())).ask("zebra xylophone")
    assert none.sources == [] and none.cited == []


# ---------------------------------------------------------------- rerankit ask


def test_ask_demo_offline_answers_from_the_password_passages():
    """Acceptance: on the demo corpus, offline, the answer comes from the password passages with [n] citations."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "rerankit", "ask", PASSWORD_QUESTION, "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["answerer"] == "extractive" and answer["reranker"] == "default" and len(answer["sources"]) == 5
    assert answer["retrieved"] == 7  # the whole demo corpus (hybrid retrieval), reranked to the top 5
    cited = [s for s in answer["sources"] if s["cited"]]
    assert cited and {s["id"] for s in cited} <= {"reset-steps", "reset-email", "password-rules"}
    assert answer["sources"][0]["id"] == "reset-steps"
    first_line = answer["answer"].splitlines()[0]
    assert "Forgot password?" in first_line and first_line.endswith("[1]")


def test_ask_with_an_index_and_json(tmp_path, tiny_docs, tiny_cross_encoder_dir, capsys):
    index = build_index(tiny_docs, tmp_path / "ix", dense=False)
    code, out, err = run_cli_captured(["ask", "Which programming language is popular for data science?", "--index", str(index),
                              "-n", "4", "-k", "2", "--rerank", str(tiny_cross_encoder_dir), "--json"], capsys)
    assert code == 0, err
    answer = json.loads(out)
    assert len(answer["sources"]) == 2 and [s["n"] for s in answer["sources"]] == [1, 2]
    assert re.search(r"\[[12]\]$", answer["answer"].splitlines()[0])
    assert set(answer["sources"][0]) == {"n", "id", "title", "text", "score", "first_stage_rank", "backend", "cited"}
    code, out, err = run_cli_captured(["ask", "programming language", "--index", str(index), "--mode", "bm25", "-k", "2",
                              "--rerank", str(tiny_cross_encoder_dir)], capsys)
    assert code == 0, err
    assert "Answer (extractive" in out and "Sources (" in out and re.search(r"\[1\] (rust|python)", out)


def test_ask_with_an_llm(tmp_path, tiny_docs, tiny_cross_encoder_dir, capsys, monkeypatch):
    index = build_index(tiny_docs, tmp_path / "ix", dense=False)
    with stand_in(lambda request: chat_reply("Python is used for data science [1].")) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        code, out, err = run_cli_captured(["ask", "data science language", "--index", str(index), "-k", "2",
                                  "--rerank", str(tiny_cross_encoder_dir), "--llm", "gpt-test"], capsys)
    assert code == 0, err
    assert "Answer (generated by gpt-test)" in out and "Python is used for data science [1]." in out
    assert "*[1]" in out


def test_ask_errors_are_one_line(tmp_path, tiny_docs, tiny_cross_encoder_dir, capsys, monkeypatch):
    code, _, err = run_cli_captured(["ask", "q", "-k", "0"], capsys)
    assert code == 2 and err.startswith("error: -k must be a positive integer")
    code, _, err = run_cli_captured(["ask", "q", "--index", str(tmp_path / "missing")], capsys)
    assert code == 2 and err.startswith("error: no index at")
    index = build_index(tiny_docs, tmp_path / "ix", dense=False)
    with stand_in(lambda request: Reply(401, {"error": {"message": "invalid key"}})) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        code, _, err = run_cli_captured(["ask", "programming", "--index", str(index), "--rerank", str(tiny_cross_encoder_dir),
                                "--llm", "m"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: llm: HTTP 401") and "invalid key" in err
