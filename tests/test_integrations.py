"""The LangChain document compressor and the LlamaIndex node postprocessor, with the real packages
(each test skips, with the reason, when its package is not installed)."""

from __future__ import annotations

import asyncio

import pytest
from test_hosted_support import cohere_like, stand_in
from test_server_support import PASSWORD_DOCS, PASSWORD_QUERY, LengthReranker

from rerankit import load_reranker

NO_LANGCHAIN = "langchain-core is not installed (pip install 'rerankit[langchain]')"
NO_LLAMA_INDEX = "llama-index-core is not installed (pip install 'rerankit[llamaindex]')"


def test_langchain_compressor_keeps_the_top_n_with_scores():
    pytest.importorskip("langchain_core", reason=NO_LANGCHAIN)
    from langchain_core.documents import BaseDocumentCompressor, Document

    from rerankit.integrations.langchain import RerankitCompressor

    docs = [Document(page_content=t, metadata={"source": f"kb-{i}"}, id=f"d{i}")
            for i, t in enumerate(["a", "ccc", "bb"])]
    compressor = RerankitCompressor(reranker=LengthReranker(), top_n=2)
    assert isinstance(compressor, BaseDocumentCompressor)
    kept = compressor.compress_documents(docs, "query")
    assert [d.page_content for d in kept] == ["ccc", "bb"] and [d.id for d in kept] == ["d1", "d2"]
    assert kept[0].metadata == {"source": "kb-1", "relevance_score": 3.0}
    assert docs[1].metadata == {"source": "kb-1"}  # the inputs are not changed
    again = asyncio.run(compressor.acompress_documents(docs, "query"))
    assert [d.page_content for d in again] == ["ccc", "bb"]
    everything = RerankitCompressor(reranker=LengthReranker(), top_n=None).compress_documents(docs, "q")
    assert [d.page_content for d in everything] == ["ccc", "bb", "a"]
    assert compressor.compress_documents([], "query") == []


def test_langchain_compressor_from_a_spec_names_the_backend(monkeypatch):
    pytest.importorskip("langchain_core", reason=NO_LANGCHAIN)
    from langchain_core.documents import Document

    from rerankit.integrations.langchain import RerankitCompressor

    monkeypatch.setenv("CO_API_KEY", "k")
    with stand_in(cohere_like) as server:
        monkeypatch.setenv("CO_API_URL", server.url)
        compressor = RerankitCompressor(reranker="cohere:rerank-v3.5", top_n=1)
        (best,) = compressor.compress_documents([Document(page_content="a"), Document(page_content="bbb")], "q")
    assert best.page_content == "bbb" and best.metadata["rerank_backend"] == "cohere:rerank-v3.5"
    assert 0.0 < best.metadata["relevance_score"] < 1.0


def test_langchain_compressor_with_the_tiny_local_model(tiny_cross_encoder_dir):
    pytest.importorskip("langchain_core", reason=NO_LANGCHAIN)
    from langchain_core.documents import Document

    from rerankit.integrations.langchain import RerankitCompressor

    want = [r.index for r in load_reranker(str(tiny_cross_encoder_dir)).rerank(PASSWORD_QUERY, PASSWORD_DOCS, top_k=2)]
    compressor = RerankitCompressor(reranker=str(tiny_cross_encoder_dir), top_n=2)
    kept = compressor.compress_documents([Document(page_content=t) for t in PASSWORD_DOCS], PASSWORD_QUERY)
    assert [d.page_content for d in kept] == [PASSWORD_DOCS[i] for i in want]


def test_llama_index_postprocessor_returns_scored_nodes_best_first():
    pytest.importorskip("llama_index.core", reason=NO_LLAMA_INDEX)
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerankit.integrations.llama_index import RerankitPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"k": "v" * 50}), score=0.1)
             for i, t in enumerate(["a", "ccc", "bb", "dddd"])]
    postprocessor = RerankitPostprocessor(reranker=LengthReranker(), top_n=3)
    assert isinstance(postprocessor, BaseNodePostprocessor)
    kept = postprocessor.postprocess_nodes(nodes, query_str="query")
    assert [n.node.node_id for n in kept] == ["n3", "n1", "n2"]
    assert [n.score for n in kept] == [4.0, 3.0, 2.0]  # scored on the text alone, not the metadata
    assert [n.node.node_id for n in postprocessor.postprocess_nodes(nodes, QueryBundle("q"))] == ["n3", "n1", "n2"]
    assert postprocessor.postprocess_nodes([], query_str="q") == []
    with pytest.raises(ValueError, match="needs the query"):
        postprocessor.postprocess_nodes(nodes)
    everything = RerankitPostprocessor(reranker=LengthReranker(), top_n=None).postprocess_nodes(nodes, query_str="q")
    assert len(everything) == 4


def test_llama_index_postprocessor_from_a_spec(tiny_cross_encoder_dir):
    pytest.importorskip("llama_index.core", reason=NO_LLAMA_INDEX)
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerankit.integrations.llama_index import RerankitPostprocessor

    reference = load_reranker(str(tiny_cross_encoder_dir)).rerank(PASSWORD_QUERY, PASSWORD_DOCS, top_k=2)
    nodes = [NodeWithScore(node=TextNode(text=t)) for t in PASSWORD_DOCS]
    kept = RerankitPostprocessor(reranker=str(tiny_cross_encoder_dir), top_n=2).postprocess_nodes(
        nodes, query_str=PASSWORD_QUERY)
    assert [n.node.get_content() for n in kept] == [r.text for r in reference]
    assert [n.score for n in kept] == pytest.approx([r.score for r in reference], abs=1e-6)


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("rerankit.integrations.langchain", "langchain_core.documents", "rerankit[langchain]"),
    ("rerankit.integrations.llama_index", "llama_index.core.postprocessor.types", "rerankit[llamaindex]"),
])
def test_a_missing_package_names_the_extra(monkeypatch, module, blocked, extra):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, blocked, None)  # importing it now raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=extra.replace("[", r"\[").replace("]", r"\]")):
        importlib.import_module(module)
