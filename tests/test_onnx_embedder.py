"""Bi-encoder embeddings through ONNX Runtime (CPUs without bf16 units) match sentence-transformers' fp32."""

from __future__ import annotations

import numpy as np
import pytest

from rerankit.encoders import sentence_transformer_modules
from rerankit.engine.backend import onnx_available

pytestmark = pytest.mark.skipif(not onnx_available(), reason="onnx and onnxruntime are not installed")

TEXTS = ["how do vaccines train the immune system", "x", "Vaccines expose the immune system to a harmless piece "
         "of a pathogen, so that it learns to recognise it. " * 12, "Canberra is the capital of Australia.",
         "taxes are due in April", "The immune system remembers pathogens it has met before."]


def test_onnx_embeddings_match_sentence_transformers(tmp_path):
    from rerankit.encoders import load_bi_encoder, packaged_minilm_path
    from rerankit.engine.onnx_embedder import OnnxBiEncoder, onnx_bi_encoder_for

    model = load_bi_encoder()
    encoder = onnx_bi_encoder_for(model, packaged_minilm_path(), cache_dir=tmp_path)
    assert isinstance(encoder, OnnxBiEncoder) and encoder.path.parent == tmp_path
    expected = model.encode(TEXTS, normalize_embeddings=True)
    got = encoder.encode(TEXTS)
    assert got.shape == expected.shape
    assert float((got * expected).sum(1).min()) > 0.9999  # fp32 on both sides
    np.testing.assert_allclose(got[1:] @ got[0], expected[1:] @ expected[0], atol=1e-4)
    assert float(expected[2] @ expected[0]) > 0.5  # the relevant passage stands out: the check means something


def test_a_dense_projection_is_applied_as_sentence_transformers_does(tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import load_bi_encoder
    from rerankit.engine.onnx_embedder import onnx_bi_encoder_for

    models = sentence_transformer_modules()
    base = load_bi_encoder()
    dense = models.Dense(384, 16, bias=True, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[base[0], base[1], dense, models.Normalize()], device="cpu").save(str(tmp_path / "m"))
    model = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    got = onnx_bi_encoder_for(model, tmp_path / "m", cache_dir=tmp_path / "cache").encode(TEXTS)
    assert got.shape == (len(TEXTS), 16)
    assert float((got * model.encode(TEXTS, normalize_embeddings=True)).sum(1).min()) > 0.9999


def test_models_it_does_not_reproduce_get_none(tmp_path):
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import load_bi_encoder, packaged_minilm_path
    from rerankit.engine.onnx_embedder import onnx_bi_encoder_for

    models = sentence_transformer_modules()
    base = load_bi_encoder()
    cls_pooled = SentenceTransformer(modules=[base[0], models.Pooling(384, "cls")], device="cpu")
    assert onnx_bi_encoder_for(cls_pooled, packaged_minilm_path(), cache_dir=tmp_path) is None
    assert onnx_bi_encoder_for(base, tmp_path / "no-such-folder", cache_dir=tmp_path) is None


def test_a_damaged_cache_entry_is_exported_again(tmp_path):
    from rerankit.encoders import load_bi_encoder, packaged_minilm_path
    from rerankit.engine.onnx_embedder import onnx_bi_encoder_for

    model = load_bi_encoder()
    first = onnx_bi_encoder_for(model, packaged_minilm_path(), cache_dir=tmp_path)
    expected = first.encode(TEXTS)
    first.path.write_bytes(b"corrupt")
    again = onnx_bi_encoder_for(model, packaged_minilm_path(), cache_dir=tmp_path)
    assert again.path == first.path
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary file left behind


def test_embed_uses_onnx_only_on_cpus_without_bf16_units(monkeypatch):
    from rerankit import encoders
    from rerankit.engine.onnx_embedder import OnnxBiEncoder

    def fresh(bf16: bool, env: str | None = None):
        monkeypatch.setattr(encoders, "_bf16_allowed", lambda: bf16)
        if env is None:
            monkeypatch.delenv("RERANKIT_BI_ENCODER_BACKEND", raising=False)
        else:
            monkeypatch.setenv("RERANKIT_BI_ENCODER_BACKEND", env)
        encoders._onnx_bi_encoder.cache_clear()
        encoders._fused_bi_encoder.cache_clear()
        return encoders._onnx_bi_encoder("all-MiniLM-L6-v2")

    try:
        assert isinstance(fresh(False), OnnxBiEncoder)
        assert encoders.embedding_path("all-MiniLM-L6-v2") == "onnx-fp32"
        expected = encoders.load_bi_encoder().encode(TEXTS, normalize_embeddings=True)
        got = encoders._embed_uncached(TEXTS, "all-MiniLM-L6-v2", 64)
        assert float((got * expected).sum(1).min()) > 0.9999
        assert fresh(True) is None  # the fused bf16 layers serve those CPUs
        assert fresh(False, "fp32") is None  # sentence-transformers' own fp32 path on request
        assert encoders.embedding_path("all-MiniLM-L6-v2") == "sentence-transformers"
    finally:
        encoders._onnx_bi_encoder.cache_clear()
        encoders._fused_bi_encoder.cache_clear()
