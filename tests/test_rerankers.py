"""The Reranker façade: ordering, ties, top_k, documents, specs and bad input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import rerankit
from rerankit import Document, InvalidInputError, ModelNotFoundError, UnknownSpecError, load_reranker
from rerankit.rerankers import Reranker, register


class LengthReranker(Reranker):
    """Scores by text length: predictable, and gives ties on equal lengths."""

    score_kind = "similarity"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return np.array([float(len(d.text)) for d in documents])


def test_rerank_orders_best_first_with_indices_and_ranks():
    results = LengthReranker().rerank("q", ["aa", "aaaa", "a"])
    assert [r.index for r in results] == [1, 0, 2]
    assert [r.rank for r in results] == [0, 1, 2]
    assert [r.index for r in results] == [1, 0, 2]
    assert [r.score for r in results] == [4.0, 2.0, 1.0]
    assert results[0].document.text == "aaaa"


def test_ties_break_by_original_rank():
    results = LengthReranker().rerank("q", ["xx", "a", "yy", "zz", "b"])
    assert [r.index for r in results] == [0, 2, 3, 1, 4]


def test_top_k_cuts_and_validates():
    reranker = LengthReranker()
    assert [r.index for r in reranker.rerank("q", ["a", "bbb", "cc"], top_k=2)] == [1, 2]
    assert len(reranker.rerank("q", ["a"], top_k=10)) == 1
    for bad in (0, -1, 1.5, "3", True):
        with pytest.raises(InvalidInputError):
            reranker.rerank("q", ["a"], top_k=bad)


def test_dict_documents_keep_title_id_and_metadata():
    results = LengthReranker().rerank("q", [{"text": "abc", "title": "T", "id": 7, "lang": "en"}, {"text": "a"}])
    doc = results[0].document
    assert (doc.text, doc.title, doc.id, doc.metadata) == ("abc", "T", "7", {"lang": "en"})
    assert doc.full_text == "T. abc"


@pytest.mark.parametrize("query", ["", "   ", None, 3, ["q"]])
def test_bad_query_raises(query):
    with pytest.raises(InvalidInputError):
        LengthReranker().rerank(query, ["a"])


@pytest.mark.parametrize("documents", ["a string", None, [1, 2], [{"title": "no text"}], [{"text": 5}], [None]])
def test_bad_documents_raise(documents):
    with pytest.raises(InvalidInputError):
        LengthReranker().score("q", documents)


def test_empty_document_list_gives_empty_results():
    assert LengthReranker().rerank("q", []) == []
    assert LengthReranker().score("q", []).shape == (0,)


@pytest.mark.parametrize("spec", ["", "nope", "nosuchprefix:thing", "cross-encoder:", "/definitely/not/here/model"])
def test_unknown_or_missing_specs_raise_typed_errors(spec):
    with pytest.raises((UnknownSpecError, ModelNotFoundError)):
        load_reranker(spec)


def test_hub_name_offline_names_local_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        load_reranker("cross-encoder/ms-marco-MiniLM-L-6-v2")
    assert "'default'" in str(info.value) and "local folder" in str(info.value)


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_reranker(str(tmp_path))


def test_registry_prefix_round_trip():
    register("length", lambda arg, **kw: LengthReranker())
    assert isinstance(load_reranker("length:anything"), LengthReranker)
    assert "length" in rerankit.rerankers.registered_prefixes()


def test_cross_encoder_folder_scores_and_agrees_with_sentence_transformers(tiny_cross_encoder_dir):
    from sentence_transformers import CrossEncoder

    reranker = load_reranker(str(tiny_cross_encoder_dir))
    docs = ["a cat sat on the mat", "stock markets fell sharply today", "cats purr", "x" * 40]
    scores = reranker.score("where do cats sit?", docs)
    assert reranker.score_kind == "probability" and np.all((scores >= 0) & (scores <= 1))
    reference = CrossEncoder(str(tiny_cross_encoder_dir), device="cpu").predict(
        [("where do cats sit?", d) for d in docs])
    np.testing.assert_allclose(scores, reference, rtol=1e-4, atol=1e-5)


def test_cross_encoder_batching_keeps_input_order(tiny_cross_encoder_dir):
    docs = [("word " * n).strip() for n in (3, 40, 1, 17, 8, 25, 2)]
    one_by_one = [float(load_reranker(str(tiny_cross_encoder_dir)).score("q", [d])[0]) for d in docs]
    batched = load_reranker(str(tiny_cross_encoder_dir), batch_size=3).score("q", docs)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-6)


def test_raw_logits_when_asked(tiny_cross_encoder_dir):
    probs = load_reranker(str(tiny_cross_encoder_dir)).score("q", ["a", "b"])
    logits = load_reranker(str(tiny_cross_encoder_dir), activation="none").score("q", ["a", "b"])
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)


def test_bi_encoder_reranker_ranks_the_obvious_match_first():
    reranker = load_reranker("bi-encoder")
    results = reranker.rerank("How do I reset my password?", [
        "Bananas are rich in potassium.",
        "Click 'Forgot password' on the sign-in page to reset your password.",
        "The train leaves at noon.",
    ])
    assert results[0].index == 1 and reranker.score_kind == "similarity"


def test_documents_need_string_text_and_title():
    with pytest.raises(InvalidInputError, match="text must be a string, got NoneType"):
        Document(text=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="title must be a string, got int"):
        Document(text="x", title=3)  # type: ignore[arg-type]
    assert Document(text="x", title=None).full_text == "x"  # type: ignore[arg-type]
