"""``rerankit serve`` in process: the Cohere v2/v1, Jina and TEI shapes, errors per dialect, auth, limits, metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_server_support import LengthReranker, tiny_reranker  # noqa: F401  (fixture)

from rerankit.errors import InvalidInputError
from rerankit.rerankers.base import Reranker
from rerankit.server import ServerConfig, create_app
from rerankit.server.auth import KeyChecker, collect_keys, read_keys_file
from rerankit.server.config import ModelSpec

QUERY = "what is the capital of france"
DOCS = ["Paris is the capital of France.", "Cats purr when they are content.", "Berlin is in Germany.",
        "The Eiffel Tower is in Paris.", "Bread rises because of yeast."]
LIMITS = dict(max_documents=20, max_query_chars=200, max_document_chars=1000, max_body_bytes=64 * 1024,
              max_queue_documents=100)


def make_app(rerankers: dict[str, Reranker], **options):
    models = tuple(ModelSpec(name, name) for name in rerankers)
    return create_app(ServerConfig(models=models, **{**LIMITS, **options}), rerankers=rerankers)


@pytest.fixture(scope="module")
def client(tiny_reranker):  # noqa: F811
    with TestClient(make_app({"tiny": tiny_reranker})) as c:
        yield c


def expected(reranker, query=QUERY, docs=DOCS):
    return [(r.index, r.score) for r in reranker.rerank(query, docs)]


def post_raw(client, path, body, **headers):
    """POST ``body`` as JSON text (ASCII-escaped, so lone surrogates travel as the client sent them)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=data, headers={"content-type": "application/json", **headers})


# -- shapes ----------------------------------------------------------------------------------------

def test_cohere_v2_shape_and_ranking(client, tiny_reranker):  # noqa: F811
    want = expected(tiny_reranker)
    r = client.post("/v2/rerank", json={"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "results", "meta"} and body["id"]
    assert body["meta"]["api_version"]["version"] == "2" and body["meta"]["billed_units"]["search_units"] == 1
    assert [x["index"] for x in body["results"]] == [i for i, _ in want[:3]]
    for got, (_, score) in zip(body["results"], want):
        assert set(got) == {"index", "relevance_score"}
        assert math.isclose(got["relevance_score"], score, rel_tol=1e-5)  # a probability already in [0, 1]


def test_top_n_above_the_document_count_returns_all(client):
    r = client.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": DOCS[:2], "top_n": 10})
    assert r.status_code == 200 and sorted(x["index"] for x in r.json()["results"]) == [0, 1]


def test_cohere_v1_strings_objects_and_rank_fields(client, tiny_reranker):  # noqa: F811
    want = [i for i, _ in expected(tiny_reranker)]
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS})
    assert r.status_code == 200
    body = r.json()
    assert [x["index"] for x in body["results"]] == want
    assert all("document" not in x for x in body["results"])  # Cohere's default: return_documents false
    assert body["meta"]["api_version"]["version"] == "1"

    objects = [{"text": d, "source": f"kb-{i}"} for i, d in enumerate(DOCS)]
    r = client.post("/v1/rerank", json={"model": "x", "query": QUERY, "documents": objects, "top_n": 2,
                                        "return_documents": True})
    results = r.json()["results"]
    assert [x["index"] for x in results] == want[:2]
    assert results[0]["document"] == objects[want[0]]  # every field comes back

    fielded = [{"title": f"doc {i}", "body": d} for i, d in enumerate(DOCS)]
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": fielded, "rank_fields": ["body"]})
    assert [x["index"] for x in r.json()["results"]] == want  # ranked by 'body' alone = the plain texts
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": fielded, "rank_fields": ["title", "body"],
                                        "max_chunks_per_doc": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == len(DOCS)


