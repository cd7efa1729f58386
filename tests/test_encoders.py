"""``encoders.embed``: normalized rows in input order, the bounded cache of recent texts, empty input."""

from __future__ import annotations

import numpy as np

from rerankit import encoders
from rerankit.encoders import _EmbeddingCache, embed


def test_embed_order_cache_and_duplicates(monkeypatch):
    monkeypatch.setattr(encoders, "_CACHE", _EmbeddingCache(capacity=3))
    calls: list[list[str]] = []
    original = encoders._embed_uncached

    def counting(texts, model_name, batch_size):
        calls.append(list(texts))
        return original(texts, model_name, batch_size)

    monkeypatch.setattr(encoders, "_embed_uncached", counting)
    first = embed(["alpha beta", "gamma", "alpha beta"])
    assert first.shape == (3, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(first[0], first[2])
    assert calls == [["alpha beta", "gamma"]]  # a duplicate is embedded once
    again = embed(["gamma", "delta", "alpha beta"])
    assert calls[-1] == ["delta"]  # the other two come from the cache, unchanged
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])
    embed(["e1", "e2", "e3"])  # capacity 3: the older texts are evicted
    embed(["gamma"])
    assert calls[-1] == ["gamma"]


def test_cache_can_be_disabled(monkeypatch):
    monkeypatch.setattr(encoders, "_CACHE", _EmbeddingCache(capacity=0))
    embed(["zeta"])
    assert len(encoders._CACHE.rows) == 0


def test_empty_input_gives_an_empty_matrix_of_the_model_width():
    assert embed([]).shape == (0, 384)
