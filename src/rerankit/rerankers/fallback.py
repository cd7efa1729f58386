"""Fallback chains: ``"cohere:rerank-english-v3.0,default"`` tries each reranker in order and returns the
first answer; a failure or timeout (any error but bad input) moves on to the next. Each ranking comes
whole from one backend, named in ``RankedResult.backend`` and in ``last_backend``; the log says which
backend failed and which answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from ..errors import FallbackError, InvalidInputError, ProviderError, UnknownSpecError
from ..types import Document, DocumentInput, RankedResult, normalize_documents
from ..validation import validate_top_k
from .base import Reranker

log = logging.getLogger("rerankit.fallback")

T = TypeVar("T")


class FallbackReranker(Reranker):
    """Tries ``rerankers`` in order until one answers. ``score_kind`` is the first one's; when a later one
    answers, the scores are in its range (``RankedResult.backend`` says whose)."""

    def __init__(self, rerankers: Sequence[Reranker], name: str | None = None) -> None:
        if not rerankers:
            raise InvalidInputError("a fallback chain needs at least one reranker")
        self.rerankers = list(rerankers)
        self.score_kind = self.rerankers[0].score_kind  # type: ignore[misc]
        self.name = name or ",".join(r.name for r in self.rerankers)
        self._local = threading.local()

    @property
    def last_backend(self) -> str | None:
        """The name of the backend that answered this thread's last call."""
        return getattr(self._local, "backend", None)

    def _first_answer(self, call: Callable[[Reranker], T]) -> tuple[T, Reranker]:
        failures = []
        for position, reranker in enumerate(self.rerankers):
            try:
                answer = call(reranker)
            except InvalidInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure moves on to the next backend
                failures.append(f"{reranker.name} ({type(exc).__name__}: {exc})")
                following = self.rerankers[position + 1].name if position + 1 < len(self.rerankers) else None
                log.warning("reranker %s failed (%s: %s)%s", reranker.name, type(exc).__name__, exc,
                            f"; falling back to {following}" if following else "")
                continue
            self._local.backend = reranker.name
            log.info("reranking answered by %s%s", reranker.name, f" after {position} failure(s)" if position else "")
            return answer, reranker
        raise FallbackError("every reranker in the chain failed: " + "; ".join(failures))

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        scores, _ = self._first_answer(lambda r: r.score(query, documents))
        return scores

    def rerank(self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None) -> list[RankedResult]:
        """The first backend's ranking that succeeds; each result's ``backend`` names it."""
        top_k = validate_top_k(top_k)
        docs = normalize_documents(documents)
        results, reranker = self._first_answer(lambda r: r.rerank(query, docs, top_k=top_k))
        return [r if r.backend else replace(r, backend=reranker.name) for r in results]


def split_chain(spec: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; an empty member is an ``UnknownSpecError``."""
    members = [part.strip() for part in spec.split(",")]
    if len(members) < 2 or not all(members):
        raise UnknownSpecError(f"fallback chain {spec!r}: use 'SPEC,SPEC[,...]' with no empty member")
    return members


def load_fallback(spec: str, load: Callable[..., Reranker], **kwargs: Any) -> FallbackReranker:
    """Build each member of ``"SPEC,SPEC,..."`` with ``load`` (``load_reranker``).

    ``kwargs`` go to every member that takes them (a member that rejects one is built without any).
    A member that cannot start for a provider reason (e.g. no API key) is left out with a warning, so
    the rest of the chain still serves; an unknown spec is an error.
    """
    rerankers: list[Reranker] = []
    for member in split_chain(spec):
        try:
            try:
                rerankers.append(load(member, **kwargs))
            except TypeError:
                if not kwargs:
                    raise
                rerankers.append(load(member))
        except ProviderError as exc:
            log.warning("fallback chain %s: leaving out %s (%s)", spec, member, exc)
    if not rerankers:
        raise FallbackError(f"fallback chain {spec!r}: no member could be started")
    return FallbackReranker(rerankers, name=spec)
