"""``llm:MODEL``: reranking with a large language model behind any OpenAI-compatible chat endpoint.

- ``listwise`` (default), RankGPT's sliding window: windows of ``window`` (20) passages, moved up by
  ``step`` (10) from the bottom of the list to the top; the model answers a permutation such as
  ``[3] > [1] > [2]``, repaired when it is malformed (``parse_permutation``). A passage's score is
  ``(n - final position) / n``, in (0, 1], best = 1.
- ``pointwise``: one request per passage asks for a 0-10 relevance grade; the score is grade / 10 in
  [0, 1] (an answer without a number scores 0 and is logged).

Spec options: ``llm:MODEL?mode=pointwise&window=20&step=10&timeout=S&max_retries=N`` (or keywords).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..http_client import RetryPolicy
from ..types import Document, DocumentInput, RankedResult, normalize_documents
from ..validation import positive_int, validate_top_k
from .base import Reranker, rank_documents
from .chat import DEFAULT_TIMEOUT_S, ChatClient, Message
from .hosted import split_options

log = logging.getLogger("rerankit.llm")

MODES = ("listwise", "pointwise")
OPTIONS = {"mode": str, "window": int, "step": int, "timeout": float, "max_retries": int, "max_words": int,
           "concurrency": int}
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
_GRADE = re.compile(r"-?\d+(?:\.\d+)?")


def repair_permutation(ids: Sequence[int], count: int) -> list[int]:
    """0-based order of ``count`` passages from the model's 1-based ``ids``: ids out of 1..count and
    repeats are dropped, and passages the model left out follow in their original order."""
    seen: list[int] = []
    for value in ids:
        index = value - 1
        if 0 <= index < count and index not in seen:
            seen.append(index)
    chosen = set(seen)
    return seen + [i for i in range(count) if i not in chosen]


def parse_permutation(text: str, count: int) -> list[int]:
    """A ranking like ``[3] > [1] > [2]`` as a full 0-based order of ``count`` passages.

    Bracketed ids are used when there are any (``[a]`` and other non-numeric ids are ignored); otherwise
    every number in the text (``3 > 1 > 2``, ``3, 1, 2``). See ``repair_permutation`` for the repairs.
    """
    found = _BRACKETED.findall(text) or _NUMBER.findall(text)
    order = repair_permutation([int(x) for x in found], count)
    if len(found) != count or order[: len(found)] != [int(x) - 1 for x in found]:
        log.info("repaired the LLM's permutation %r into %s", text[:200], [i + 1 for i in order])
    return order


def sliding_windows(count: int, window: int = 20, step: int = 10) -> list[tuple[int, int]]:
    """``(start, end)`` of each window, from the bottom of the list up; the last one starts at 0."""
    if count <= 0:
        return []
    end = count
    start = max(0, end - window)
    spans = [(start, end)]
    while start > 0:
        end -= step
        start = max(0, end - window)
        spans.append((start, end))
    return spans


def _clip_words(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words])


def listwise_messages(query: str, passages: Sequence[str]) -> list[Message]:
    """RankGPT-style conversation: the passages one per turn, then the request for a ranking."""
    n = len(passages)
    messages: list[Message] = [
        {"role": "system",
         "content": "You are RankGPT, an assistant that ranks passages by their relevance to a search query."},
        {"role": "user",
         "content": f"I will give you {n} passages, each marked with a number in brackets [].\n"
                    f"Rank them by their relevance to the query: {query}"},
        {"role": "assistant", "content": "Okay, please send the passages."},
    ]
    for i, passage in enumerate(passages, start=1):
        messages.append({"role": "user", "content": f"[{i}] {passage}"})
        messages.append({"role": "assistant", "content": f"Received passage [{i}]."})
    messages.append({
        "role": "user",
        "content": f"Search query: {query}\nRank the {n} passages above from most to least relevant to the "
                   "search query. Answer only with the identifiers in the form [] > [], e.g. [2] > [1], "
                   "listing every passage once, with no explanation.",
    })
    return messages


def pointwise_messages(query: str, passage: str) -> list[Message]:
    return [
        {"role": "system", "content": "You grade how relevant a passage is to a search query."},
        {"role": "user",
         "content": f"Query: {query}\nPassage: {passage}\n\nHow relevant is the passage to the query, from 0 "
                    "(not relevant) to 10 (answers it completely)? Answer with the number only."},
    ]


def parse_grade(text: str, top: float = 10.0) -> float | None:
    """The first number in ``text`` clipped to [0, ``top``], or None when there is none."""
    match = _GRADE.search(text)
    if match is None:
        return None
    return min(max(float(match.group()), 0.0), top)


class LLMReranker(Reranker):
    """Listwise (RankGPT sliding window) or pointwise reranking by an OpenAI-compatible LLM."""

    score_kind = "provider"

    def __init__(
        self,
        model: str,
        *,
        mode: str = "listwise",
        window: int = 20,
        step: int = 10,
        max_words: int = 300,
        concurrency: int = 4,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        client: ChatClient | None = None,
        name: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise InvalidInputError(f"llm mode must be one of {', '.join(MODES)}, got {mode!r}")
        if window < 2 or not 1 <= step <= window:
            raise InvalidInputError(f"need window >= 2 and 1 <= step <= window, got window={window}, step={step}")
        positive_int(max_words, "max_words"), positive_int(concurrency, "concurrency")
        self.client = client or ChatClient(model, base_url=base_url, api_key=api_key, timeout=timeout,
                                           max_retries=max_retries, retry=retry)
        self.model, self.mode, self.window, self.step = model, mode, window, step
        self.max_words, self.concurrency = max_words, concurrency
        self.name = name or (f"llm:{model}" if mode == "listwise" else f"llm:{model}?mode={mode}")

    def rank_window(self, query: str, passages: Sequence[str]) -> list[int]:
        """One request: the 0-based order of ``passages`` the model gives (repaired)."""
        if len(passages) < 2:
            return list(range(len(passages)))
        answer = self.client.complete(listwise_messages(query, passages))
        return parse_permutation(answer, len(passages))

    def listwise_order(self, query: str, texts: Sequence[str]) -> list[int]:
        """RankGPT's sliding window over ``texts`` (in first-stage order): indices best first."""
        clipped = [_clip_words(t, self.max_words) for t in texts]
        order = list(range(len(texts)))
        for start, end in sliding_windows(len(texts), self.window, self.step):
            ids = order[start:end]
            permutation = self.rank_window(query, [clipped[i] for i in ids])
            order[start:end] = [ids[j] for j in permutation]
        return order

    def grade(self, query: str, text: str) -> float:
        """Pointwise: the model's 0-10 grade of one passage, as a score in [0, 1]."""
        answer = self.client.complete(pointwise_messages(query, _clip_words(text, self.max_words)), max_tokens=8)
        grade = parse_grade(answer)
        if grade is None:
            log.warning("the LLM's grade %r has no number; scoring the passage 0", answer[:100])
            return 0.0
        return grade / 10.0

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        texts = [d.full_text for d in documents]
        if self.mode == "pointwise":
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(texts))) as pool:
                return np.array(list(pool.map(lambda t: self.grade(query, t), texts)), dtype=np.float64)
        n = len(texts)
        scores = np.zeros(n, dtype=np.float64)
        for position, index in enumerate(self.listwise_order(query, texts)):
            scores[index] = (n - position) / n
        return scores

    def rerank(self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None) -> list[RankedResult]:
        """As ``Reranker.rerank``; every result's ``backend`` is this reranker's ``name``."""
        top_k = validate_top_k(top_k)
        docs = normalize_documents(documents)
        return rank_documents(self.score(query, docs), docs, top_k, backend=self.name)


def load_llm(arg: str, **kwargs: Any) -> LLMReranker:
    """``llm:MODEL[?mode=listwise|pointwise&window=20&step=10&timeout=S&max_retries=N]``."""
    model, options = split_options(arg, OPTIONS)
    return LLMReranker(model, **{**options, **kwargs})
