"""A cross-encoder fused with a bi-encoder: ``sigmoid(a * ce_logit + b * cosine + d * lexical + c)``.

The shipped default model is one of these. Its weights ``a, b, c`` (and ``d``, where the folder
carries lexical statistics, see ``rerankit.lexical``) are fitted by logistic regression on the
development set and stored in the model folder's ``rerankit.json``; the score is a calibrated
probability in [0, 1].
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER, embed, load_embedder
from ..errors import InvalidInputError, ModelNotFoundError
from ..lexical import LexicalScorer
from ..types import Document, normalize_documents, normalize_query
from .base import Reranker
from .cross_encoder import CrossEncoderReranker

FUSION_FILE = "rerankit.json"
FUSION_FORMAT = "rerankit-fused-v1"
LEXICAL_FILE = "lexical.json.gz"


@dataclass(frozen=True)
class FusionWeights:
    """Logistic-regression weights over the cross-encoder logit, the bi-encoder cosine and the lexical score."""

    cross_encoder_weight: float = 1.0
    bi_encoder_weight: float = 0.0
    bias: float = 0.0
    bi_encoder: str = DEFAULT_BI_ENCODER
    max_length: int | None = None  # the cross-encoder's training length, used at inference too
    lexical_weight: float = 0.0  # weight of ``LexicalScorer.scores`` (the folder's LEXICAL_FILE)
    cross_encoder: str | None = None  # the cross-encoder's folder, relative to this one (None: this folder)

    @classmethod
    def read(cls, folder: str | Path) -> FusionWeights:
        path = Path(folder) / FUSION_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot read fusion weights {path}: {exc}") from exc
        if data.get("format") != FUSION_FORMAT:
            raise ModelNotFoundError(f"{path}: unknown format {data.get('format')!r}")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_json(self) -> dict:
        return {"format": FUSION_FORMAT, **asdict(self)}

    def combine(self, ce_logits: np.ndarray, cosines: np.ndarray, lexical: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probability for each (logit, cosine[, lexical score]) of a candidate."""
        z = self.cross_encoder_weight * ce_logits + self.bi_encoder_weight * cosines + self.bias
        if self.lexical_weight:
            if lexical is None:
                raise ValueError("these fusion weights read lexical scores; none were given")
            z = z + self.lexical_weight * lexical
        return 1.0 / (1.0 + np.exp(-z))


class FusedReranker(Reranker):
    """Cross-encoder logit and bi-encoder cosine, combined by ``FusionWeights``."""

    score_kind = "probability"
    batches_queries = True

    def __init__(self, folder: str | Path, *, name: str | None = None, **cross_encoder_kwargs) -> None:
        self.weights = FusionWeights.read(folder)
        if (Path(folder) / self.weights.bi_encoder).is_dir():  # a bi-encoder stored inside the model folder
            self.weights = replace(self.weights, bi_encoder=str(Path(folder) / self.weights.bi_encoder))
        cross_encoder_kwargs.setdefault("max_length", self.weights.max_length)
        source = Path(folder) / self.weights.cross_encoder if self.weights.cross_encoder else Path(folder)
        self.cross_encoder = CrossEncoderReranker(str(source.resolve()), activation="none", **cross_encoder_kwargs)
        if self.weights.bi_encoder_weight:
            load_embedder(self.weights.bi_encoder)  # fail at load time, not at the first query
        self.lexical = LexicalScorer.load(Path(folder) / LEXICAL_FILE) if self.weights.lexical_weight else None
        self.name = name or str(folder)

    def _lexical(self, query: str, texts: Sequence[str]) -> np.ndarray | None:
        return None if self.lexical is None else self.lexical.scores(query, texts)

    def components(self, query: str, documents: Sequence[Document]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The cross-encoder logits, bi-encoder cosines and lexical scores (None without) that the fused score combines."""
        texts = [d.full_text for d in documents]
        if not self.weights.cross_encoder_weight:  # the dev set chose the bi-encoder alone: skip the pairs
            logits = np.zeros(len(documents), dtype=np.float32)
        else:
            logits = self.cross_encoder._score(query, documents)
        if not self.weights.bi_encoder_weight:
            return logits, np.zeros_like(logits), self._lexical(query, texts)
        vectors = embed([query, *texts], self.weights.bi_encoder)
        return logits, vectors[1:] @ vectors[0], self._lexical(query, texts)

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return self.weights.combine(*self.components(query, documents))

    def score_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence]) -> list[np.ndarray]:
        """``score`` for several queries at once: cross-encoder pairs share batches, texts are embedded together."""

        if len(queries) != len(candidate_lists):
            raise InvalidInputError(f"{len(queries)} queries but {len(candidate_lists)} candidate lists")
        queries = [normalize_query(q) for q in queries]
        texts = [[d.full_text for d in normalize_documents(c)] for c in candidate_lists]
        if not self.weights.cross_encoder_weight:
            logits = [np.zeros(len(ts), dtype=np.float32) for ts in texts]
        else:
            logits = self.cross_encoder.score_many(queries, texts)
        lexical = [self._lexical(q, ts) for q, ts in zip(queries, texts)]
        if not self.weights.bi_encoder_weight:
            return [self.weights.combine(lg, np.zeros_like(lg), lx).astype(np.float32) for lg, lx in zip(logits, lexical)]
        vectors = embed([*queries, *[t for ts in texts for t in ts]], self.weights.bi_encoder)
        out, row = [], len(queries)
        for i, (lg, ts, lx) in enumerate(zip(logits, texts, lexical)):
            cosines = vectors[row : row + len(ts)] @ vectors[i]
            row += len(ts)
            out.append(self.weights.combine(lg, cosines, lx).astype(np.float32))
        return out
