"""Experiment, not part of the package: distilling a bi-encoder's ordering into the cross-encoder.

Two variants, both an extra loss term passed to ``rerankit.training.trainer.train_cross_encoder``
(its ``loss_fn``), set by three recipe training options that ``run_experiment.py`` takes out of the
recipe's ``"train"`` before the package reads it:

- ``distill_weight > 0`` without ``teacher``: the loss adds ``distill_weight * KL(target || student)``
  over each group, the target being the softmax of the frozen bi-encoder's cosines divided by
  ``distill_temperature`` and the student the cross-encoder's logits: the cross-encoder also learns
  the bi-encoder's ordering of the negatives (``benchmarks/quality_ablation.py``, row
  ``listwise+distill``).
- with ``teacher`` (a larger sentence-transformers model, e.g. all-mpnet-base-v2), the target is the
  teacher's cosines instead, matched by the student's *fused* score (``ce + prior * cosine``), and
  groups without a positive (``unlabelled_groups``: a recipe's ``"sources": {"unlabelled": ...}``) get
  the teacher's best passage as a pseudo-positive (``pseudo_label``). ``distill-mpnet.json``; tried and
  not shipped (the README's "A second stage").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl
from rerankit.training.data import TrainingGroup, mine_bm25_negatives
from rerankit.training.trainer import FrozenCosines, GroupLoss, TrainConfig, fused_scores

OPTIONS = ("teacher", "distill_weight", "distill_temperature")  # recipe "train" options of this experiment


@dataclass
class DistillOptions:
    teacher: str | None = None  # distillation target (default: the bi-encoder's own cosines)
    distill_weight: float = 0.0
    distill_temperature: float = 0.05


def split_options(train: dict) -> tuple[dict, DistillOptions]:
    """A recipe's ``"train"`` without this experiment's options, and those options."""
    return ({k: v for k, v in train.items() if k not in OPTIONS},
            DistillOptions(**{k: v for k, v in train.items() if k in OPTIONS}))


def unlabelled_groups(queries_path: str | Path, corpus_path: str | Path, max_queries: int | None = None,
                      pool: int = 15, seed: int = 0) -> list[TrainingGroup]:
    """Queries without judgments, each with a shuffled pool of its top-``pool`` BM25 passages of ``corpus``."""
    queries = list(read_queries_jsonl(queries_path).values())
    random.Random(seed).shuffle(queries)
    queries = queries[:max_queries] if max_queries else queries
    groups = [TrainingGroup(q, [], [], "unlabelled") for q in queries]
    mine_bm25_negatives(groups, [d.full_text for d in read_corpus_jsonl(corpus_path)], per_query=pool, depth=pool,
                        seed=seed)
    return groups


def pseudo_label(groups: Sequence[TrainingGroup], score: Callable[[str, list[str]], np.ndarray]) -> list[TrainingGroup]:
    """Groups without a positive get the best-scored of their passages as one (the rest stay negatives)."""
    labelled = []
    for g in groups:
        if g.positives or len(g.negatives) < 2:
            labelled.append(g)
            continue
        scores = score(g.query, g.negatives)
        best = int(np.argmax(scores))
        labelled.append(TrainingGroup(g.query, [g.negatives[best]], g.negatives[:best] + g.negatives[best + 1:],
                                      g.source + "+pseudo" if g.source else "pseudo"))
    return labelled


def distillation_loss(config: TrainConfig, options: DistillOptions, target: FrozenCosines) -> GroupLoss:
    """``group_loss`` plus ``distill_weight * KL(softmax(target cosines / T) || softmax(student))``, where the
    student is the fused score with a teacher and the logits alone without one."""
    import torch

    from rerankit.training.trainer import group_loss

    def loss(logits, cosines, queries: list[str], texts: list[list[str]]):
        wanted = torch.from_numpy(np.stack([target.cosines(q, ts) for q, ts in zip(queries, texts)])).float()
        soft = torch.softmax(wanted.to(logits.device) / options.distill_temperature, dim=1)
        student = fused_scores(logits, cosines, config) if options.teacher else logits
        return group_loss(logits, cosines, config) + options.distill_weight * torch.nn.functional.kl_div(
            torch.log_softmax(student, dim=1), soft, reduction="batchmean")

    return loss


def prepare(groups: Sequence[TrainingGroup], config: TrainConfig,
            options: DistillOptions) -> tuple[list[TrainingGroup], GroupLoss | None]:
    """The groups to train on (pseudo-labelled by the teacher, if any) and the loss (None: the package's)."""
    if not options.distill_weight:
        return list(groups), None
    if options.teacher:
        target = FrozenCosines(options.teacher, [t for g in groups for t in (g.query, *g.positives, *g.negatives)],
                               config.prior_cache)
        groups = pseudo_label(groups, target.cosines)
    else:
        usable = [g for g in groups if g.positives and g.negatives]
        target = FrozenCosines(config.bi_encoder, [t for g in usable for t in (g.query, *g.positives, *g.negatives)],
                               config.prior_cache)
    return list(groups), distillation_loss(config, options, target)
