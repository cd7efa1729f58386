"""Model outputs to one relevance score per pair (shared by every local backend)."""

from __future__ import annotations

import numpy as np


def logits_to_scores(outputs: np.ndarray, activation: str) -> np.ndarray:
    """``[N, K]`` outputs to ``[N]`` scores: the last label's softmax probability when ``K > 1``,
    else the single logit, through a sigmoid when ``activation == "sigmoid"``."""
    if outputs.shape[1] > 1:
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        return probs[:, -1]
    scores = outputs[:, 0]
    return 1.0 / (1.0 + np.exp(-scores)) if activation == "sigmoid" else scores
