"""The fusion of cross-encoder logits with bi-encoder cosines, chosen on dev judgments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rerankit.rerankers.fused import FusionWeights
from rerankit.training.fusion import LEXICAL_SHARES, DevPairs, fit_fusion, ndcg10


def _dev(signal_in: str, queries: int = 30, docs: int = 20, seed: int = 0, spread: float = 0.5):
    """Dev pairs where only the cross-encoder (``"ce"``) or only the cosine (``"cos"``) knows relevance."""
    rng = np.random.default_rng(seed)
    qids, doc_ids, ce, cos, qrels = [], [], [], [], {}
    for q in range(queries):
        labels = (rng.random(docs) < 0.2).astype(float)
        labels[0] = 1.0
        informative = labels * 3.0 + rng.normal(0, spread, docs)
        noise = rng.normal(0, 3.0, docs)
        qids.append(f"q{q}")
        doc_ids.append([f"q{q}d{d}" for d in range(docs)])
        ce.append(informative if signal_in == "ce" else noise)
        cos.append((informative if signal_in == "cos" else noise) / 10.0)  # cosines live on a smaller scale
        qrels[f"q{q}"] = {f"q{q}d{d}": int(2 * labels[d]) for d in range(docs)}
    return DevPairs(qids, doc_ids, ce, cos), qrels


def test_informative_cross_encoder_gets_the_weight():
    pairs, qrels = _dev("ce")
    weights, table, _ = fit_fusion(pairs, qrels)
    assert table[0.0] == max(table.values()) and table[0.0] > table[math.inf] + 0.2
    assert weights.cross_encoder_weight > 0 and weights.bi_encoder_weight == 0.0


def test_useless_cross_encoder_falls_back_to_the_bi_encoder_alone():
    pairs, qrels = _dev("cos")
    weights, table, _ = fit_fusion(pairs, qrels)
    assert table[math.inf] == max(table.values()) > table[64]  # even a large finite ratio lets noise in
    assert weights.cross_encoder_weight == 0.0 and weights.bi_encoder_weight > 0
    fused = [weights.combine(c, s) for c, s in zip(pairs.ce, pairs.cos)]
    assert ndcg10(pairs, fused, qrels) == pytest.approx(table[math.inf])


def test_fused_scores_are_calibrated_probabilities():
    pairs, qrels = _dev("ce", queries=60, spread=1.5)  # overlapping classes: no saturated probabilities
    weights, _, _ = fit_fusion(pairs, qrels)
    probs = np.concatenate([weights.combine(c, s) for c, s in zip(pairs.ce, pairs.cos)])
    labels = np.concatenate([[qrels[q][d] >= 2 for d in ids] for q, ids in zip(pairs.qids, pairs.doc_ids)])
    assert ((probs > 0) & (probs < 1)).all()
    assert probs.mean() == pytest.approx(labels.mean(), abs=0.02)  # logistic regression matches the base rate
    assert probs[labels].mean() > 0.5 > probs[~labels].mean()


def test_an_informative_lexical_score_gets_a_share_and_a_useless_one_none():
    pairs, qrels = _dev("cos", spread=3.0)  # a noisy cosine
    rng = np.random.default_rng(1)
    labels = [np.array([qrels[q][d] for d in ids], dtype=float) for q, ids in zip(pairs.qids, pairs.doc_ids)]
    pairs.lexical = [np.clip(0.4 * lab / 2 + rng.normal(0, 0.05, len(lab)), 0, 1) for lab in labels]
    weights, _, lexical_table = fit_fusion(pairs, qrels)
    assert set(lexical_table) == set(LEXICAL_SHARES) and max(lexical_table.values()) > lexical_table[0.0]
    assert weights.lexical_weight > 0
    fused = [weights.combine(c, s, lx) for c, s, lx in zip(pairs.ce, pairs.cos, pairs.lexical)]
    assert ndcg10(pairs, fused, qrels) == pytest.approx(max(lexical_table.values()))
    pairs.lexical = [rng.random(len(lab)) for lab in labels]  # noise
    weights, table, lexical_table = fit_fusion(pairs, qrels)
    assert lexical_table[0.0] == max(lexical_table.values()) and weights.lexical_weight == 0.0


def test_fusion_without_lexical_scores_has_no_lexical_table():
    pairs, qrels = _dev("cos")
    weights, _, lexical_table = fit_fusion(pairs, qrels)
    assert lexical_table == {} and weights.lexical_weight == 0.0
    with pytest.raises(ValueError, match="lexical"):
        FusionWeights(lexical_weight=1.0).combine(np.zeros(2), np.zeros(2))
