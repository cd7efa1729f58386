"""The ``cuda-*`` backends on the shipped default cross-encoder (real weights), against ``torch-fp32`` on the
CPU. They run only where torch sees a CUDA device; elsewhere every test here skips with that reason."""

from __future__ import annotations

import numpy as np
import pytest

from engine_helpers import CUDA_TOLERANCE, DOCS, QUERIES, assert_same_ranking
from rerankit.engine import available_backends
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.rerankers.registry import default_model_path

pytestmark = pytest.mark.skipif("cuda-fp32" not in available_backends(),
                                reason="no CUDA device here (torch.cuda.is_available() is False)")
LONG = ["The immune system learns from vaccines. " * 40 + "Canberra is the capital of Australia.", *DOCS]


@pytest.fixture(scope="module")
def reference() -> CrossEncoderReranker:
    return CrossEncoderReranker(default_model_path(), backend="torch-fp32")


@pytest.mark.parametrize("backend", sorted(CUDA_TOLERANCE))
def test_cuda_backends_keep_the_cpu_fp32_ranking(reference, backend):
    engine = CrossEncoderReranker(default_model_path(), backend=backend)
    assert engine.backend == backend and engine.runner.device.type == "cuda"
    for query in QUERIES:
        assert_same_ranking(reference.score(query, DOCS), engine.score(query, DOCS), CUDA_TOLERANCE[backend])
    if backend == "cuda-fp32":
        np.testing.assert_allclose(engine.score(QUERIES[0], DOCS), reference.score(QUERIES[0], DOCS), atol=2e-3)


def test_long_documents_are_windowed_on_the_gpu_as_on_the_cpu():
    cpu = CrossEncoderReranker(default_model_path(), backend="torch-fp32", max_length=48, long_docs="max", stride=16)
    gpu = CrossEncoderReranker(default_model_path(), backend="cuda-fp16", max_length=48, long_docs="max", stride=16)
    assert_same_ranking(cpu.score(QUERIES[1], LONG), gpu.score(QUERIES[1], LONG), CUDA_TOLERANCE["cuda-fp16"])


def test_score_many_on_the_gpu_equals_one_query_at_a_time():
    engine = CrossEncoderReranker(default_model_path(), backend="cuda-fp16", token_budget=256, max_batch=4)
    many = engine.score_many(QUERIES, [DOCS, DOCS[::-1]])
    for query, docs, scores in zip(QUERIES, [DOCS, DOCS[::-1]], many):
        np.testing.assert_allclose(scores, engine.score(query, docs), rtol=1e-2, atol=1e-2)


def test_auto_chooses_a_cuda_backend_and_caches_the_verdict():
    first = CrossEncoderReranker(default_model_path(), backend="auto")
    assert first.backend.startswith("cuda-") and first.auto_report["cached"] is False
    second = CrossEncoderReranker(default_model_path(), backend="auto")
    assert second.backend == first.backend and second.auto_report["cached"] is True
