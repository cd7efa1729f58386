"""Cohere Rerank v2 (``/v2/rerank``) and v1 (``/v1/rerank``, which also takes Jina's body).

Shapes follow the ``cohere`` Python SDK (``ClientV2.rerank`` and ``Client.rerank``): results hold
``index`` and ``relevance_score`` (and ``document`` on v1 when asked), with ``id`` and ``meta``.
Jina's answer on the same path adds ``model`` and ``usage.total_tokens``; both are always present
(the Cohere SDK ignores fields it does not know).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, StrictBool, StrictInt, StrictStr, field_validator

from ...errors import ServiceError
from ..errors import INVALID

MAX_DOCUMENT_DEPTH = 32  # an echoed document is rendered to JSON by recursion: a deep one would fail there


def nesting_depth(value: Any) -> int:
    """How many objects and lists ``value`` nests (0 for a plain value), counted without recursion."""
    deepest, stack = 0, [(value, 0)]  # (item, how many containers enclose it)
    while stack:
        item, enclosing = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, enclosing + 1)
            stack.extend((v, enclosing + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


class V2RerankRequest(BaseModel):
    """Cohere v2. ``priority`` and ``relevant_spans`` are accepted and ignored."""

    model: StrictStr
    query: StrictStr
    documents: list[StrictStr]
    top_n: Optional[StrictInt] = None
    max_tokens_per_doc: Optional[StrictInt] = None
    priority: Optional[StrictInt] = None
    relevant_spans: Optional[dict[str, Any]] = None


class V1RerankRequest(BaseModel):
    """Cohere v1 and Jina: documents are strings or objects with ``text`` (or the fields in ``rank_fields``).

    ``return_documents`` defaults to false (Cohere), or to true when ``model`` starts with ``jina``
    (Jina's default). ``max_chunks_per_doc`` is accepted and ignored.
    """

    model: Optional[StrictStr] = None
    query: StrictStr
    documents: list[Union[StrictStr, dict[str, Any]]]
    top_n: Optional[StrictInt] = None
    rank_fields: Optional[list[StrictStr]] = None
    return_documents: Optional[StrictBool] = None
    max_chunks_per_doc: Optional[StrictInt] = None

    @field_validator("documents")
    @classmethod
    def _not_too_deep(cls, documents: list[Union[str, dict[str, Any]]]) -> list[Union[str, dict[str, Any]]]:
        for index, doc in enumerate(documents):
            if isinstance(doc, dict) and nesting_depth(doc) > MAX_DOCUMENT_DEPTH:
                raise ValueError(f"documents[{index}] nests objects and lists more than {MAX_DOCUMENT_DEPTH} "
                                 "levels deep")
        return documents

    def wants_documents(self) -> bool:
        if self.return_documents is not None:
            return self.return_documents
        return (self.model or "").lower().startswith("jina")

    def texts(self) -> list[str]:
        """The text the model reads for each document."""
        return [_document_text(doc, i, self.rank_fields) for i, doc in enumerate(self.documents)]

    def returned_document(self, index: int) -> dict[str, Any]:
        """The document as the client sent it (an object keeps all its fields; a string becomes ``{text}``)."""
        doc = self.documents[index]
        return {"text": doc} if isinstance(doc, str) else doc


def _field_value(doc: dict[str, Any], index: int, name: str) -> str:
    if name not in doc:
        raise ServiceError(INVALID, f"documents[{index}] has no field {name!r} (named in rank_fields)")
    value = doc[name]
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    raise ServiceError(INVALID, f"documents[{index}].{name} must be a string, got {type(value).__name__}")


def _document_text(doc: Union[str, dict[str, Any]], index: int, rank_fields: Optional[list[str]]) -> str:
    """A string as it is; an object's ``text``, or its ``rank_fields`` in order as ``field: value`` lines."""
    if isinstance(doc, str):
        return doc
    if rank_fields:
        if len(rank_fields) == 1:
            return _field_value(doc, index, rank_fields[0])
        return "\n".join(f"{name}: {_field_value(doc, index, name)}" for name in rank_fields)
    text = doc.get("text")
    if not isinstance(text, str):
        raise ServiceError(INVALID, f"documents[{index}] needs a string 'text' field (or name its fields in rank_fields)")
    return text


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class ApiMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits


class V2Result(BaseModel):
    index: int
    relevance_score: float


class V2RerankResponse(BaseModel):
    id: str
    results: list[V2Result]
    meta: ApiMeta


class V1Result(BaseModel):
    index: int
    relevance_score: float
    document: Optional[dict[str, Any]] = None


class Usage(BaseModel):
    total_tokens: int


class V1RerankResponse(BaseModel):
    id: str
    results: list[V1Result]
    meta: ApiMeta
    model: str
    usage: Usage


def meta(version: str, documents: int) -> dict:
    """Cohere's ``meta``: one search unit per 100 documents."""
    return {"api_version": {"version": version}, "billed_units": {"search_units": max(1, -(-documents // 100))}}

