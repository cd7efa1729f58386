"""Choosing and calibrating the fusion of cross-encoder logits with bi-encoder cosines on a dev set.

The ratio of the two weights is chosen by nDCG@10 on the dev queries; the overall scale and bias
are then fitted by logistic regression on the dev judgments, so the fused score is a probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..datasets import Qrels
from ..encoders import DEFAULT_BI_ENCODER
from ..rerankers.fused import FusionWeights

# cosine/logit weight ratios tried; infinity is the bi-encoder alone (cross-encoder weight 0), so a
# fused model never ranks the dev set worse than its own bi-encoder half
RATIOS: tuple[float, ...] = (0.0, 0.5, 1, 2, 4, 8, 16, 32, 64, math.inf)


@dataclass
class DevPairs:
    """Per candidate of each dev query: its id, cross-encoder logit and bi-encoder cosine."""

    qids: list[str]
    doc_ids: list[list[str]]
    ce: list[np.ndarray]
    cos: list[np.ndarray]


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


def fit_fusion(pairs: DevPairs, qrels: Qrels, relevant_grade: int = 2, bi_encoder: str = DEFAULT_BI_ENCODER,
               max_length: int | None = None) -> tuple[FusionWeights, dict[float, float]]:
    """Best cosine/logit ratio by dev nDCG@10, then calibration. Returns weights and the ratio table.

    The table's ``inf`` entry is the bi-encoder alone; where it wins, the cross-encoder weight is 0.
    """

    def mixed(ratio: float) -> list[np.ndarray]:
        return list(pairs.cos) if math.isinf(ratio) else [ce + ratio * cos for ce, cos in zip(pairs.ce, pairs.cos)]

    table = {ratio: ndcg10(pairs, mixed(ratio), qrels) for ratio in RATIOS}
    best = max(table, key=lambda r: (table[r], -r))  # a tie goes to the smaller ratio (more cross-encoder)
    x = np.concatenate(mixed(best))
    y = np.concatenate([
        np.array([1.0 if qrels.get(q, {}).get(d, 0) >= relevant_grade else 0.0 for d in ids])
        for q, ids in zip(pairs.qids, pairs.doc_ids)
    ])
    scale, bias = _logistic_fit(x, y)
    ce_weight, bi_weight = (0.0, scale) if math.isinf(best) else (scale, scale * best)
    return FusionWeights(cross_encoder_weight=ce_weight, bi_encoder_weight=bi_weight, bias=bias,
                         bi_encoder=bi_encoder, max_length=max_length), table
