"""Map a reranker's scores to what each dialect promises: Cohere's relevance in [0, 1], TEI's raw logit."""

from __future__ import annotations

import numpy as np

_EPS = 1e-12
_BOUND = 1e30


def _finite(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(values, nan=0.0, posinf=_BOUND, neginf=-_BOUND)


def to_relevance(scores: np.ndarray, score_kind: str) -> np.ndarray:
    """Scores in [0, 1], same order: probabilities as they are, ``sigmoid(logit)``, ``(1 + cosine) / 2``."""
    s = _finite(np.asarray(scores, dtype=np.float64))
    if score_kind == "logit":
        s = 0.5 * (1.0 + np.tanh(0.5 * s))  # sigmoid without overflow
    elif score_kind == "similarity":
        s = (1.0 + s) / 2.0
    return np.clip(s, 0.0, 1.0)


def to_raw(scores: np.ndarray, score_kind: str) -> np.ndarray:
    """Raw scores: a probability becomes its logit ``log(p / (1 - p))``; logits and cosines stay as they are."""
    s = _finite(np.asarray(scores, dtype=np.float64))
    if score_kind == "probability":
        p = np.clip(s, _EPS, 1.0 - _EPS)
        s = np.log(p) - np.log1p(-p)
    return s
