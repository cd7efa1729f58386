"""Bi-encoder embeddings through OpenVINO match sentence-transformers, and load without torch once cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rerankit.encoders import sentence_transformer_modules
from rerankit.engine.embedder import read_mean_pooled
from rerankit.engine.fused_encoder import bf16_inner_product_available
from rerankit.engine.openvino_embedder import OpenVinoBiEncoder
from rerankit.engine.runtimes import openvino_available, openvino_runs_bf16
from rerankit.loading import packaged_minilm_path

pytestmark = pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")

TEXTS = ["how do vaccines train the immune system", "x", "Vaccines expose the immune system to a harmless piece "
         "of a pathogen, so that it learns to recognise it. " * 12, "Canberra is the capital of Australia.",
         "taxes are due in April", "The immune system remembers pathogens it has met before."]


def test_openvino_embeddings_match_sentence_transformers(tmp_path):
    from rerankit.encoders import load_bi_encoder

    model = load_bi_encoder()
    described = read_mean_pooled(packaged_minilm_path())
    assert described is not None and (described.max_length, described.dimension, described.dense) == (256, 384, None)
    encoder = OpenVinoBiEncoder(described, "fp32", cache_dir=tmp_path)
    assert encoder.path.parent.parent == tmp_path
    expected = model.encode(TEXTS, normalize_embeddings=True)
    got = encoder.encode(TEXTS)
    assert got.shape == expected.shape
    assert float((got * expected).sum(1).min()) > 0.9999  # fp32 on both sides
    np.testing.assert_allclose(got[1:] @ got[0], expected[1:] @ expected[0], atol=1e-4)
    assert float(expected[2] @ expected[0]) > 0.5  # the relevant passage stands out: the check means something
    assert encoder.encode([]).shape == (0, 384)
    if openvino_runs_bf16():
        bf16 = OpenVinoBiEncoder(described, "bf16", cache_dir=tmp_path).encode(TEXTS)
        assert float((bf16 * expected).sum(1).min()) > 0.999
        assert list(np.argsort(-(bf16[1:] @ bf16[0]))) == list(np.argsort(-(expected[1:] @ expected[0])))


def test_a_dense_projection_is_applied_as_sentence_transformers_does(tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import load_bi_encoder

    models = sentence_transformer_modules()
    base = load_bi_encoder()
    dense = models.Dense(384, 16, bias=True, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[base[0], base[1], dense, models.Normalize()], device="cpu").save(str(tmp_path / "m"))
    model = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    described = read_mean_pooled(tmp_path / "m")
    assert described is not None and described.dimension == 16
    got = OpenVinoBiEncoder(described, "fp32", cache_dir=tmp_path / "cache").encode(TEXTS)
    assert got.shape == (len(TEXTS), 16)
    assert float((got * model.encode(TEXTS, normalize_embeddings=True)).sum(1).min()) > 0.9999


def test_models_it_does_not_reproduce_are_not_described(tmp_path):
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import load_bi_encoder

    models = sentence_transformer_modules()
    base = load_bi_encoder()
    SentenceTransformer(modules=[base[0], models.Pooling(384, "cls")], device="cpu").save(str(tmp_path / "cls"))
    assert read_mean_pooled(tmp_path / "cls") is None
    assert read_mean_pooled(tmp_path / "no-such-folder") is None
    tanh = models.Dense(384, 16, activation_function=torch_tanh())
    SentenceTransformer(modules=[base[0], base[1], tanh], device="cpu").save(str(tmp_path / "tanh"))
    assert read_mean_pooled(tmp_path / "tanh") is None


def torch_tanh():
    import torch

    return torch.nn.Tanh()


def test_a_damaged_cache_entry_is_converted_again(tmp_path):
    described = read_mean_pooled(packaged_minilm_path())
    first = OpenVinoBiEncoder(described, "fp32", cache_dir=tmp_path)
    expected = first.encode(TEXTS)
    first.path.write_bytes(b"corrupt")
    again = OpenVinoBiEncoder(described, "fp32", cache_dir=tmp_path)
    assert again.path == first.path
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.parent.name]  # no temporary folder left behind


def test_a_new_process_embeds_without_torch_once_the_ir_is_cached(tmp_path):
    env = {**os.environ, "RERANKIT_CACHE": str(tmp_path), "RERANKIT_NATIVE": "0"}
    script = ("import sys, json; from rerankit.encoders import embed, embedding_path; v = embed(['a query', 'a text']); "
              "print(json.dumps([embedding_path(), v.shape[1], sorted(m for m in ('torch', 'transformers', "
              "'sentence_transformers') if m in sys.modules)]))")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    path = "openvino-bf16" if openvino_runs_bf16() else "openvino-fp32"
    assert first[:2] == second[:2] == [path, 384]
    assert "torch" in first[2]  # the first process converted the model
    assert second[2] == []  # the second read the cached IR: no torch, transformers or sentence-transformers


def test_load_embedder_picks_the_path_for_the_machine(monkeypatch):
    from rerankit import encoders

    def fresh() -> str:
        encoders.load_embedder.cache_clear()
        return encoders.embedding_path("all-MiniLM-L6-v2")

    try:
        monkeypatch.setattr(encoders, "_amx_kernels_in_use", lambda: False)
        assert fresh() == ("openvino-bf16" if openvino_runs_bf16() else "openvino-fp32")
        monkeypatch.setenv("RERANKIT_BI_ENCODER_BACKEND", "fp32")
        assert fresh() == "sentence-transformers"
        monkeypatch.delenv("RERANKIT_BI_ENCODER_BACKEND")
        monkeypatch.setattr(encoders, "_amx_kernels_in_use", lambda: True)
        monkeypatch.setattr(encoders, "_bf16_allowed", lambda: True)
        # the fused layers need oneDNN's bf16 inner product; without it (AVX2-only CPUs) OpenVINO runs
        assert fresh() == ("fused-bf16" if bf16_inner_product_available() else
                           "openvino-bf16" if openvino_runs_bf16() else "openvino-fp32")
        got = encoders._embed_uncached(TEXTS, "all-MiniLM-L6-v2", 64)
        reference = encoders.load_bi_encoder().encode(TEXTS, normalize_embeddings=True)
        assert float((got * reference).sum(1).min()) > 0.99
    finally:
        encoders.load_embedder.cache_clear()
