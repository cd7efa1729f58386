"""Decoder-only yes/no rerankers (Qwen3-Reranker style) on a tiny random Llama built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine_helpers import CUDA_TOLERANCE, DOCS, QUERIES, assert_same_ranking, build_tiny_causal_lm, reranker_or_skip
from rerankit.engine import available_backends
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.engine.inputs import QWEN3_INSTRUCTION, QWEN3_PREFIX, QWEN3_SUFFIX

TOLERANCE = {"torch-fp32": 1e-6, "onnx-fp32": 1e-4, "torch-bf16": 0.05, "onnx-int8": 0.1,
             "openvino-fp32": 1e-4, "openvino-bf16": 0.05, "openvino-int8": 0.1} | CUDA_TOLERANCE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("engine-llm"))


def qwen3_reference(model_dir: Path, query: str, docs: list[str]) -> np.ndarray:
    """The Qwen3-Reranker recipe written out: whole prompt, last-position logits, softmax over (no, yes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    out = []
    for doc in docs:
        text = QWEN3_PREFIX + f"<Instruct>: {QWEN3_INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}" + QWEN3_SUFFIX
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            last = model(input_ids=ids).logits[0, -1]
        out.append(torch.softmax(torch.stack([last[no], last[yes]]), dim=0)[1].item())
    return np.array(out)


def test_kind_is_detected_and_scores_match_the_qwen3_recipe(model_dir):
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32")
    assert engine.info.kind == "yes-no" and engine.score_kind == "probability"
    for query in QUERIES:
        np.testing.assert_allclose(engine.score(query, DOCS), qwen3_reference(model_dir, query, DOCS), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "torch-int8"])
def test_every_backend_keeps_the_fp32_ranking(model_dir, backend):
    reference = CrossEncoderReranker(model_dir, backend="torch-fp32", activation="none")
    engine = reranker_or_skip(model_dir, backend, activation="none")
    for query in QUERIES:
        assert_same_ranking(reference.score(query, DOCS), engine.score(query, DOCS), TOLERANCE[backend])


def test_batched_decoder_scores_are_in_input_order(model_dir):
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32", token_budget=400, max_batch=3)
    one_by_one = np.array([engine.score(QUERIES[1], [d])[0] for d in DOCS])
    np.testing.assert_allclose(engine.score(QUERIES[1], DOCS), one_by_one, rtol=1e-5, atol=1e-6)
    many = engine.score_many([QUERIES[0], QUERIES[1]], [DOCS[:4], DOCS])
    np.testing.assert_allclose(many[1], one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many[0], engine.score(QUERIES[0], DOCS[:4]), rtol=1e-5, atol=1e-6)


def test_int8_is_refused_for_decoder_models(model_dir):
    from rerankit.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError):
        CrossEncoderReranker(model_dir, backend="torch-int8")
