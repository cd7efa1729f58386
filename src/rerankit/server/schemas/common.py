"""Bodies shared by the dialects: error shapes and the health answer."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorMessage(BaseModel):
    """The error body on Cohere and Jina paths."""

    message: str


class TeiError(BaseModel):
    """The error body on TEI's ``/rerank``: ``error_type`` is ``empty``, ``validation``, ``overloaded``, ..."""

    error: str
    error_type: str


class ModelInfo(BaseModel):
    name: str
    spec: str
    score_kind: str
    batching: str


class Health(BaseModel):
    status: str
    models: list[ModelInfo]
