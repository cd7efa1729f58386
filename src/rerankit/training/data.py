"""Training material: (query, positives, negatives) groups, their jsonl form, and hard-negative mining."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError, InvalidInputError
from ..io import atomic_write_text, read_jsonl


@dataclass
class TrainingGroup:
    """One query with at least one relevant passage and any number of non-relevant ones."""

    query: str
    positives: list[str]
    negatives: list[str] = field(default_factory=list)
    source: str = ""


def _strings(value, name: str, path: Path, lineno: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataFormatError(f"{path}:{lineno}: {name!r} must be a string or a list of strings")
    return [v for v in value if v.strip()]


def read_training_jsonl(path: str | Path) -> list[TrainingGroup]:
    """Read ``{"query", "positive"|"positives", "negatives"?}`` lines; errors name the line."""
    path = Path(path)
    groups = []
    for lineno, obj in read_jsonl(path):
        query = obj.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DataFormatError(f"{path}:{lineno}: missing non-empty string field 'query'")
        positives = _strings(obj.get("positives", obj.get("positive", obj.get("pos"))), "positives", path, lineno)
        if not positives:
            raise DataFormatError(f"{path}:{lineno}: needs at least one 'positive'")
        negatives = _strings(obj.get("negatives", obj.get("negative", obj.get("neg"))), "negatives", path, lineno)
        groups.append(TrainingGroup(query, positives, negatives, str(obj.get("source", ""))))
    if not groups:
        raise DataFormatError(f"{path}: no training groups")
    return groups


def write_training_jsonl(groups: Sequence[TrainingGroup], path: str | Path) -> None:
    lines = (
        json.dumps({"query": g.query, "positives": g.positives, "negatives": g.negatives, "source": g.source},
                   ensure_ascii=False)
        for g in groups
    )
    atomic_write_text(path, "\n".join(lines) + "\n")


def mine_bm25_negatives(
    groups: Sequence[TrainingGroup], corpus: Sequence[str] | None = None, per_query: int = 7, depth: int = 30,
    seed: int = 0,
) -> None:
    """Add up to ``per_query`` BM25 negatives to each group, in place.

    Candidates come from ``corpus`` (default: every passage of every group) ranked by BM25 for the
    query; positives and zero-score hits are skipped, and negatives are sampled from the top
    ``depth`` so that they are hard but not all near-duplicates of one another. Queries with too
    few lexical matches are topped up with random passages of the pool.
    """
    from ..retrieval.bm25 import BM25

    pool = list(dict.fromkeys(corpus if corpus is not None else
                              [t for g in groups for t in (*g.positives, *g.negatives)]))
    if not pool:
        raise InvalidInputError("no passages to mine negatives from")
    bm25 = BM25().index(pool)
    rng = random.Random(seed)
    indices, scores = bm25.search_many([g.query for g in groups], depth + 5)
    for group, row, row_scores in zip(groups, indices, scores):
        taken = set(group.positives) | set(group.negatives)
        candidates = [pool[i] for i, s in zip(row, row_scores) if s > 0 and pool[i] not in taken][:depth]
        rng.shuffle(candidates)
        chosen = candidates[:per_query]
        # Too few lexical matches: top up with random passages (easy negatives beat none).
        others = [t for t in pool if t not in taken and t not in chosen]
        chosen += rng.sample(others, min(len(others), per_query - len(chosen)))
        group.negatives.extend(chosen)


def split_dev(groups: Sequence[TrainingGroup], fraction: float, seed: int = 0) -> tuple[list, list]:
    """A seeded split into (train, dev) by query; ``dev`` has at least one group when fraction > 0."""
    if not 0 <= fraction < 1:
        raise InvalidInputError("dev fraction must be in [0, 1)")
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n_dev = max(1, round(len(groups) * fraction)) if fraction > 0 and len(groups) > 1 else 0
    dev = [groups[i] for i in order[:n_dev]]
    train = [groups[i] for i in order[n_dev:]]
    return train, dev
