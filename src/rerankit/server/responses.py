"""JSON rendering that never fails, and error bodies in the dialect of the path."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse

from .errors import ErrorKind

TEI_PATHS = frozenset({"/rerank"})
MAX_MESSAGE_CHARS = 1000


def _finite(value: Any) -> Any:
    """A copy of ``value`` with NaN and infinities (which JSON cannot carry) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """UTF-8 JSON; input echoed back with lone surrogates or NaN is escaped or nulled instead of failing."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            return json.dumps(_finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def is_tei(path: str) -> bool:
    """Whether errors on ``path`` take TEI's ``{error, error_type}`` shape."""
    return path in TEI_PATHS


def clean_message(message: str) -> str:
    """One line, bounded, and encodable (a message may quote a client's key or field name)."""
    message = " ".join(str(message).split())
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(path: str, kind: ErrorKind, message: str, headers: dict[str, str] | None = None) -> SafeJSONResponse:
    """``{"message": ...}`` on Cohere/Jina paths, ``{"error", "error_type"}`` with TEI's status on ``/rerank``."""
    message = clean_message(message)
    if is_tei(path):
        return SafeJSONResponse({"error": message, "error_type": kind.tei_type}, kind.tei_status, headers=headers)
    return SafeJSONResponse({"message": message}, kind.status, headers=headers)
