"""Passage sources, BM25/dense/hybrid retrievers, RRF, the two-stage helper, and the OpenAI embedder."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from rerankit.errors import DataFormatError, InvalidInputError, RerankitError
from rerankit.http_client import RetryPolicy
from rerankit.rerankers.base import Reranker
from rerankit.retrieval import (
    BM25Retriever,
    DenseRetriever,
    EmbeddingServiceError,
    HybridRetriever,
    LocalEmbedder,
    OpenAIEmbedder,
    load_passages,
    retrieve_and_rerank,
    rrf,
)
from rerankit.retrieval.base import top_k
from rerankit.retrieval.sources import word_windows
from rerankit.types import Document, RankedResult

# ---------------------------------------------------------------- sources


def test_jsonl_source_keeps_ids_and_titles(tiny_corpus_jsonl: Path) -> None:
    docs = load_passages(tiny_corpus_jsonl)
    assert [d.id for d in docs] == ["cat", "dog", "rust", "python", "paris", "tea"]
    assert docs[2].title == "Rust" and docs[2].text.startswith("Rust is a systems")


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "ok"}\n\n{"_id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:3: invalid JSON"):
        load_passages(path)
    path.write_text('{"_id": "a", "text": "ok"}\n{"_id": "b"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r":2: missing string field 'text'"):
        load_passages(path)


def test_duplicate_ids_are_rejected(tmp_path: Path, corpus_writer) -> None:
    path = corpus_writer(tmp_path / "c.jsonl", [{"_id": "a", "text": "x"}, {"_id": "a", "text": "y"}])
    with pytest.raises(DataFormatError, match="c.jsonl:2: document id 'a' again"):
        load_passages(path)


def test_text_file_one_passage_per_line(tmp_path: Path) -> None:
    path = tmp_path / "passages.txt"
    path.write_text("first passage\n\n   \n  second passage  \nthird\n", encoding="utf-8")
    docs = load_passages(path)
    assert [(d.id, d.text) for d in docs] == [("1", "first passage"), ("4", "second passage"), ("5", "third")]


def test_word_windows_overlap_and_cover_the_end() -> None:
    words = [f"w{i}" for i in range(10)]
    windows = word_windows(words, 4, 1)
    assert [start for start, _ in windows] == [0, 3, 6]
    assert windows[-1][1] == ["w6", "w7", "w8", "w9"]
    assert word_windows(words[:3], 4, 1) == [(0, ["w0", "w1", "w2"])]


def test_folder_source_chunks_md_and_txt_with_overlap(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.md").write_text(" ".join(f"n{i}" for i in range(10)), encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("alpha beta\ngamma", encoding="utf-8")
    (tmp_path / "sub" / "empty.md").write_text("  \n", encoding="utf-8")
    (tmp_path / ".hidden" / "secret.md").write_text("do not index", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs = load_passages(tmp_path, chunk_words=4, overlap_words=1)
    assert [d.id for d in docs] == ["notes.md#0", "notes.md#1", "notes.md#2", "sub/a.txt#0"]
    assert [d.text for d in docs[:3]] == ["n0 n1 n2 n3", "n3 n4 n5 n6", "n6 n7 n8 n9"]
    assert docs[0].title == "notes.md" and docs[3].title == "a.txt"
    assert docs[3].text == "alpha beta gamma"
    assert docs[1].metadata == {"source": "notes.md", "chunk": 1, "start_word": 3}


def test_single_md_file_is_chunked(tmp_path: Path) -> None:
    path = tmp_path / "readme.md"
    path.write_text(" ".join(f"t{i}" for i in range(5)), encoding="utf-8")
    docs = load_passages(path, chunk_words=3, overlap_words=0)
    assert [(d.id, d.text) for d in docs] == [("readme.md#0", "t0 t1 t2"), ("readme.md#1", "t3 t4")]


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("missing.jsonl", None, InvalidInputError, "source not found"),
        ("x.pdf", b"%PDF", InvalidInputError, "unsupported source"),
        ("blank.txt", b"\n\n", DataFormatError, "no passages"),
        ("empty.jsonl", b"", DataFormatError, "no passages"),
        ("folder", "dir", DataFormatError, "no non-empty"),
        ("binary.txt", b"\xff\xfe\x00bad", DataFormatError, "not UTF-8"),
    ],
)
def test_bad_sources_raise_typed_errors(tmp_path: Path, name, content, error, message) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        load_passages(path)


def test_bad_chunk_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="overlap_words"):
        load_passages(tmp_path, chunk_words=10, overlap_words=10)
    with pytest.raises(InvalidInputError, match="chunk_words"):
        load_passages(tmp_path, chunk_words=0)


# ---------------------------------------------------------------- RRF and top-k


def test_rrf_hand_computed() -> None:
    fused = rrf([["a", "b", "c"], ["b", "c", "d"]], k=60)
    assert [doc for doc, _ in fused] == ["b", "c", "a", "d"]
    expected = {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63 + 1 / 62, "d": 1 / 63}
    for doc, score in fused:
        assert score == pytest.approx(expected[doc], abs=1e-15)


def test_rrf_ties_are_deterministic_and_order_free() -> None:
    assert rrf([["y"], ["x"]]) == rrf([["x"], ["y"]]) == [("x", 1 / 61), ("y", 1 / 61)]
    one = rrf([["a", "b", "c"], ["c", "b", "a"], ["b", "a", "c"]], k=1)
    two = rrf([["b", "a", "c"], ["c", "b", "a"], ["a", "b", "c"]], k=1)
    assert one == two and one[0] == ("b", pytest.approx(1 / 3 + 1 / 3 + 1 / 2))
    assert rrf([["a", "a", "b"]], k=0) == [("a", 1.0), ("b", 1 / 3)]  # repeats count once, at the best rank
    with pytest.raises(InvalidInputError):
        rrf([["a"]], k=-1)


def test_top_k_matches_a_full_stable_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=200).astype(np.float32)  # many ties
    for k in (1, 7, 50, 200, 500):
        expected = np.lexsort((np.arange(200), -scores))[:k]
        assert top_k(scores, k).tolist() == expected.tolist()


# ---------------------------------------------------------------- retrievers


class FakeEmbedder:
    """Deterministic bag-of-letters embeddings (26 dims), so dense tests need no model."""

    provider, model = "fake", "letters"

    def embed(self, texts):
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[row, ord(ch) - 97] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_bm25_retriever_ranks_and_drops_zero_scores(tiny_docs) -> None:
    retriever = BM25Retriever.from_documents(tiny_docs)
    hits = retriever.search("programming language", 10)
    assert {h.id for h in hits} == {"rust", "python"}
    assert [h.rank for h in hits] == [0, 1] and hits[0].score >= hits[1].score > 0
    assert retriever.search("zzzunknownzzz", 5) == []
    with pytest.raises(InvalidInputError):
        retriever.search("  ", 5)
    with pytest.raises(InvalidInputError):
        retriever.search("cat", 0)


def test_dense_retriever_with_fake_embedder(tiny_docs) -> None:
    embedder = FakeEmbedder()
    retriever = DenseRetriever.from_documents(tiny_docs, embedder)
    hits = retriever.search("Cats", 3)
    vectors = embedder.embed([d.full_text for d in tiny_docs])
    expected = vectors @ embedder.embed(["Cats"])[0]
    assert [h.id for h in hits] == [tiny_docs[i].id for i in np.argsort(-expected, kind="stable")[:3]]
    assert hits[0].score == pytest.approx(float(expected.max()), rel=1e-6)
    assert len(retriever.search("x", 100)) == len(tiny_docs)


def test_dense_retriever_with_minilm_is_semantic(tiny_docs) -> None:
    retriever = DenseRetriever.from_documents(tiny_docs, LocalEmbedder())
    assert retriever.search("a kitten chasing a mouse", 1)[0].id == "cat"
    assert retriever.search("which city has the eiffel tower", 1)[0].id == "paris"
    assert retriever.embeddings.shape == (6, 384)
    assert np.allclose(np.linalg.norm(retriever.embeddings, axis=1), 1, atol=1e-4)


class StubRetriever:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def search(self, query: str, k: int) -> list[RankedResult]:
        return [RankedResult(r, 1.0 / (r + 1), Document(text=f"text {i}", id=i), r) for r, i in enumerate(self.ids[:k])]


def test_hybrid_retriever_fuses_by_rrf() -> None:
    hybrid = HybridRetriever([StubRetriever(["a", "b", "c"]), StubRetriever(["c", "d"])], depth=10)
    hits = hybrid.search("q", 3)
    assert [h.id for h in hits] == ["c", "a", "b"]
    assert [h.rank for h in hits] == [0, 1, 2]
    assert hits[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert hits[0].document.text == "text c"
    assert [h.index for h in hits] == [2, 0, 1]  # each passage's position in the first retriever that found it


def test_first_stage_results_point_into_the_collection(tiny_docs) -> None:
    for retriever in (BM25Retriever.from_documents(tiny_docs), DenseRetriever.from_documents(tiny_docs, FakeEmbedder()),
                      HybridRetriever([BM25Retriever.from_documents(tiny_docs),
                                       DenseRetriever.from_documents(tiny_docs, FakeEmbedder())])):
        hits = retriever.search("green tea caffeine", 4)
        assert hits and all(tiny_docs[h.index] == h.document and h.id == h.document.id for h in hits)
        assert [h.rank for h in hits] == list(range(len(hits)))


class ReverseReranker(Reranker):
    """Scores later documents higher, so reranking reverses the first stage."""

    def _score(self, query, documents):
        return np.arange(len(documents), dtype=np.float32)


def test_retrieve_and_rerank_keeps_first_stage_ranks() -> None:
    retriever = StubRetriever(["a", "b", "c", "d", "e"])
    results = retrieve_and_rerank(retriever, "q", k=2, candidates=4, reranker=ReverseReranker())
    assert [(r.id, r.rank, r.index, r.score) for r in results] == [("d", 0, 3, 3.0), ("c", 1, 2, 2.0)]
    assert results[0].first_stage_score == pytest.approx(1 / 4)
    plain = retrieve_and_rerank(retriever, "q", k=2, candidates=4)
    assert [(r.id, r.rank, r.index) for r in plain] == [("a", 0, 0), ("b", 1, 1)]
    with pytest.raises(InvalidInputError):
        retrieve_and_rerank(retriever, "q", k=2, candidates=0)


# ---------------------------------------------------------------- OpenAI-compatible embedder


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """A stand-in for an OpenAI-compatible server; answers in reverse order with ``index`` fields."""

    requests: list[dict] = []
    fail_with: int | None = None
    failures_left: int | None = None  # with fail_with: fail this many requests, then answer

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        failing = type(self).fail_with and (type(self).failures_left is None or type(self).failures_left > 0)
        if failing and type(self).failures_left is not None:
            type(self).failures_left -= 1
        if failing:
            payload, status = b'{"error": {"message": "model overloaded"}}', type(self).fail_with
        else:
            vectors = FakeEmbedder().embed(body["input"]) * 3.0  # not normalized: the client must normalize
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
            payload, status = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def embeddings_server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    handler = type("Handler", (_EmbeddingsHandler,), {"requests": [], "fail_with": None})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", handler
    server.shutdown()
    server.server_close()


def test_openai_embedder_batches_orders_and_normalizes(embeddings_server) -> None:
    url, handler = embeddings_server
    texts = [f"text number {i} " + "abc"[i % 3] * (i % 7 + 1) for i in range(300)]
    vectors = OpenAIEmbedder(url, api_key="sk-test", model="emb-model").embed(texts)
    assert [len(r["body"]["input"]) for r in handler.requests] == [128, 128, 44]
    assert {r["path"] for r in handler.requests} == {"/v1/embeddings"}
    assert {r["auth"] for r in handler.requests} == {"Bearer sk-test"}
    assert {r["body"]["model"] for r in handler.requests} == {"emb-model"}
    assert handler.requests[2]["body"]["input"][0] == texts[256]
    assert vectors.shape == (300, 26) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, FakeEmbedder().embed(texts), atol=1e-6)


def test_openai_embedder_drives_dense_retrieval(embeddings_server, tiny_docs) -> None:
    url, _ = embeddings_server
    remote = DenseRetriever.from_documents(tiny_docs, OpenAIEmbedder(url, model="m"))
    local = DenseRetriever.from_documents(tiny_docs, FakeEmbedder())
    assert [h.id for h in remote.search("green tea", 6)] == [h.id for h in local.search("green tea", 6)]


def test_openai_embedder_http_error_names_status(embeddings_server) -> None:
    url, handler = embeddings_server
    handler.fail_with = 503
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 503: .*model overloaded") as info:
        OpenAIEmbedder(url, retry=RetryPolicy(max_retries=1, base_delay=0.0)).embed(["hello"])
    assert isinstance(info.value, RerankitError) and len(handler.requests) == 2  # retried once, then raised


def test_openai_embedder_retries_a_busy_server(embeddings_server) -> None:
    url, handler = embeddings_server
    handler.fail_with, handler.failures_left = 429, 2
    waits: list[float] = []
    embedder = OpenAIEmbedder(url, retry=RetryPolicy(max_retries=3, base_delay=0.01, sleep=waits.append))
    assert embedder.embed(["hello", "world"]).shape == (2, 26)
    assert len(handler.requests) == 3 and len(waits) == 2
    with pytest.raises(InvalidInputError):
        OpenAIEmbedder(url, timeout=0)


def test_openai_embedder_unreachable_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EmbeddingServiceError, match="failed.*cannot reach"):
        OpenAIEmbedder(f"http://127.0.0.1:{port}", timeout=2, max_retries=0).embed(["hello"])
    with pytest.raises(InvalidInputError):
        OpenAIEmbedder("localhost:8000")


def test_bm25_ties_at_the_cut_off_are_broken_by_document_order():
    """bm25s cuts a tie at the k-th score arbitrarily; the top 3 must be the first 3 of a top 10."""
    from rerankit.retrieval import BM25Retriever

    retriever = BM25Retriever.from_documents([Document("cat dog", id=f"d{i}") for i in range(50)]
                                             + [Document("cat cat dog", id="best")])
    top3 = [h.id for h in retriever.search("cat", 3)]
    assert top3 == ["best", "d0", "d1"] and [h.id for h in retriever.search("cat", 10)][:3] == top3
