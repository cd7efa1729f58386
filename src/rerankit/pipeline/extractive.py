"""The answer without an LLM: the sentences of the top passages, reranked, best first, each cited."""

from __future__ import annotations

from collections.abc import Sequence

from ..rerankers.base import Reranker
from ..types import Document
from ..validation import positive_int
from .text import split_sentences

NO_ANSWER = "The passages do not contain an answer to this question."


class ExtractiveAnswerer:
    """Splits each passage into sentences, reranks them against the question with ``reranker``
    (``load_reranker("default")`` unless given), and returns the best ``max_sentences``, each followed
    by ``[n]``, the number of its passage. Sentences under ``min_words`` words are skipped (unless no
    other is left); with ``min_score``, sentences scoring below it are dropped; with probability scores,
    so are those under ``min_relative`` times the best sentence's score (0.1: off-topic filler)."""

    name = "extractive"

    def __init__(
        self,
        reranker: Reranker | str | None = None,
        max_sentences: int = 3,
        min_words: int = 4,
        min_score: float | None = None,
        min_relative: float | None = 0.1,
    ) -> None:
        positive_int(max_sentences, "max_sentences")
        self._reranker = reranker
        self.max_sentences, self.min_words, self.min_score = max_sentences, min_words, min_score
        self.min_relative = min_relative

    @property
    def reranker(self) -> Reranker:
        if not isinstance(self._reranker, Reranker):
            from ..rerankers import load_reranker

            self._reranker = load_reranker(self._reranker or "default")
        return self._reranker

    def sentences(self, passages: Sequence[Document]) -> list[tuple[int, str]]:
        """``(passage number, sentence)`` for every sentence, long enough ones only when there are any."""
        found = [(n, s) for n, p in enumerate(passages, start=1) for s in split_sentences(p.text)]
        long_enough = [(n, s) for n, s in found if len(s.split()) >= self.min_words]
        return long_enough or found

    def answer(self, question: str, passages: Sequence[Document]) -> str:
        candidates = self.sentences(passages)
        if not candidates:
            return NO_ANSWER
        results = self.reranker.rerank(question, [s for _, s in candidates], top_k=self.max_sentences)
        if self.min_score is not None:
            results = [r for r in results if r.score >= self.min_score]
        if results and self.min_relative is not None and self.reranker.score_kind == "probability":
            best = results[0].score
            results = [r for r in results if r.score >= self.min_relative * best]
        if not results:
            return NO_ANSWER
        return "\n".join(f"{candidates[r.index][1]} [{candidates[r.index][0]}]" for r in results)
