"""Fine-tuning a cross-encoder with a listwise softmax loss over (1 positive + n negatives) groups, on
sentence-transformers' ``CrossEncoderTrainer`` (``pip install 'rerankit[train]'``).

This module sets the run up: the training rows, the optimizer (a faster learning rate for the new
classification head), the trainer's arguments (bf16 autocast on CPU and CUDA, evaluation every
``eval_every`` steps, early stopping, the best checkpoint kept), and publishes the best weights
atomically as a Hugging Face folder that ``load_reranker`` reads. The loss, the dev evaluation and the
time limit the trainer calls back into are in ``trainer_hooks.py``.

With ``bi_encoder_prior > 0`` the loss scores each pair as ``ce + prior * cosine`` where the cosine
comes from a frozen bi-encoder: the cross-encoder then learns what the bi-encoder misses, and the
two are fused at inference (see ``rerankers/fused.py``).

``train_cross_encoder``'s ``loss_fn`` replaces the loss (the experiments in ``experiments/`` add a
distillation term through it); the shipped recipes use ``group_loss``.
"""

from __future__ import annotations

import functools
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InvalidInputError
from ..io import publish_directory
from .data import TrainingGroup

ScorePairs = Callable[[str, Sequence[str]], np.ndarray]
DevEvaluator = Callable[[ScorePairs], float]
# (logits [groups, group_size], prior cosines or None, each group's query, each group's texts) -> a torch scalar
GroupLoss = Callable[[Any, Any, list[str], list[list[str]]], Any]


@dataclass
class TrainConfig:
    """Everything that decides a training run; stored beside the model as ``training.json``."""

    base_model: str = "all-MiniLM-L6-v2"
    max_length: int = 128
    group_size: int = 8
    groups_per_batch: int = 4
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int | None = None  # overrides ``epochs`` when set
    max_minutes: float | None = None
    eval_every: int = 200
    patience: int = 4
    bi_encoder_prior: float = 0.0
    bi_encoder: str = "all-MiniLM-L6-v2"
    prior_cache: str | None = None
    seed: int = 0
    threads: int | None = None
    bf16: bool = True
    freeze_embeddings: bool = False  # keep the word-embedding matrix fixed (faster steps, fewer parameters to fit)
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    output: Path
    best_dev: float | None
    best_step: int
    steps: int
    pairs_seen: int
    seconds: float
    history: list[dict]


def group_mrr_evaluator(dev: Sequence[TrainingGroup]) -> DevEvaluator:
    """Mean reciprocal rank of the first positive among each dev group's passages."""

    def evaluate(score_pairs: ScorePairs) -> float:
        total = 0.0
        for g in dev:
            texts = [*g.positives, *g.negatives]
            scores = score_pairs(g.query, texts)
            order = np.argsort(-scores, kind="stable")
            first = next(r for r, i in enumerate(order) if i < len(g.positives))
            total += 1.0 / (first + 1)
        return total / max(1, len(dev))

    return evaluate


def fused_scores(logits, cosines, config: TrainConfig):
    """The score the loss reads: ``logits + bi_encoder_prior * cosines`` when a prior is set, else the logits."""
    return logits if cosines is None or not config.bi_encoder_prior else logits + config.bi_encoder_prior * cosines


def group_loss(logits, cosines, config: TrainConfig):
    """Listwise loss of ``[groups, group_size]`` logits whose column 0 is the positive: cross-entropy of
    the positive over each group, on ``logits + bi_encoder_prior * cosines`` when a prior is set."""
    import torch

    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return torch.nn.functional.cross_entropy(fused_scores(logits, cosines, config), target)


def _resolve_base(name: str) -> str:
    from ..encoders import resolve_bi_encoder

    return resolve_bi_encoder(name)


class FrozenCosines:
    """Frozen bi-encoder cosines for every (query, passage) text, computed once (cached in ``cache_dir``)."""

    def __init__(self, model_name: str, texts: Sequence[str], cache_dir: str | None = None) -> None:
        import hashlib

        from ..encoders import embed
        from ..io import atomic_write_bytes

        unique = list(dict.fromkeys(texts))
        self.row = {t: i for i, t in enumerate(unique)}
        digest = hashlib.sha256("\x00".join([model_name, *unique]).encode()).hexdigest()[:20]
        cache = Path(cache_dir) / f"prior-{digest}.npy" if cache_dir else None
        if cache is not None and cache.is_file():
            self.vectors = np.load(cache)
            return
        self.vectors = embed(unique, model_name, batch_size=128) if unique else np.zeros((0, 384), np.float32)
        if cache is not None:
            import io

            buffer = io.BytesIO()
            np.save(buffer, self.vectors)
            atomic_write_bytes(cache, buffer.getvalue())

    def cosines(self, query: str, texts: Sequence[str]) -> np.ndarray:
        q = self.vectors[self.row[query]]
        return self.vectors[[self.row[t] for t in texts]] @ q


