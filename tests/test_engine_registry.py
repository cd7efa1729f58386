"""The engine behind the existing entry points: ``CrossEncoderReranker(backend=...)`` and ``engine:`` specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine_helpers import DOCS, QUERIES, build_tiny_cross_encoder
from rerankit import InvalidInputError, load_reranker
from rerankit.engine import available_backends
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.rerankers.fused import FUSION_FILE, FUSION_FORMAT, FusedReranker

ONNX = "onnx-fp32" if "onnx-fp32" in available_backends() else "torch-fp32"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("engine-registry"))


def test_torch_backend_scores_as_sentence_transformers_and_other_backends_follow(model_dir):
    from rerankit.engine.bench import load_sentence_transformers

    plain = CrossEncoderReranker(str(model_dir), backend="torch")
    fast = CrossEncoderReranker(str(model_dir), backend=ONNX)
    assert plain.backend == "torch-fp32" and fast.backend == ONNX and fast.score_kind == plain.score_kind
    reference = load_sentence_transformers(str(model_dir), 512).predict([(QUERIES[0], d) for d in DOCS],
                                                                        show_progress_bar=False)
    np.testing.assert_allclose(plain.score(QUERIES[0], DOCS), reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.score(QUERIES[0], DOCS), plain.score(QUERIES[0], DOCS), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.logits(QUERIES[1], DOCS[:3]), plain.logits(QUERIES[1], DOCS[:3]), rtol=1e-4, atol=1e-5)


def test_engine_spec_loads_an_engine_reranker(model_dir):
    reranker = load_reranker(f"engine:{model_dir}", backend=ONNX)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.backend == ONNX
    assert load_reranker(f"engine:{model_dir}").backend in available_backends()  # auto


def test_engine_spec_on_a_fused_folder_keeps_the_fusion(model_dir, tmp_path):
    folder = Path(shutil.copytree(model_dir, tmp_path / "fused"))
    (folder / FUSION_FILE).write_text(json.dumps({"format": FUSION_FORMAT, "cross_encoder_weight": 0.5,
                                                  "bi_encoder_weight": 0.0, "bias": 0.1}))
    plain = load_reranker(str(folder), backend="torch")
    fast = load_reranker(f"engine:{folder}", backend=ONNX)
    assert isinstance(fast, FusedReranker) and fast.cross_encoder.backend == ONNX
    np.testing.assert_allclose(fast.score(QUERIES[0], DOCS), plain.score(QUERIES[0], DOCS), rtol=1e-4, atol=1e-5)


def test_fusion_without_cross_encoder_weight_skips_the_cross_encoder(model_dir, tmp_path, monkeypatch):
    from rerankit.encoders import embed

    folder = Path(shutil.copytree(model_dir, tmp_path / "fused"))
    (folder / FUSION_FILE).write_text(json.dumps({"format": FUSION_FORMAT, "cross_encoder_weight": 0.0,
                                                  "bi_encoder_weight": 8.0, "bias": -4.0}))
    reranker = load_reranker(str(folder), backend="torch")

    def no_pairs(*args, **kwargs):
        raise AssertionError("the cross-encoder ran although its weight is 0")

    monkeypatch.setattr(reranker.cross_encoder, "_score", no_pairs)
    monkeypatch.setattr(reranker.cross_encoder, "score_many", no_pairs)
    vectors = embed([QUERIES[0], *DOCS])
    expected = 1 / (1 + np.exp(-(8.0 * (vectors[1:] @ vectors[0]) - 4.0)))
    np.testing.assert_allclose(reranker.score(QUERIES[0], DOCS), expected, rtol=1e-5)
    np.testing.assert_allclose(reranker.score_many([QUERIES[0]], [DOCS])[0], expected, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "torch-fp32", ONNX])
def test_score_many_equals_score_per_query(model_dir, tmp_path, backend):
    folder = Path(shutil.copytree(model_dir, tmp_path / "fused"))
    (folder / FUSION_FILE).write_text(json.dumps({"format": FUSION_FORMAT, "cross_encoder_weight": 0.5,
                                                  "bi_encoder_weight": 2.0, "bias": 0.1}))
    lists = [DOCS, DOCS[3:7], [{"title": "Canberra", "text": "capital"}]]
    for reranker in (CrossEncoderReranker(str(model_dir), backend=backend), load_reranker(str(folder), backend=backend)):
        many = reranker.score_many(QUERIES + QUERIES[:1], lists)
        assert [m.shape for m in many] == [(len(x),) for x in lists]
        for query, docs, scores in zip(QUERIES + QUERIES[:1], lists, many):
            np.testing.assert_allclose(scores, reranker.score(query, docs), rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidInputError):
        reranker.score_many(QUERIES, lists)


@pytest.mark.parametrize("long_docs", ["max", "mean"])
def test_score_many_keeps_the_long_document_rule(model_dir, long_docs):
    reranker = CrossEncoderReranker(str(model_dir), backend="torch-fp32", long_docs=long_docs, max_length=24)
    many = reranker.score_many(QUERIES, [DOCS, DOCS[::-1]])
    for query, docs, scores in zip(QUERIES, [DOCS, DOCS[::-1]], many):
        np.testing.assert_allclose(scores, reranker.score(query, docs), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores, [reranker.score(query, [d])[0] for d in docs], rtol=1e-5, atol=1e-6)


def test_device_and_dtype_choose_the_torch_backend():
    from rerankit.rerankers.cross_encoder import backend_for

    cuda = __import__("torch").cuda.is_available()
    assert backend_for("auto", None, None) == "auto"
    assert backend_for("auto", "cpu", None) == "torch-fp32"
    assert backend_for("torch", "cpu", "bfloat16") == "torch-bf16"
    assert backend_for("torch", None, None) == ("cuda-fp32" if cuda else "torch-fp32")
    assert backend_for("auto", "cuda:1", "float16") == "cuda-fp16"
    assert backend_for("openvino-fp32", None, None) == "openvino-fp32"
    for bad in (("torch", "cpu", "float16"), ("torch", "tpu", None), ("torch", None, "int4"),
                ("onnx-fp32", "cpu", None), ("no-such-backend", None, None)):
        with pytest.raises(InvalidInputError):
            backend_for(*bad)
