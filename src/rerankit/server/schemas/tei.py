"""Hugging Face text-embeddings-inference: ``POST /rerank`` answers a bare list of ``{index, score, text?}``,
best first.

``raw_scores`` and ``return_text`` are honoured; ``truncate`` and ``truncation_direction`` are
accepted and ignored (long documents are handled as the model's reranker does). ``model`` is a
rerankit extension that picks a served model (default: the first).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, StrictBool, StrictStr


class TeiRerankRequest(BaseModel):
    query: StrictStr
    texts: list[StrictStr]
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    truncate: Optional[StrictBool] = None
    truncation_direction: Literal["left", "right", "Left", "Right"] = "right"
    model: Optional[StrictStr] = None


class TeiRank(BaseModel):
    index: int
    score: float
    text: Optional[str] = None
