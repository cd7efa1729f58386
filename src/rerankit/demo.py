"""The offline demo: bi-encoder top 5 -> cross-encoder top 3 on a small support corpus, with P@k before/after."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from .encoders import embed
from .rerankers import Reranker, load_reranker
from .types import Document, RankedResult


@dataclass
class DemoData:
    corpus: list[Document]
    demo_query: str
    password_passages: list[str]
    labelled: list[tuple[str, set[str]]]


@dataclass
class DemoResult:
    query: str
    first_stage: list[tuple[Document, float]]
    reranked: list[RankedResult]
    precision_before: dict[int, float]
    precision_after: dict[int, float]
    n_queries: int


def load_demo_data() -> DemoData:
    raw = json.loads(resources.files("rerankit").joinpath("demo_data/support.json").read_text(encoding="utf-8"))
    return DemoData(
        corpus=[Document(text=d["text"], id=d["id"]) for d in raw["corpus"]],
        demo_query=raw["demo_query"],
        password_passages=raw["password_passages"],
        labelled=[(q["query"], set(q["relevant"])) for q in raw["labelled_queries"]],
    )


def bi_encoder_top(query: str, corpus: list[Document], k: int) -> list[tuple[Document, float]]:
    """The first stage: cosine of all-MiniLM-L6-v2 embeddings, best ``k``."""
    vectors = embed([query, *[d.text for d in corpus]])
    scores = vectors[1:] @ vectors[0]
    order = sorted(range(len(corpus)), key=lambda i: (-scores[i], i))[:k]
    return [(corpus[i], float(scores[i])) for i in order]


def precision_at(ids: list[str | None], relevant: set[str], k: int) -> float:
    """Share of the first ``k`` ids that are judged relevant (by document id, not by list position)."""
    return sum(1 for doc_id in ids[:k] if doc_id in relevant) / k


def run_demo(reranker: Reranker | None = None, candidates: int = 5, top_k: int = 3) -> DemoResult:
    data = load_demo_data()
    reranker = reranker or load_reranker("default")
    first = bi_encoder_top(data.demo_query, data.corpus, candidates)
    reranked = reranker.rerank(data.demo_query, [d for d, _ in first], top_k=top_k)
    before = {1: 0.0, 3: 0.0}
    after = {1: 0.0, 3: 0.0}
    for query, relevant in data.labelled:
        hits = bi_encoder_top(query, data.corpus, candidates)
        order = [r.document.id for r in reranker.rerank(query, [d for d, _ in hits])]
        for k in before:
            before[k] += precision_at([d.id for d, _ in hits], relevant, k) / len(data.labelled)
            after[k] += precision_at(order, relevant, k) / len(data.labelled)
    return DemoResult(data.demo_query, first, reranked, before, after, len(data.labelled))
