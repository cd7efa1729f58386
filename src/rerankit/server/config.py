"""Settings of one ``rerankit serve`` process: which models, which limits, which keys (a pydantic model)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..errors import InvalidInputError
from ..validation import positive_int

DEFAULT_MAX_DOCUMENTS = 10_000  # Cohere's documented limit per request
DEFAULT_MAX_QUERY_CHARS = 10_000
DEFAULT_MAX_DOCUMENT_CHARS = 100_000
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_QUEUE_DOCUMENTS = 20_000
DEFAULT_MAX_BATCH_DOCUMENTS = 1024
DEFAULT_GRACEFUL_TIMEOUT_S = 30.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_LIMITS = ("max_documents", "max_query_chars", "max_document_chars", "max_body_bytes", "max_queue_documents",
           "max_batch_documents")


@dataclass(frozen=True)
class ModelSpec:
    """One served model: the name requests use in ``model``, and the ``load_reranker`` spec."""

    name: str
    spec: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``NAME=SPEC`` or a bare ``SPEC`` (then the name is the spec itself)."""
        text = text.strip()
        name, sep, spec = text.partition("=")
        if not sep:
            name, spec = text, text
        name, spec = name.strip(), spec.strip()
        if not spec:
            raise InvalidInputError(f"--model {text!r}: empty spec; use NAME=SPEC or SPEC")
        if sep and not _NAME.match(name):
            raise InvalidInputError(f"--model {text!r}: a name is letters, digits and . _ : - (got {name!r})")
        return cls(name=name, spec=spec)


def option(field: str) -> str:
    """The ``serve`` option that sets ``field``."""
    return "--" + field.replace("_", "-")


class ServerConfig(BaseModel):
    """Everything ``create_app`` needs, validated when built (``InvalidInputError`` names the option); JSON
    round-trips so that uvicorn workers can rebuild it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[ModelSpec, ...] = (ModelSpec("default", "default"),)
    backend: str | None = None
    long_docs: Literal["max", "mean", "first"] | None = "max"
    api_keys: tuple[str, ...] = ()
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS
    max_document_chars: int = DEFAULT_MAX_DOCUMENT_CHARS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_queue_documents: int = DEFAULT_MAX_QUEUE_DOCUMENTS
    max_batch_documents: int = DEFAULT_MAX_BATCH_DOCUMENTS
    graceful_timeout_s: float = DEFAULT_GRACEFUL_TIMEOUT_S
    index: str | None = None  # the playground's first stage (an index folder or URL; None: the demo corpus)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidInputError(_first_problem(exc)) from None

    @field_validator(*_LIMITS, mode="before")
    @classmethod
    def _positive(cls, value: Any, info) -> int:
        return positive_int(value, option(info.field_name))

    @field_validator("api_keys")
    @classmethod
    def _printable_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if any(not key for key in keys):
            raise InvalidInputError("API keys must be non-empty strings")
        if any(c.isspace() or not c.isprintable() for key in keys for c in key):
            raise InvalidInputError("an API key holds a space or a control character, which an "
                                    "'Authorization: Bearer KEY' header cannot carry")
        return keys

    @model_validator(mode="after")
    def _consistent(self) -> ServerConfig:
        if not self.models:
            raise InvalidInputError("serve needs at least one --model")
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"--model names must be unique; repeated: {', '.join(duplicates)}")
        if self.max_queue_documents < self.max_documents:
            raise InvalidInputError(
                f"--max-queue-documents ({self.max_queue_documents}) must be >= --max-documents "
                f"({self.max_documents}), or a request at the limit could never be queued")
        return self

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise InvalidInputError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    """The first error of a validation, as the option it concerns and what is wrong."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidInputError):
        return str(cause)
    field = str(error["loc"][0]) if error["loc"] else "configuration"
    return f"{option(field)}: {error['msg']}"