def train_cross_encoder(
    groups: Sequence[TrainingGroup],
    output: str | Path,
    config: TrainConfig | None = None,
    dev_evaluator: DevEvaluator | None = None,
    progress: bool = True,
    loss_fn: GroupLoss | None = None,
) -> TrainResult:
    """Train, evaluate every ``eval_every`` steps, keep the best checkpoint, publish it to ``output``.

    ``loss_fn(logits, cosines, queries, texts)`` replaces ``group_loss``: ``logits`` are
    ``[groups, group_size]`` (column 0 the positive), ``cosines`` the frozen bi-encoder's of the same
    pairs (None without a ``bi_encoder_prior``), ``queries`` and ``texts`` each group's query and texts.

    On CPU, denormal floats are flushed to zero while training (Adam's tiny second moments as
    denormals slow every update step); the process-wide setting is switched off again afterwards.
    """
    import torch

    flush = not torch.cuda.is_available() and torch.set_flush_denormal(True)
    try:
        return _train(groups, output, config, dev_evaluator, progress, loss_fn)
    finally:
        if flush:
            torch.set_flush_denormal(False)


def _train(groups: Sequence[TrainingGroup], output: str | Path, config: TrainConfig | None,
           dev_evaluator: DevEvaluator | None, progress: bool, loss_fn: GroupLoss | None) -> TrainResult:
    import torch

    try:
        import accelerate  # noqa: F401  (the trainer needs it; checked here for a clear error)
        from datasets import Dataset
        from sentence_transformers.cross_encoder import CrossEncoder
    except ImportError as exc:
        raise BackendUnavailableError(f"training needs datasets and accelerate: pip install 'rerankit[train]' ({exc})"
                                      ) from exc
    from .trainer_hooks import DevEvaluation, GroupRankingLoss

    config = config or TrainConfig()
    usable = [g for g in groups if g.positives and g.negatives]
    if not usable:
        raise InvalidInputError("no training group has both a positive and a negative")
    if config.group_size < 2:
        raise InvalidInputError("group_size must be >= 2 (one positive and at least one negative)")
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    use_cpu = not torch.cuda.is_available()
    from ..encoders import quiet_hf_logging

    quiet_hf_logging()  # the new classification head is expected; no load report
    # eager attention: on CPU its backward is faster than the fused SDPA kernel's for these short sequences;
    # fp32 master weights, even from a half-precision folder
    model = CrossEncoder(_resolve_base(config.base_model), num_labels=1, max_length=config.max_length,
                         device="cpu" if use_cpu else None,
                         model_kwargs={"dtype": torch.float32, "attn_implementation": "eager" if use_cpu else "sdpa"})
    prior = None
    if config.bi_encoder_prior:
        texts = [t for g in usable for t in (g.query, *g.positives, *g.negatives)]
        prior = FrozenCosines(config.bi_encoder, texts, config.prior_cache)

    steps_per_epoch = math.ceil(len(usable) / config.groups_per_batch)
    total_steps = config.max_steps or max(1, int(steps_per_epoch * config.epochs))
    passes = math.ceil(total_steps * config.groups_per_batch / len(usable))
    rows = Dataset.from_dict(group_rows(usable, config.group_size, passes, random.Random(config.seed)))
    if config.freeze_embeddings:
        model[0].model.get_input_embeddings().weight.requires_grad_(False)
    # The classification head starts from random weights: it may learn faster than the encoder.
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if _in_head(n)]
    body = [p for n, p in trainable if not _in_head(n)]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.learning_rate},
         {"params": head, "lr": config.head_learning_rate or config.learning_rate}],
        weight_decay=config.weight_decay,
    )
    prior_cosines = None if prior is None else _prior_cosines(prior, config.bi_encoder)
    evaluator = None if dev_evaluator is None else DevEvaluation(dev_evaluator, config.bf16, config.bi_encoder_prior,
                                                                 prior_cosines)
    loss = GroupRankingLoss(model, loss_fn or functools.partial(_plain_group_loss, config=config),
                            None if prior is None else prior.cosines)
    work = Path(tempfile.mkdtemp(prefix=".rerankit-train-", dir=Path(output).resolve().parent))
    try:  # the checkpoints and the start weights go, whether training ends or fails
        trainer = _build_trainer(model, rows, loss, optimizer, evaluator, config, total_steps, work, progress)
        started = time.monotonic()
        out, meta = _run_and_publish(trainer, model, evaluator, config, work, Path(output), started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, meta["best_dev"], meta["best_step"], meta["steps"], meta["pairs_seen"],
                       time.monotonic() - started, meta["history"])


