"""Property-based fuzzing of the app's OpenAPI schema with schemathesis: no generated request gets a 5xx.

Valid and invalid requests (schemathesis' positive and negative modes) go to every operation
through the ASGI transport. ``RERANKIT_FUZZ_EXAMPLES`` sets the examples per rerank operation and
mode (default 40: a few hundred requests in all); ``RERANKIT_FUZZ_EXAMPLES=1700 pytest -s
tests/test_server_fuzz.py`` sends more than 10,000 and prints the count.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from test_server_support import tiny_engine_reranker  # noqa: F401  (fixture)

from rerankit.server import ServerConfig, create_app
from rerankit.server.config import ModelSpec

EXAMPLES = int(os.environ.get("RERANKIT_FUZZ_EXAMPLES", "40"))
SENT: dict[str, int] = {}
OPERATIONS = [("/v2/rerank", "POST", mode) for mode in ("positive", "negative")] + \
             [("/v1/rerank", "POST", mode) for mode in ("positive", "negative")] + \
             [("/rerank", "POST", mode) for mode in ("positive", "negative")] + \
             [("/health", "GET", "positive"), ("/metrics", "GET", "positive")]


@pytest.fixture(scope="module")
def api_schema(tiny_engine_reranker):  # noqa: F811
    config = ServerConfig(models=(ModelSpec("tiny", "tiny"),), max_documents=64, max_query_chars=2000,
                          max_document_chars=4000, max_body_bytes=256 * 1024, max_queue_documents=256)
    app = create_app(config, rerankers={"tiny": tiny_engine_reranker})
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.registry.close()
    print(f"\nfuzz: {sum(SENT.values())} requests sent, none answered 5xx: {SENT}")  # shown with -s


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS)
def test_no_generated_request_gets_a_5xx(api_schema, path, method, mode):
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    examples = EXAMPLES if method == "POST" else 5
    key = f"{method} {path} {mode}"

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        SENT[key] = SENT.get(key, 0) + 1
        assert response.status_code < 500, f"{key} -> {response.status_code}: {response.text[:500]}"
        if method == "POST":
            body = json.loads(response.text)  # every answer, error or not, is JSON in the path's dialect
            if response.status_code >= 400:
                assert set(body) == ({"error", "error_type"} if path == "/rerank" else {"message"}), body

    check()


# Beyond the schema: any JSON value in any field, with lone surrogates, NaN, huge numbers and deep nesting.
SURROGATE_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xDFFF), max_size=30)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), SURROGATE_TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(SURROGATE_TEXT, inner, max_size=4)), max_leaves=12)
FIELDS = ["model", "query", "documents", "texts", "top_n", "max_tokens_per_doc", "rank_fields", "return_documents",
          "max_chunks_per_doc", "raw_scores", "return_text", "truncate", "truncation_direction", "priority"]
GOOD = {"model": "m", "query": "what is rust", "documents": ["Rust is a language.", "Tea is a drink."],
        "texts": ["Rust is a language.", "Tea is a drink."]}
BODIES = st.one_of(
    VALUES,
    st.fixed_dictionaries({}, optional={f: VALUES for f in FIELDS}),
    st.builds(lambda field, value: {**GOOD, field: value}, st.sampled_from(FIELDS), VALUES),
)


@pytest.fixture(scope="module")
def raw_client(tiny_engine_reranker):  # noqa: F811
    from fastapi.testclient import TestClient

    config = ServerConfig(models=(ModelSpec("tiny", "tiny"),), max_documents=64, max_query_chars=2000,
                          max_document_chars=4000, max_body_bytes=256 * 1024, max_queue_documents=256)
    with TestClient(create_app(config, rerankers={"tiny": tiny_engine_reranker})) as client:
        yield client


@pytest.mark.parametrize("path", ["/v2/rerank", "/v1/rerank", "/rerank"])
def test_any_json_body_gets_a_json_answer_below_500(raw_client, path):
    @given(body=BODIES)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(body):
        data = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity literals and \\ud800 escapes included
        response = raw_client.post(path, content=data, headers={"content-type": "application/json"})
        SENT[f"POST {path} raw"] = SENT.get(f"POST {path} raw", 0) + 1
        assert response.status_code < 500, f"{body!r} -> {response.status_code}: {response.text[:300]}"
        json.loads(response.text)

    check()
