"""Training groups from the judged collections' own layouts (SQuAD, WikiQA, SciFact).

Each reader returns ``TrainingGroup`` objects; negatives are the collection's own hard
negatives (WikiQA) or are mined with BM25 by ``data.mine_bm25_negatives``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from ..datasets import read_corpus_jsonl
from ..io import read_jsonl
from .data import TrainingGroup, mine_bm25_negatives


def squad_groups(folder: str | Path, max_queries: int | None = None, negatives: int = 7, seed: int = 0) -> list[TrainingGroup]:
    """SQuAD questions -> gold paragraph, with BM25-mined negatives from all paragraphs of the set."""
    folder = Path(folder)
    paragraphs = {obj["pid"]: obj["text"] for _, obj in read_jsonl(folder / "paragraphs.jsonl")}
    questions = [obj for _, obj in read_jsonl(folder / "questions.jsonl")
                 if not obj.get("is_impossible") and obj.get("gold_pid") in paragraphs]
    random.Random(seed).shuffle(questions)
    questions = questions[:max_queries] if max_queries else questions
    groups = [TrainingGroup(q["question"], [paragraphs[q["gold_pid"]]], [], "squad") for q in questions]
    mine_bm25_negatives(groups, list(paragraphs.values()), per_query=negatives, seed=seed)
    return groups


def wikiqa_groups(path: str | Path, negatives: int = 7, seed: int = 0) -> list[TrainingGroup]:
    """WikiQA questions with a correct sentence; negatives are the other sentences of the same paragraph,
    topped up with BM25 negatives from the whole file."""
    groups = []
    for _, obj in read_jsonl(path):
        pos = [p["text"] for p in obj["passages"] if p["label"] == 1]
        neg = [p["text"] for p in obj["passages"] if p["label"] != 1]
        if pos:
            groups.append(TrainingGroup(obj["query"], pos, neg[:negatives], "wikiqa"))
    short = [g for g in groups if len(g.negatives) < negatives]
    if short:
        pool = [t for g in groups for t in (*g.positives, *g.negatives)]
        mine_bm25_negatives(short, pool, per_query=negatives, seed=seed)
        for g in short:
            g.negatives = g.negatives[:negatives]
    return groups


def scifact_groups(pairs_path: str | Path, corpus_path: str | Path, negatives: int = 7, seed: int = 0) -> list[TrainingGroup]:
    """SciFact training claims -> cited abstracts, with BM25 negatives from the SciFact corpus."""
    corpus = {d.id: d.full_text for d in read_corpus_jsonl(corpus_path)}
    positives: dict[str, list[str]] = defaultdict(list)
    for _, obj in read_jsonl(pairs_path):
        if str(obj["pos_id"]) in corpus:
            positives[obj["query"]].append(corpus[str(obj["pos_id"])])
    groups = [TrainingGroup(q, p, [], "scifact") for q, p in positives.items()]
    mine_bm25_negatives(groups, list(corpus.values()), per_query=negatives, seed=seed)
    return groups