def _build_trainer(model, rows, loss, optimizer, evaluator, config: TrainConfig, total_steps: int, work: Path,
                   progress: bool):
    """The ``CrossEncoderTrainer`` of a run: checkpoints in ``work``, evaluation every ``eval_every`` steps
    keeping the best (with early stopping) where there is an ``evaluator``, log lines off stdout."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import EarlyStoppingCallback

    from .trainer_hooks import DEV_METRIC, StopAfter, log_off_stdout

    evaluating = evaluator is not None
    args = CrossEncoderTrainingArguments(
        output_dir=str(work / "checkpoints"), per_device_train_batch_size=config.groups_per_batch,
        max_steps=total_steps, learning_rate=config.learning_rate, lr_scheduler_type="linear",
        warmup_steps=config.warmup_fraction, weight_decay=config.weight_decay, max_grad_norm=1.0,
        bf16=config.bf16, use_cpu=not torch.cuda.is_available(), seed=config.seed, data_seed=config.seed,
        eval_strategy="steps" if evaluating else "no", eval_steps=config.eval_every, eval_on_start=evaluating,
        save_strategy="best" if evaluating else "no", metric_for_best_model=f"eval_{DEV_METRIC}" if evaluating
        else None,
        greater_is_better=True, load_best_model_at_end=evaluating, save_only_model=True, save_total_limit=1,
        logging_steps=max(1, config.eval_every // 3), report_to="none", disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    callbacks = [StopAfter(config.max_minutes, evaluate=evaluating)]
    if evaluating:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=rows, loss=loss, evaluator=evaluator,
                                  callbacks=callbacks, optimizers=(optimizer, None))
    log_off_stdout(trainer, progress)
    return trainer


def _run_and_publish(trainer, model, evaluator, config: TrainConfig, work: Path, output: Path,
                     started: float) -> tuple[Path, dict]:
    """Train, then publish the best weights (the start weights where no checkpoint beat them) with
    ``training.json``; returns the published folder and that metadata."""
    from .trainer_hooks import DEV_METRIC

    start_dir = work / "start"
    if evaluator is not None:  # the start weights compete with the checkpoints (the trainer's own best starts later)
        _save_hf_folder(model, start_dir)
        evaluator.started = started
    trainer.train()
    history = [{"step": entry["step"], "pairs": entry["step"] * config.groups_per_batch * config.group_size,
                "dev": entry[f"eval_{DEV_METRIC}"], "minutes": entry.get("eval_minutes")}
               for entry in trainer.state.log_history if f"eval_{DEV_METRIC}" in entry]
    steps = trainer.state.global_step
    best_dev, best_step = trainer.state.best_metric, trainer.state.best_global_step or steps
    best_dir = work / "best"
    if history and history[0]["step"] == 0 and (best_dev is None or history[0]["dev"] >= best_dev):
        best_dev, best_step = history[0]["dev"], 0
        start_dir.rename(best_dir)
    else:
        _save_hf_folder(model, best_dir)  # the best checkpoint's weights: the trainer loaded them at the end
    meta = {"config": asdict(config), "trainer": "sentence-transformers CrossEncoderTrainer", "best_dev": best_dev,
            "best_step": best_step, "steps": steps, "pairs_seen": steps * config.groups_per_batch * config.group_size,
            "history": history}
    (best_dir / "training.json").write_text(json.dumps(meta, indent=2))
    return publish_directory(best_dir, output), meta



def group_rows(groups: Sequence[TrainingGroup], group_size: int, passes: int, rng: random.Random) -> dict[str, list]:
    """The trainer's dataset: ``passes`` rows per group of ``query, positive, negative_1 .. negative_{n-1}``,
    each row with a positive and ``group_size - 1`` negatives drawn afresh (repeated when a group has fewer)."""
    columns: dict[str, list] = {"query": [], "positive": [], **{f"negative_{i}": [] for i in range(1, group_size)}}
    for _ in range(passes):
        for g in groups:
            negatives = rng.sample(g.negatives, min(len(g.negatives), group_size - 1))
            while len(negatives) < group_size - 1:
                negatives.append(rng.choice(g.negatives))
            columns["query"].append(g.query)
            columns["positive"].append(rng.choice(g.positives))
            for i, text in enumerate(negatives, 1):
                columns[f"negative_{i}"].append(text)
    return columns


def _in_head(parameter: str) -> bool:
    """Whether a parameter belongs to the classification head (``classifier`` in BERT-style models,
    ``score`` in others), which starts from random weights."""
    return any(f".{part}." in f".{parameter}" for part in ("classifier", "score"))


def _plain_group_loss(logits, cosines, queries, texts, config: TrainConfig):
    return group_loss(logits, cosines, config)


def _prior_cosines(prior: FrozenCosines, bi_encoder: str) -> Callable[[str, Sequence[str]], np.ndarray]:
    """The frozen bi-encoder's cosines of a query's texts: from the cache, or embedded when a text is new."""

    def cosines(query: str, texts: Sequence[str]) -> np.ndarray:
        from ..encoders import embed

        if all(t in prior.row for t in (query, *texts)):
            return prior.cosines(query, texts)
        vectors = embed([query, *texts], bi_encoder)
        return vectors[1:] @ vectors[0]

    return cosines


def _save_hf_folder(model, folder: Path) -> None:
    """The cross-encoder as a plain Hugging Face folder (config, safetensors, tokenizer): what
    ``load_reranker`` reads."""
    model[0].model.save_pretrained(folder, safe_serialization=True)
    model.tokenizer.save_pretrained(folder)
