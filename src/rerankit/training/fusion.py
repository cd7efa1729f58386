"""Choosing and calibrating the fusion of cross-encoder logits with bi-encoder cosines on a dev set.

The ratio of the two weights is chosen by nDCG@10 on the dev queries; where the pairs carry lexical
scores (``rerankit.lexical``), their share of the cosine's weight is chosen next, at that ratio, by
the same measure. The overall scale and bias are then fitted by logistic regression on the dev
judgments, so the fused score is a probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..datasets import Qrels
from ..encoders import DEFAULT_BI_ENCODER
from ..rerankers.fused import FusionWeights

# cosine/logit weight ratios tried; infinity is the bi-encoder alone (cross-encoder weight 0), so a
# fused model never ranks the dev set worse than its own bi-encoder half
RATIOS: tuple[float, ...] = (0.0, 0.5, 1, 2, 4, 8, 16, 32, 64, math.inf)
# lexical weight as a share of the cosine's (lexical scores lie in [0, 1], cosines mostly in [0, 1] too)
LEXICAL_SHARES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


@dataclass
class DevPairs:
    """Per candidate of each dev query: its id, cross-encoder logit, bi-encoder cosine (and lexical score)."""

    qids: list[str]
    doc_ids: list[list[str]]
    ce: list[np.ndarray]
    cos: list[np.ndarray]
    lexical: list[np.ndarray] | None = None


def ndcg10(pairs: DevPairs, scores: Sequence[np.ndarray], qrels: Qrels) -> float:
    from ..evaluation.metrics import evaluate

    run = {q: {d: float(s) for d, s in zip(ids, sc)} for q, ids, sc in zip(pairs.qids, pairs.doc_ids, scores)}
    return evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"]


def _logistic_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Scale and bias of ``sigmoid(scale * x + bias)`` minimising log loss."""
    from scipy.optimize import minimize

    def loss(params: np.ndarray) -> float:
        z = params[0] * x + params[1]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    result = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


class FusionFit(NamedTuple):
    """The fitted weights, dev nDCG@10 per cosine/logit ratio, and per lexical share at the chosen ratio."""

    weights: FusionWeights
    table: dict[float, float]
    lexical_table: dict[float, float]


def fit_fusion(pairs: DevPairs, qrels: Qrels, relevant_grade: int = 2, bi_encoder: str = DEFAULT_BI_ENCODER,
               max_length: int | None = None) -> FusionFit:
    """Best cosine/logit ratio by dev nDCG@10, then the lexical share (with lexical scores), then calibration.

    The table's ``inf`` entry is the bi-encoder alone; where it wins, the cross-encoder weight is 0.
    The lexical table is empty when the pairs carry no lexical scores; a share is kept only where it
    beats share 0 (a tie goes to the smaller share).
    """

    def mixed(ratio: float, share: float = 0.0) -> list[np.ndarray]:
        lexical = pairs.lexical if share else [0.0] * len(pairs.cos)
        dense = [cos + share * lx for cos, lx in zip(pairs.cos, lexical)]
        return dense if math.isinf(ratio) else [ce + ratio * d for ce, d in zip(pairs.ce, dense)]

    table = {ratio: ndcg10(pairs, mixed(ratio), qrels) for ratio in RATIOS}
    best = max(table, key=lambda r: (table[r], -r))  # a tie goes to the smaller ratio (more cross-encoder)
    lexical_table: dict[float, float] = {}
    share = 0.0
    if pairs.lexical is not None and best != 0.0:
        lexical_table = {s: ndcg10(pairs, mixed(best, s), qrels) for s in LEXICAL_SHARES}
        share = max(lexical_table, key=lambda s: (lexical_table[s], -s))
    x = np.concatenate(mixed(best, share))
    y = np.concatenate([
        np.array([1.0 if qrels.get(q, {}).get(d, 0) >= relevant_grade else 0.0 for d in ids])
        for q, ids in zip(pairs.qids, pairs.doc_ids)
    ])
    scale, bias = _logistic_fit(x, y)
    ce_weight, bi_weight = (0.0, scale) if math.isinf(best) else (scale, scale * best)
    weights = FusionWeights(cross_encoder_weight=ce_weight, bi_encoder_weight=bi_weight, bias=bias,
                            bi_encoder=bi_encoder, max_length=max_length, lexical_weight=bi_weight * share)
    return FusionFit(weights, table, lexical_table)
