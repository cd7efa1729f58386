"""A cross-encoder fused with a bi-encoder: ``sigmoid(a * ce_logit + b * cosine + c)``.

The shipped default model is one of these. Its weights ``a, b, c`` are fitted by logistic
regression on the development set and stored in the model folder's ``rerankit.json``; the
score is a calibrated probability in [0, 1].
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER, embed, load_bi_encoder
from ..errors import ModelNotFoundError
from ..types import Document
from .base import Reranker
from .cross_encoder import CrossEncoderReranker

FUSION_FILE = "rerankit.json"
FUSION_FORMAT = "rerankit-fused-v1"


@dataclass(frozen=True)
class FusionWeights:
    """Logistic-regression weights over the cross-encoder logit and the bi-encoder cosine."""

    cross_encoder_weight: float = 1.0
    bi_encoder_weight: float = 0.0
    bias: float = 0.0
    bi_encoder: str = DEFAULT_BI_ENCODER
    max_length: int | None = None  # the cross-encoder's training length, used at inference too

    @classmethod
    def read(cls, folder: str | Path) -> FusionWeights:
        path = Path(folder) / FUSION_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot read fusion weights {path}: {exc}") from exc
        if data.get("format") != FUSION_FORMAT:
            raise ModelNotFoundError(f"{path}: unknown format {data.get('format')!r}")
        return cls(**{k: data[k] for k in ("cross_encoder_weight", "bi_encoder_weight", "bias", "bi_encoder", "max_length")
                      if k in data})

    def to_json(self) -> dict:
        return {"format": FUSION_FORMAT, **asdict(self)}

    def combine(self, ce_logits: np.ndarray, cosines: np.ndarray) -> np.ndarray:
        """Calibrated probability for each (logit, cosine) pair."""
        z = self.cross_encoder_weight * ce_logits + self.bi_encoder_weight * cosines + self.bias
        return 1.0 / (1.0 + np.exp(-z))


class FusedReranker(Reranker):
    """Cross-encoder logit and bi-encoder cosine, combined by ``FusionWeights``."""

    score_kind = "probability"

    def __init__(self, folder: str | Path, *, name: str | None = None, **cross_encoder_kwargs) -> None:
        self.weights = FusionWeights.read(folder)
        cross_encoder_kwargs.setdefault("max_length", self.weights.max_length)
        self.cross_encoder = CrossEncoderReranker(str(folder), activation="none", **cross_encoder_kwargs)
        if self.weights.bi_encoder_weight:
            load_bi_encoder(self.weights.bi_encoder)
        self.name = name or str(folder)

    def components(self, query: str, documents: Sequence[Document]) -> tuple[np.ndarray, np.ndarray]:
        """The cross-encoder logits and bi-encoder cosines that the fused score combines."""
        if not self.weights.cross_encoder_weight:  # the dev set chose the bi-encoder alone: skip the pairs
            logits = np.zeros(len(documents), dtype=np.float32)
        else:
            logits = self.cross_encoder._score(query, documents)
        if not self.weights.bi_encoder_weight:
            return logits, np.zeros_like(logits)
        vectors = embed([query, *[d.full_text for d in documents]], self.weights.bi_encoder)
        return logits, vectors[1:] @ vectors[0]

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return self.weights.combine(*self.components(query, documents))

    def score_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence]) -> list[np.ndarray]:
        """``score`` for several queries at once: cross-encoder pairs share batches, texts are embedded together."""
        from ..errors import InvalidInputError
        from ..types import normalize_documents, normalize_query

        if len(queries) != len(candidate_lists):
            raise InvalidInputError(f"{len(queries)} queries but {len(candidate_lists)} candidate lists")
        queries = [normalize_query(q) for q in queries]
        texts = [[d.full_text for d in normalize_documents(c)] for c in candidate_lists]
        if not self.weights.cross_encoder_weight:
            logits = [np.zeros(len(ts), dtype=np.float32) for ts in texts]
        else:
            logits = self.cross_encoder.score_many(queries, texts)
        if not self.weights.bi_encoder_weight:
            return [self.weights.combine(lg, np.zeros_like(lg)).astype(np.float32) for lg in logits]
        vectors = embed([*queries, *[t for ts in texts for t in ts]], self.weights.bi_encoder)
        out, row = [], len(queries)
        for i, (lg, ts) in enumerate(zip(logits, texts)):
            cosines = vectors[row : row + len(ts)] @ vectors[i]
            row += len(ts)
            out.append(self.weights.combine(lg, cosines).astype(np.float32))
        return out
