"""Experiment, not part of the package: fine-tuning on a graded, judged collection (TREC DL style),
with the step count chosen by k-fold. A recipe's ``"finetune"`` stage (``run_experiment.py``).

Groups come from the judgments themselves: for each query and each grade ``g >= 1``, the passages
judged ``g`` are positives and the passages judged below ``g`` are negatives (for ``g >= 2`` the
pooled passages that nobody judged count as negatives too). A listwise loss over such groups
teaches both relevance and its grades.

``kfold_finetune`` splits the queries into folds, trains on all folds but one from the same start
model, scores the held-out queries every ``eval_every`` steps, and picks the step count with the
best mean held-out nDCG@10. It keeps the held-out ("out-of-fold") scores at that step, so that a
fusion fitted on them has never seen its own training queries. A last run on every query, for the
chosen number of steps, gives the model; the fusion weights are then fitted on the out-of-fold
scores (``out_of_fold_pairs``), so that no weight is fitted on scores of a model that trained on the
same queries.

Tried on TREC DL21 after the ``distill-mpnet.json`` stage (``benchmarks/quality_ablation.py``, row
``dl21-finetune``): dropped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rerankit.datasets import Qrels, read_corpus_jsonl, read_qrels, read_queries_jsonl, read_trec_run
from rerankit.evaluation.metrics import trec_order
from rerankit.training.data import TrainingGroup
from rerankit.training.fusion import DevPairs
from rerankit.training.trainer import ScorePairs, TrainConfig, train_cross_encoder

log = logging.getLogger(__name__)


@dataclass
class JudgedCollection:
    """Queries, graded judgments, passage texts and first-stage candidates of one collection."""

    queries: dict[str, str]
    qrels: Qrels  # full judgments (for nDCG)
    pool_qrels: Qrels  # judgments whose passage text is in the corpus
    texts: dict[str, str]
    candidates: dict[str, list[str]]  # qid -> pooled passage ids, first-stage order of ``runs[0]`` first

    @classmethod
    def read(cls, folder: str | Path, runs: Sequence[str] = ("runs/bm25.top100.trec",)) -> JudgedCollection:
        folder = Path(folder)
        full = folder / "qrels" / "test-full.tsv"
        qrels = read_qrels(full if full.exists() else folder / "qrels" / "test.tsv")
        texts = {d.id: d.full_text for d in read_corpus_jsonl(folder / "corpus.jsonl")}
        pool_qrels = {q: {d: g for d, g in docs.items() if d in texts} for q, docs in qrels.items()}
        queries = {q: t for q, t in read_queries_jsonl(folder / "queries.jsonl").items() if q in qrels}
        candidates: dict[str, list[str]] = {}
        for run_name in runs:
            for qid, docs in read_trec_run(folder / run_name).items():
                seen = candidates.setdefault(qid, [])
                seen += [d for d in trec_order(docs) if d in texts and d not in seen]
        return cls(queries, qrels, pool_qrels, texts, candidates)

    def qids(self) -> list[str]:
        return sorted(q for q in self.queries if q in self.candidates)

    def groups(self, qids: Sequence[str], max_negatives: int = 64) -> list[TrainingGroup]:
        """One group per (query, grade present): that grade's passages against those graded lower."""
        out = []
        for qid in qids:
            judged = self.pool_qrels.get(qid, {})
            unjudged = [d for d in self.candidates.get(qid, []) if d not in judged]
            for grade in sorted({g for g in judged.values() if g >= 1}, reverse=True):
                positives = [self.texts[d] for d, g in judged.items() if g == grade]
                negatives = [self.texts[d] for d, g in judged.items() if g < grade]
                if grade >= 2:
                    negatives += [self.texts[d] for d in unjudged]
                if positives and negatives:
                    out.append(TrainingGroup(self.queries[qid], positives, negatives[:max_negatives],
                                             f"judged-grade{grade}"))
        return out


@dataclass
class HeldOutScorer:
    """A dev evaluator for ``train_cross_encoder`` that remembers the scores of every evaluation."""

    collection: JudgedCollection
    qids: list[str]
    doc_ids: dict[str, list[str]]
    history: list[dict[str, np.ndarray]] = field(default_factory=list)

    def __call__(self, score_pairs: ScorePairs) -> float:
        scores = {q: score_pairs(self.collection.queries[q], [self.collection.texts[d] for d in self.doc_ids[q]])
                  for q in self.qids}
        self.history.append(scores)
        return ndcg_at_10(scores, self.doc_ids, self.collection.qrels)


def ndcg_at_10(scores: dict[str, np.ndarray], doc_ids: dict[str, list[str]], qrels: Qrels) -> float:
    """Mean nDCG@10 (trec_eval) of the rankings that ``scores`` give ``doc_ids``."""
    from rerankit.evaluation.metrics import evaluate

    run = {q: {d: float(s) for d, s in zip(doc_ids[q], sc)} for q, sc in scores.items()}
    return evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"]


