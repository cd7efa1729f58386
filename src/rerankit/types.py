"""Plain typed objects shared by every stage: documents in, ranked results out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import InvalidInputError


@dataclass(frozen=True)
class Document:
    """A passage to rank: its text, an optional title and id, and free metadata."""

    text: str
    title: str = ""
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidInputError(f"a Document's text must be a string, got {type(self.text).__name__}")
        if self.title is None:
            object.__setattr__(self, "title", "")
        elif not isinstance(self.title, str):
            raise InvalidInputError(f"a Document's title must be a string, got {type(self.title).__name__}")

    @property
    def full_text(self) -> str:
        """Title and text joined as the models read them."""
        return f"{self.title}. {self.text}" if self.title else self.text


DocumentInput = Union[str, Document, Mapping[str, Any]]


@dataclass(frozen=True)
class RankedResult:
    """One ranked passage: what ``Reranker.rerank``, ``retrieve_and_rerank`` and ``Pipeline`` return.

    ``index`` is its 0-based position in the input: the list given to ``rerank``, or the first stage's
    ranking after retrieval (there it is the first-stage rank). ``rank`` is its 0-based position after
    reranking and ``score`` the reranker's score (the first stage's where nothing reranked).
    ``first_stage_score`` is the retriever's score, where there was a first stage. ``offsets``, where the
    reranker reports it, is the ``(start, end)`` character span of ``document.full_text`` that was scored
    (the best window of a long document). ``backend``, where the reranker reports it (hosted APIs, LLMs,
    fallback chains), names the backend that produced the score, e.g. ``cohere:rerank-v3.5`` or ``default``.
    """

    index: int
    score: float
    document: Document
    rank: int
    offsets: tuple[int, int] | None = field(default=None, kw_only=True)
    backend: str | None = field(default=None, kw_only=True)
    first_stage_score: float | None = field(default=None, kw_only=True)

    @property
    def id(self) -> str | None:
        return self.document.id

    @property
    def text(self) -> str:
        return self.document.text


def normalize_query(query: Any) -> str:
    """Return the query if it is a non-blank string, else raise ``InvalidInputError``."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query is empty")
    return query


def normalize_document(doc: Any, position: int = 0) -> Document:
    """Turn a string, ``Document`` or dict with ``text`` (and optional ``title``/``id``) into a ``Document``."""
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, str):
        return Document(text=doc)
    if isinstance(doc, Mapping):
        text = doc.get("text")
        if not isinstance(text, str):
            raise InvalidInputError(f"document {position}: a dict document needs a string 'text' field")
        title = doc.get("title") or ""
        if not isinstance(title, str):
            raise InvalidInputError(f"document {position}: 'title' must be a string")
        raw_id = doc.get("id", doc.get("_id"))
        meta = {k: v for k, v in doc.items() if k not in ("text", "title", "id", "_id")}
        return Document(text=text, title=title, id=None if raw_id is None else str(raw_id), metadata=meta)
    raise InvalidInputError(
        f"document {position}: expected a string or a dict with 'text', got {type(doc).__name__}"
    )


def normalize_documents(documents: Any) -> list[Document]:
    """Validate a sequence of documents; strings and dicts become ``Document`` objects."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise InvalidInputError("documents must be a list of strings or dicts with 'text'")
    return [normalize_document(d, i) for i, d in enumerate(documents)]