def test_jina_shape(client, tiny_reranker):  # noqa: F811
    want = [i for i, _ in expected(tiny_reranker)]
    docs = [DOCS[0], {"text": DOCS[1]}, *DOCS[2:]]
    r = client.post("/v1/rerank", json={"model": "jina-reranker-v2-base-multilingual", "query": QUERY,
                                        "documents": docs, "top_n": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "jina-reranker-v2-base-multilingual"
    assert body["usage"]["total_tokens"] > len(DOCS)
    assert [x["index"] for x in body["results"]] == want[:3]
    assert all(x["document"] == {"text": DOCS[x["index"]]} for x in body["results"])  # Jina's default: documents on
    r = client.post("/v1/rerank", json={"model": "jina-reranker-v2-base-multilingual", "query": QUERY,
                                        "documents": docs, "return_documents": False})
    assert all("document" not in x for x in r.json()["results"])


def test_tei_shape(client, tiny_reranker):  # noqa: F811
    want = expected(tiny_reranker)
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS})
    assert r.status_code == 200
    ranks = r.json()
    assert isinstance(ranks, list) and [x["index"] for x in ranks] == [i for i, _ in want]
    assert all(set(x) == {"index", "score"} for x in ranks)
    assert [x["score"] for x in ranks] == sorted((x["score"] for x in ranks), reverse=True)
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True, "return_text": True,
                                     "truncate": True, "truncation_direction": "Left"})
    raw = r.json()
    assert [x["text"] for x in raw] == [DOCS[i] for i, _ in want]
    for got, (_, p) in zip(raw, want):  # the raw score is the logit behind the probability
        assert math.isclose(got["score"], math.log(p / (1 - p)), rel_tol=1e-4, abs_tol=1e-4)


def test_health_docs_and_openapi(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"][0]["name"] == "tiny"
    assert health["models"][0]["batching"] == "score_many"  # a local cross-encoder shares batches across requests
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v2/rerank", "/v1/rerank", "/rerank", "/health", "/metrics"} <= set(paths)


def test_metrics_count_requests_documents_batches_and_latency(client):
    client.post("/v2/rerank", json={"model": "m", "query": QUERY, "documents": DOCS})
    client.post("/rerank", json={"query": QUERY, "texts": []})
    text = client.get("/metrics").text
    for line in ('rerankit_requests_total{endpoint="/v2/rerank",status="200"}',
                 'rerankit_requests_total{endpoint="/rerank",status="400"}',
                 'rerankit_documents_total{endpoint="/v2/rerank",model="tiny"}',
                 'rerankit_batch_documents_bucket{le="5.0",model="tiny"}',
                 'rerankit_batch_requests_count{model="tiny"}',
                 'rerankit_queue_wait_seconds_count{model="tiny"}',
                 'rerankit_inference_seconds_count{model="tiny"}',
                 'rerankit_request_duration_seconds_bucket{endpoint="/v2/rerank",le="60.0"}',
                 "rerankit_requests_in_progress 0.0"):
        assert line in text, line


# -- bad inputs: the right 4xx, in the dialect of the path, naming the problem ---------------------------

V2 = {"model": "m", "query": QUERY, "documents": DOCS}
TEI = {"query": QUERY, "texts": DOCS}
BAD = [
    ("/v2/rerank", {"query": QUERY, "documents": DOCS}, 400, "model: field required"),
    ("/v2/rerank", {"model": "m", "documents": DOCS}, 400, "query: field required"),
    ("/v2/rerank", {"model": "m", "query": QUERY}, 400, "documents: field required"),
    ("/v2/rerank", {**V2, "query": 42}, 400, "query: Input should be a valid string"),
    ("/v2/rerank", {**V2, "documents": "Paris"}, 400, "documents: Input should be a valid list"),
    ("/v2/rerank", {**V2, "documents": ["a", 3]}, 400, "documents.1"),
    ("/v2/rerank", {**V2, "top_n": "3"}, 400, "top_n"),
    ("/v2/rerank", {**V2, "top_n": 0}, 400, "top_n must be between 1 and 20"),
    ("/v2/rerank", {**V2, "top_n": -5}, 400, "top_n must be between 1 and 20"),
    ("/v2/rerank", {**V2, "top_n": 10**30}, 400, "--max-documents"),
    ("/v2/rerank", {**V2, "max_tokens_per_doc": 0}, 400, "max_tokens_per_doc must be a positive integer"),
    ("/v2/rerank", {**V2, "documents": []}, 400, "`documents` cannot be empty"),
    ("/v2/rerank", {**V2, "query": "   "}, 400, "query must not be empty"),
    ("/v2/rerank", {**V2, "documents": ["d"] * 21}, 400, "limit of 20 per request (--max-documents)"),
    ("/v2/rerank", {**V2, "documents": ["a", "x" * 1001]}, 400,
     "documents[1] has 1001 characters, above the limit of 1000 (--max-document-chars)"),
    ("/v2/rerank", {**V2, "query": "q" * 201}, 400, "above the limit of 200 (--max-query-chars)"),
    ("/v2/rerank", {**V2, "query": "bad \ud800"}, 400, "lone surrogate"),
    ("/v2/rerank", b'{"model": "m", "query": ', 400, "not valid JSON"),
    ("/v2/rerank", [1, 2], 400, "invalid request"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"title": "no text"}]}, 400, "documents[0] needs a string 'text'"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"text": "t"}], "rank_fields": ["title"]}, 400, "no field 'title'"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"text": ["a"]}], "rank_fields": ["text"]}, 400, "must be a string"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "max_chunks_per_doc": 0}, 400, "max_chunks_per_doc"),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "return_documents": "yes"}, 400, "return_documents"),
    ("/v1/rerank", {"query": QUERY, "documents": [{"x": 1}] * 21}, 400, "--max-documents"),
    ("/rerank", {"query": QUERY, "texts": []}, 400, "`texts` cannot be empty"),
    ("/rerank", {"query": " ", "texts": DOCS}, 400, "query must not be empty"),
    ("/rerank", {**TEI, "texts": ["t"] * 21}, 413, "--max-documents"),
    ("/rerank", {**TEI, "texts": ["x" * 1001]}, 413, "--max-document-chars"),
    ("/rerank", {"texts": DOCS}, 422, "query: field required"),
    ("/rerank", {**TEI, "raw_scores": "yes"}, 422, "raw_scores"),
    ("/rerank", {**TEI, "truncation_direction": "up"}, 422, "truncation_direction"),
    ("/rerank", {**TEI, "query": "\udfff"}, 422, "lone surrogate"),
    ("/rerank", b"not json", 422, "not valid JSON"),
    ("/rerank", b'{"query": "caf\xe9", "texts": ["a"]}', 422, "not valid JSON"),  # latin-1, not UTF-8
    ("/v2/rerank", b'{"model": "m", "query": "q", "documents": ["a"], "top_n": ' + b"1" * 5000 + b"}", 400,
     "not valid JSON"),
    # an echoed document nested 500 deep (NaN at the bottom) used to overflow the JSON renderer: a 500
    ("/v1/rerank", ('{"query": "q", "model": "jina-reranker-v2", "documents": [{"text": "a", "meta": %s}]}'
                    % ("[" * 500 + "NaN" + "]" * 500)).encode(), 400, "more than 32 levels deep"),
]


