"""The kinds of error the service answers on purpose, each with its status in the Cohere/Jina and TEI dialects;
``rerankit.errors.ServiceError`` carries one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorKind:
    """HTTP status on Cohere/Jina paths, HTTP status and ``error_type`` on TEI's ``/rerank``."""

    status: int
    tei_status: int
    tei_type: str


INVALID = ErrorKind(400, 422, "validation")        # malformed JSON, missing fields, wrong types, bad values
EMPTY = ErrorKind(400, 400, "empty")                # no documents, blank query
TOO_LARGE = ErrorKind(400, 413, "validation")       # above a documents or length limit
BODY_TOO_LARGE = ErrorKind(413, 413, "validation")  # body above --max-body-bytes
NOT_JSON = ErrorKind(415, 415, "validation")        # a body without Content-Type: application/json
UNAUTHORIZED = ErrorKind(401, 401, "unauthorized")  # no API key
FORBIDDEN = ErrorKind(403, 403, "unauthorized")     # wrong API key
NOT_FOUND = ErrorKind(404, 404, "validation")       # unknown model (or path)
OVERLOADED = ErrorKind(429, 429, "overloaded")      # the model's queue is full
INTERNAL = ErrorKind(500, 500, "backend")           # a bug: never on purpose
