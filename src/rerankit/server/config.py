"""Settings of one ``rerankit serve`` process: which models, which limits, which keys."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

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


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``create_app`` needs; JSON round-trips so that uvicorn workers can rebuild it."""

    models: tuple[ModelSpec, ...] = (ModelSpec("default", "default"),)
    backend: str | None = None
    long_docs: str | None = "max"
    api_keys: tuple[str, ...] = ()
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS
    max_document_chars: int = DEFAULT_MAX_DOCUMENT_CHARS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_queue_documents: int = DEFAULT_MAX_QUEUE_DOCUMENTS
    max_batch_documents: int = DEFAULT_MAX_BATCH_DOCUMENTS
    graceful_timeout_s: float = DEFAULT_GRACEFUL_TIMEOUT_S
    index: str | None = None  # the playground's first stage (an index folder or URL; None: the demo corpus)

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidInputError("serve needs at least one --model")
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"--model names must be unique; repeated: {', '.join(duplicates)}")
        for option, value in (("--max-documents", self.max_documents), ("--max-query-chars", self.max_query_chars),
                              ("--max-document-chars", self.max_document_chars),
                              ("--max-body-bytes", self.max_body_bytes),
                              ("--max-queue-documents", self.max_queue_documents),
                              ("--max-batch-documents", self.max_batch_documents)):
            positive_int(value, option)
        if self.max_queue_documents < self.max_documents:
            raise InvalidInputError(
                f"--max-queue-documents ({self.max_queue_documents}) must be >= --max-documents "
                f"({self.max_documents}), or a request at the limit could never be queued")
        if self.long_docs not in (None, "max", "mean", "first"):
            raise InvalidInputError(f"--long-docs must be max, mean or first, got {self.long_docs!r}")
        if any(not isinstance(k, str) or not k for k in self.api_keys):
            raise InvalidInputError("API keys must be non-empty strings")
        for key in self.api_keys:
            if any(c.isspace() or not c.isprintable() for c in key):
                raise InvalidInputError("an API key holds a space or a control character, which an "
                                        "'Authorization: Bearer KEY' header cannot carry")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        data = json.loads(text)
        data["models"] = tuple(ModelSpec(**m) for m in data["models"])
        data["api_keys"] = tuple(data["api_keys"])
        return cls(**data)