@pytest.mark.parametrize(("path", "body", "status", "says"), BAD, ids=[f"{p}-{i}" for i, (p, *_rest) in enumerate(BAD)])
def test_bad_input_gets_the_right_4xx(client, path, body, status, says):
    r = post_raw(client, path, body)
    assert r.status_code == status, r.text
    error = r.json()
    if path == "/rerank":
        assert set(error) == {"error", "error_type"} and says in error["error"]
        assert error["error_type"] == {400: "empty", 413: "validation", 422: "validation"}[status]
    else:
        assert set(error) == {"message"} and says in error["message"]


def test_unknown_path_and_method_answer_json(client):
    r = client.post("/v3/rerank", json=V2)
    assert r.status_code == 404 and "message" in r.json()
    r = client.get("/v2/rerank")
    assert r.status_code == 405 and "message" in r.json()


def test_oversized_body_is_refused_by_content_length_and_while_streaming(client):
    big = json.dumps({**V2, "documents": ["x" * 900] * 80}).encode()  # ~72 KB > 64 KiB
    r = client.post("/v2/rerank", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit of 65536 bytes (--max-body-bytes)" in r.json()["message"]
    r = client.post("/rerank", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "validation"

    def chunks():  # no Content-Length: counted as it streams
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    r = client.post("/v2/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["message"]
    r = client.post("/v2/rerank", content=b"{}", headers={"content-type": "application/json", "content-length": "x"})
    assert r.status_code == 400


# -- models ------------------------------------------------------------------------------------------

class NonFinite(Reranker):
    score_kind = "probability"

    def _score(self, query, documents):
        return np.array([np.nan, np.inf, -np.inf, 0.5][: len(documents)], dtype=np.float32)


class Refuses(Reranker):
    def _score(self, query, documents):
        raise InvalidInputError("this model cannot read that")


@pytest.fixture(scope="module")
def multi(tiny_reranker):  # noqa: F811
    app = make_app({"tiny": tiny_reranker, "length": LengthReranker(), "nonfinite": NonFinite(), "refuses": Refuses()})
    with TestClient(app) as c:
        yield c


def test_several_models_chosen_by_name(multi, tiny_reranker):  # noqa: F811
    r = multi.post("/v2/rerank", json={**V2, "model": "length"})
    assert [x["index"] for x in r.json()["results"]] == list(np.argsort([-len(d) for d in DOCS], kind="stable"))
    r = multi.post("/v2/rerank", json={**V2, "model": "tiny"})
    assert [x["index"] for x in r.json()["results"]] == [i for i, _ in expected(tiny_reranker)]
    r = multi.post("/v1/rerank", json={"query": QUERY, "documents": DOCS})  # v1 without model: the first one
    assert [x["index"] for x in r.json()["results"]] == [i for i, _ in expected(tiny_reranker)]
    r = multi.post("/rerank", json={**TEI, "model": "length"})
    assert r.json()[0]["index"] == int(np.argmax([len(d) for d in DOCS]))
    r = multi.post("/v2/rerank", json={**V2, "model": "rerank-v3.5"})
    assert r.status_code == 404 and "served models: tiny, length, nonfinite, refuses" in r.json()["message"]
    r = multi.post("/rerank", json={**TEI, "model": "nope"})
    assert r.status_code == 404 and r.json()["error_type"] == "validation"


def test_non_finite_scores_still_give_valid_json(multi):
    for path, body in (("/v2/rerank", {**V2, "model": "nonfinite", "documents": DOCS[:4]}),
                       ("/rerank", {**TEI, "texts": DOCS[:4], "model": "nonfinite", "raw_scores": True})):
        r = multi.post(path, json=body)
        assert r.status_code == 200
        scores = [x.get("relevance_score", x.get("score")) for x in (r.json()["results"] if "v2" in path else r.json())]
        assert all(math.isfinite(s) for s in scores)


def test_a_model_refusing_an_input_is_a_400(multi):
    r = multi.post("/v2/rerank", json={**V2, "model": "refuses"})
    assert r.status_code == 400 and "cannot read that" in r.json()["message"]


# -- auth --------------------------------------------------------------------------------------------

def test_api_keys(tiny_reranker, tmp_path, monkeypatch):  # noqa: F811
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# service keys\nfile-key\n\n")
    monkeypatch.setenv("RERANKIT_API_KEYS", "env-key-1, env-key-2")
    keys = collect_keys(["cli-key"], keys_file)
    assert keys == ("cli-key", "file-key", "env-key-1", "env-key-2")
    app = make_app({"tiny": tiny_reranker}, api_keys=keys)
    with TestClient(app) as c:
        r = c.post("/v2/rerank", json=V2)
        assert r.status_code == 401 and "missing API key" in r.json()["message"]
        assert r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v2/rerank", json=V2, headers={"Authorization": "Basic abc"})
        assert r.status_code == 401
        r = c.post("/v2/rerank", json=V2, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json() == {"message": "invalid API key"}
        r = c.post("/rerank", json=TEI, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json()["error_type"] == "unauthorized"
        r = c.post("/rerank", json=TEI)
        assert r.status_code == 401 and set(r.json()) == {"error", "error_type"}
        for key in keys:
            assert c.post("/v2/rerank", json=V2, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        # the key is checked before the body is read: a wrong key never learns about the body's problems
        r = c.post("/v2/rerank", content=b"{", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403
        assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200


def test_a_body_that_is_not_declared_json_is_a_415(client):
    for path, body in (("/v2/rerank", V2), ("/rerank", TEI)):
        for headers in ({}, {"content-type": "application/x-www-form-urlencoded"}):
            r = client.post(path, content=json.dumps(V2 if path != "/rerank" else body).encode(), headers=headers)
            assert r.status_code == 415, r.text
            message = r.json()["error" if path == "/rerank" else "message"]
            assert "Content-Type: application/json" in message


def test_documents_nested_within_the_limit_are_echoed(client):
    nested: object = "leaf"
    for _ in range(30):
        nested = [nested]
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": [{"text": "a", "meta": nested}],
                                        "return_documents": True})
    assert r.status_code == 200 and r.json()["results"][0]["document"]["meta"] == nested


def test_utf8_api_keys_match_what_clients_send(tiny_reranker):  # noqa: F811
    with TestClient(make_app({"tiny": tiny_reranker}, api_keys=("clé-ü",))) as c:
        r = c.post("/v2/rerank", content=json.dumps(V2).encode(),
                   headers=[("content-type", "application/json"), ("authorization", "Bearer clé-ü".encode())])
        assert r.status_code == 200, r.text
        r = c.post("/v2/rerank", content=json.dumps(V2).encode(),
                   headers=[("content-type", "application/json"), ("authorization", "Bearer clé-u".encode())])
        assert r.status_code == 403
    with pytest.raises(InvalidInputError, match="space or a control character"):
        ServerConfig(api_keys=("two words",))


def test_without_keys_any_token_is_accepted(client):
    r = client.post("/v2/rerank", json=V2, headers={"Authorization": "Bearer whatever-the-sdk-sends"})
    assert r.status_code == 200


def test_keys_file_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read API keys file"):
        read_keys_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InvalidInputError, match="holds no key"):
        read_keys_file(tmp_path / "empty.txt")
    checker = KeyChecker([])
    assert not checker.enabled and checker.check(None) is None


def test_config_validation():
    with pytest.raises(InvalidInputError, match="unique"):
        ServerConfig(models=(ModelSpec("a", "x"), ModelSpec("a", "y")))
    with pytest.raises(InvalidInputError, match="--max-documents"):
        ServerConfig(max_documents=0)
    with pytest.raises(InvalidInputError, match="--max-queue-documents"):
        ServerConfig(max_documents=100, max_queue_documents=10)
    assert ModelSpec.parse("fast=engine:default") == ModelSpec("fast", "engine:default")
    assert ModelSpec.parse("default") == ModelSpec("default", "default")
    config = ServerConfig(models=(ModelSpec("a", "x"),), api_keys=("k",), max_documents=5, max_queue_documents=5)
    assert ServerConfig.from_json(config.to_json()) == config
    with pytest.raises(InvalidInputError, match="--max-documents must be a positive integer, got 'many'"):
        ServerConfig(max_documents="many")
    with pytest.raises(InvalidInputError, match="--graceful-timeout-s: Input should be a valid number"):
        ServerConfig(graceful_timeout_s="soon")
    with pytest.raises(InvalidInputError, match="--max-docs: Extra inputs are not permitted"):
        ServerConfig(max_docs=5)
    with pytest.raises(InvalidInputError, match="--models"):
        ServerConfig.from_json('{"models": [{"name": "a"}]}')


def test_load_model_passes_backend_and_long_docs(tiny_cross_encoder_dir):
    import rerankit
    from rerankit.server.batcher import many_scorer
    from rerankit.server.models import load_model

    folder = str(tiny_cross_encoder_dir)
    windows = load_model(ModelSpec("m", folder), "torch-fp32", "max")
    assert windows.builder.long_docs == "max" and many_scorer(windows) is not None
    averaged = load_model(ModelSpec("m", folder), "torch-fp32", "mean")  # score_many averages windows as score does
    assert many_scorer(averaged) is not None and load_model(ModelSpec("m", folder), "torch", "max").backend == "torch-fp32"
    rerankit.register("servertest-plain", lambda arg: LengthReranker())  # takes no keyword at all
    assert isinstance(load_model(ModelSpec("p", "servertest-plain:x"), None, "max"), LengthReranker)
    with pytest.raises(InvalidInputError, match="--backend 'torch-fp32' does not apply"):
        load_model(ModelSpec("p", "servertest-plain:x"), "torch-fp32", "max")
    with pytest.raises(InvalidInputError, match="--long-docs"):
        ServerConfig(long_docs="all")
