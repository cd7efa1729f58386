"""Request limits (documents per request, query and document length, ``top_n``), each named in its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInputError, ServiceError
from ..validation import positive_int
from .errors import EMPTY, INVALID, TOO_LARGE


def check_unicode(text: str, what: str) -> None:
    """Reject strings that are not valid Unicode text (JSON lets a client send lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ServiceError(INVALID, f"{what} is not valid Unicode (lone surrogate at position {exc.start})") from None


@dataclass(frozen=True)
class Limits:
    """The limits of ``ServerConfig``, with the checks that apply them."""

    max_documents: int
    max_query_chars: int
    max_document_chars: int

    def check_query(self, query: str) -> None:
        if not query.strip():
            raise ServiceError(EMPTY, "query must not be empty")
        if len(query) > self.max_query_chars:
            raise ServiceError(TOO_LARGE, f"query has {len(query)} characters, above the limit of "
                                      f"{self.max_query_chars} (--max-query-chars)")
        check_unicode(query, "query")

    def check_count(self, count: int, field: str = "documents") -> None:
        if count == 0:
            raise ServiceError(EMPTY, f"`{field}` cannot be empty")
        if count > self.max_documents:
            raise ServiceError(TOO_LARGE, f"{count} {field}, above the limit of {self.max_documents} "
                                      f"per request (--max-documents); split the request")

    def check_documents(self, texts: Sequence[str], field: str = "documents") -> None:
        self.check_count(len(texts), field)
        for i, text in enumerate(texts):
            if len(text) > self.max_document_chars:
                raise ServiceError(TOO_LARGE, f"{field}[{i}] has {len(text)} characters, above the limit of "
                                          f"{self.max_document_chars} (--max-document-chars)")
            check_unicode(text, f"{field}[{i}]")

    def check_top_n(self, top_n: int | None, field: str = "top_n") -> None:
        if top_n is None:
            return
        if top_n < 1 or top_n > self.max_documents:
            raise ServiceError(INVALID, f"{field} must be between 1 and {self.max_documents} "
                                    f"(--max-documents), got {top_n}")

    @staticmethod
    def check_positive(value: int | None, field: str) -> None:
        """``positive_int`` for a request field: its error as the service's 422."""
        try:
            if value is not None:
                positive_int(value, field)
        except InvalidInputError as exc:
            raise ServiceError(INVALID, str(exc)) from None