@dataclass
class KFoldResult:
    best_step: int
    dev_by_step: dict[int, float]  # mean held-out nDCG@10 per evaluated step
    out_of_fold: dict[str, np.ndarray]  # qid -> scores of its candidates at best_step, from the fold that held it out
    doc_ids: dict[str, list[str]]
    folds: list[list[str]]


def kfold_finetune(collection: JudgedCollection, config: TrainConfig, work_dir: str | Path, folds: int = 5,
                   depth: int = 100, seed: int = 0, progress: bool = False) -> KFoldResult:
    """Train ``folds`` models, each without one fold of queries; pick the step count by held-out nDCG@10."""
    qids = collection.qids()
    random.Random(seed).shuffle(qids)
    fold_qids = [sorted(qids[i::folds]) for i in range(folds)]
    doc_ids = {q: collection.candidates[q][:depth] for q in qids}
    # no early stopping: every fold runs the same steps, evaluated at the same points
    run_config = replace(config, patience=10**9)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    per_fold: list[tuple[list[int], HeldOutScorer]] = []
    for i, held_out in enumerate(fold_qids):
        train_q = [q for q in qids if q not in set(held_out)]
        scorer = HeldOutScorer(collection, held_out, doc_ids)
        result = train_cross_encoder(collection.groups(train_q), Path(work_dir) / f"fold{i}", run_config, scorer,
                                     progress=progress)
        steps = [h["step"] for h in result.history]
        per_fold.append((steps, scorer))
        log.info("fold %d: %s", i, [(h["step"], round(h["dev"], 4)) for h in result.history])
    steps = per_fold[0][0]
    dev_by_step = {}
    for j, step in enumerate(steps):
        merged = {q: s for _, scorer in per_fold for q, s in scorer.history[j].items()}
        dev_by_step[step] = ndcg_at_10(merged, doc_ids, collection.qrels)
    best_step = max(dev_by_step, key=lambda s: (dev_by_step[s], -s))
    j = steps.index(best_step)
    out_of_fold = {q: s for _, scorer in per_fold for q, s in scorer.history[j].items()}
    return KFoldResult(best_step, dev_by_step, out_of_fold, doc_ids, fold_qids)


def out_of_fold_pairs(result: KFoldResult, collection: JudgedCollection, config: TrainConfig) -> DevPairs:
    """The held-out scores as fusion inputs: cross-encoder logits and bi-encoder cosines.

    The held-out scores are the training objective, ``logit + bi_encoder_prior * cosine``; the fusion
    (and the fused reranker at inference) reads the logit alone, so the prior is taken out again.
    """
    from rerankit.encoders import embed

    qids = sorted(result.out_of_fold)
    cosines = []
    for q in qids:
        vectors = embed([collection.queries[q], *[collection.texts[d] for d in result.doc_ids[q]]], config.bi_encoder)
        cosines.append(vectors[1:] @ vectors[0])
    logits = [result.out_of_fold[q] - config.bi_encoder_prior * cos for q, cos in zip(qids, cosines)]
    return DevPairs(qids, [result.doc_ids[q] for q in qids], logits, cosines)


def finetune_stage(recipe: dict, root: Path, start: Path, output: Path, base_config: TrainConfig,
                   progress: bool) -> tuple[Path, DevPairs | None, dict]:
    """The recipe's ``"finetune"`` stage: k-fold fine-tuning on the development collection's judgments
    (``collection``, ``runs``, ``folds``, ``depth``, ``train``: TrainConfig changes) from ``start``.

    Returns (model, out-of-fold pairs, summary); (``start``, None, summary) where no step count beat
    the start model on held-out queries.
    """
    import shutil
    import tempfile

    spec = recipe["finetune"]
    collection = JudgedCollection.read(root / spec.get("collection", recipe["dev"]["collection"]),
                                       spec.get("runs", ["runs/bm25.top100.trec"]))
    config = replace(base_config, base_model=str(start), **spec.get("train", {}))
    work = Path(tempfile.mkdtemp(prefix=".rerankit-kfold-", dir=output.resolve().parent))
    try:
        result = kfold_finetune(collection, config, work, folds=spec.get("folds", 5), depth=spec.get("depth", 100),
                                seed=recipe.get("seed", 0), progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"finetune_collection": spec.get("collection", recipe["dev"]["collection"]),
               "finetune_folds": len(result.folds), "finetune_best_step": result.best_step,
               "finetune_dev_by_step": {str(k): round(v, 4) for k, v in result.dev_by_step.items()},
               "finetune_config": asdict(config)}
    if result.best_step == 0:
        log.info("fine-tuning did not help on held-out queries; keeping the start model")
        return start, None, summary
    groups = collection.groups(collection.qids())
    final = train_cross_encoder(groups, output, replace(config, max_steps=result.best_step), None, progress=progress)
    return final.output, out_of_fold_pairs(result, collection, config), summary
