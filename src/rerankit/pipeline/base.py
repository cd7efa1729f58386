"""``Pipeline``: retrieve n passages, rerank them to k, answer from those k only, with [n] citations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import InvalidInputError
from ..rerankers.base import Reranker
from ..types import Document, RankedResult, normalize_query
from ..validation import positive_int
from .text import clean_citations

if TYPE_CHECKING:  # importing rerankit.retrieval loads BM25 and friends: only when used
    from ..retrieval.base import Retriever


@runtime_checkable
class Answerer(Protocol):
    """Writes an answer to ``question`` from ``passages`` only, citing passage ``i`` (1-based) as ``[i]``."""

    name: str

    def answer(self, question: str, passages: Sequence[Document]) -> str: ...


@dataclass(frozen=True)
class Answer:
    """The answer ``text`` with ``[n]`` citations, every ``source`` it could cite (source ``n`` is
    ``sources[n - 1]``, whose ``rank`` is ``n - 1``), the numbers it did cite, and ``retrieved``, how many
    first-stage passages the sources were chosen from."""

    question: str
    text: str
    sources: list[RankedResult]
    cited: list[int] = field(default_factory=list)
    answerer: str = ""
    reranker: str | None = None
    retrieved: int = 0

    def cited_sources(self) -> list[RankedResult]:
        return [self.sources[n - 1] for n in self.cited]


class Pipeline:
    """``retriever`` (first stage) -> ``reranker`` (optional) -> ``answerer``.

    ``reranker`` may be a spec for ``load_reranker``; ``answerer`` defaults to the extractive one, which
    reuses ``reranker`` when it is a local model (else loads ``default``).
    """

    def __init__(
        self,
        retriever: Retriever,
        reranker: Reranker | str | None = "default",
        answerer: Answerer | None = None,
        *,
        candidates: int = 20,
        top_k: int = 5,
    ) -> None:
        if not callable(getattr(retriever, "search", None)):
            raise InvalidInputError(f"retriever must have search(query, k), got {type(retriever).__name__}")
        if isinstance(reranker, str):
            from ..rerankers import load_reranker

            reranker = load_reranker(reranker)
        if answerer is None:
            from .extractive import ExtractiveAnswerer

            answerer = ExtractiveAnswerer(reranker if is_local_reranker(reranker) else None)
        self.retriever, self.reranker, self.answerer = retriever, reranker, answerer
        self.candidates, self.top_k = positive_int(candidates, "candidates"), positive_int(top_k, "top_k")

    def _ranked(self, question: str, candidates: int | None, top_k: int | None) -> tuple[list[RankedResult], int]:
        from ..retrieval.base import ranked_candidates

        n = positive_int(self.candidates if candidates is None else candidates, "candidates")
        k = positive_int(self.top_k if top_k is None else top_k, "top_k")
        return ranked_candidates(self.retriever, normalize_query(question), k, n, self.reranker)

    def sources(self, question: str, candidates: int | None = None, top_k: int | None = None) -> list[RankedResult]:
        """Retrieve ``candidates`` passages, rerank, keep the best ``top_k`` (source ``n`` is ``rank + 1``)."""
        return self._ranked(question, candidates, top_k)[0]

    def ask(self, question: str, candidates: int | None = None, top_k: int | None = None) -> Answer:
        """The answer to ``question`` from the top ``top_k`` of ``candidates`` retrieved passages."""
        sources, retrieved = self._ranked(question, candidates, top_k)
        reranker = getattr(self.reranker, "name", None) if self.reranker is not None else None
        if not sources:
            return Answer(question, "No passage matches the question.", [], [], self.answerer.name, reranker, 0)
        draft = self.answerer.answer(question, [s.document for s in sources])
        text, cited = clean_citations(draft, len(sources))
        return Answer(question, text, sources, cited, self.answerer.name, reranker, retrieved)

    __call__ = ask


def is_local_reranker(reranker: Reranker | None) -> bool:
    """A reranker that runs here (not an API, an LLM or a chain that may call one)."""
    if reranker is None:
        return False
    from ..rerankers.fallback import FallbackReranker
    from ..rerankers.hosted import HostedReranker
    from ..rerankers.llm import LLMReranker

    return not isinstance(reranker, (HostedReranker, LLMReranker, FallbackReranker))
