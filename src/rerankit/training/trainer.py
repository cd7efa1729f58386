"""Fine-tuning a cross-encoder with a listwise softmax loss over (1 positive + n negatives) groups.

bf16 autocast on CPU (and CUDA where present), a held-out dev evaluation with early stopping,
and the best checkpoint published atomically as a Hugging Face folder that ``load_reranker`` reads.

With ``bi_encoder_prior > 0`` the loss scores each pair as ``ce + prior * cosine`` where the cosine
comes from a frozen bi-encoder: the cross-encoder then learns what the bi-encoder misses, and the
two are fused at inference (see ``rerankers/fused.py``).

``train_cross_encoder``'s ``loss_fn`` replaces the loss (the experiments in ``experiments/`` add a
distillation term through it); the shipped recipes use ``group_loss``.
"""

from __future__ import annotations

import json
import logging
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

from ..errors import InvalidInputError
from ..io import atomic_write_json, publish_directory
from .data import TrainingGroup

log = logging.getLogger(__name__)

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
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    config = config or TrainConfig()
    usable = [g for g in groups if g.positives and g.negatives]
    if not usable:
        raise InvalidInputError("no training group has both a positive and a negative")
    if config.group_size < 2:
        raise InvalidInputError("group_size must be >= 2 (one positive and at least one negative)")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from ..encoders import quiet_hf_logging

    quiet_hf_logging()  # the new classification head is expected; no load report
    source = _resolve_base(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    # eager attention: on CPU its backward is faster than the fused SDPA kernel's for these short sequences
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1, dtype=torch.float32,  # fp32 master weights, even from a half-precision folder
        attn_implementation="eager" if device.type == "cpu" else "sdpa").to(device)
    prior = None
    if config.bi_encoder_prior:
        texts = [t for g in usable for t in (g.query, *g.positives, *g.negatives)]
        prior = FrozenCosines(config.bi_encoder, texts, config.prior_cache)

    steps_per_epoch = math.ceil(len(usable) / config.groups_per_batch)
    total_steps = config.max_steps or max(1, int(steps_per_epoch * config.epochs))
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    # The classification head starts from random weights: it may learn faster than the encoder.
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if n.startswith(("classifier", "score"))]
    body = [p for n, p in trainable if not n.startswith(("classifier", "score"))]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.learning_rate},
         {"params": head, "lr": config.head_learning_rate or config.learning_rate}],
        weight_decay=config.weight_decay,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * config.warmup_fraction), total_steps)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=config.bf16)

    def score_pairs(query: str, texts: Sequence[str]) -> np.ndarray:
        model.eval()
        out = []
        with torch.inference_mode(), torch.autocast(**autocast):
            for start in range(0, len(texts), 64):
                chunk = list(texts[start : start + 64])
                enc = tokenizer([query] * len(chunk), chunk, truncation="longest_first",
                                max_length=config.max_length, padding=True, return_tensors="pt").to(device)
                out.append(model(**enc).logits[:, 0].float().cpu().numpy())
        model.train()
        scores = np.concatenate(out) if out else np.zeros(0, np.float32)
        if prior is not None:
            scores = scores + config.bi_encoder_prior * prior_cosines(query, texts)
        return scores

    def prior_cosines(query: str, texts: Sequence[str]) -> np.ndarray:
        from ..encoders import embed

        if all(t in prior.row for t in (query, *texts)):
            return prior.cosines(query, texts)
        vectors = embed([query, *texts], config.bi_encoder)
        return vectors[1:] @ vectors[0]

    work = Path(tempfile.mkdtemp(prefix=".rerankit-train-", dir=Path(output).resolve().parent))
    best_dir = work / "best"
    history: list[dict] = []
    best_dev, best_step, bad_evals, step, pairs_seen = None, 0, 0, 0, 0
    started = time.monotonic()

    def checkpoint(dev_value: float | None) -> None:
        nonlocal best_dev, best_step, bad_evals
        history.append({"step": step, "pairs": pairs_seen, "dev": dev_value,
                        "minutes": round((time.monotonic() - started) / 60, 2)})
        log.info("step %d dev %s", step, dev_value)
        if dev_value is None or best_dev is None or dev_value > best_dev:
            best_dev, best_step, bad_evals = dev_value, step, 0
            staged = work / f"staged-{step}"
            model.save_pretrained(staged, safe_serialization=True)
            tokenizer.save_pretrained(staged)
            if best_dir.exists():
                shutil.rmtree(best_dir)
            staged.rename(best_dir)
        else:
            bad_evals += 1
        atomic_write_json(work / "history.json", history)

    model.train()
    if dev_evaluator is not None:
        checkpoint(dev_evaluator(score_pairs))
    bar = tqdm(total=total_steps, disable=not progress, desc="train", unit="step")
    stop = False
    while step < total_steps and not stop:
        order = list(range(len(usable)))
        rng.shuffle(order)
        for start in range(0, len(order), config.groups_per_batch):
            batch = [usable[i] for i in order[start : start + config.groups_per_batch]]
            group_texts = []
            for g in batch:
                negs = rng.sample(g.negatives, min(len(g.negatives), config.group_size - 1))
                while len(negs) < config.group_size - 1:
                    negs.append(rng.choice(g.negatives))
                group_texts.append([rng.choice(g.positives), *negs])
            queries = [g.query for g in batch]
            passages = [t for texts in group_texts for t in texts]
            enc = tokenizer([q for q, texts in zip(queries, group_texts) for _ in texts], passages,
                            truncation="longest_first", max_length=config.max_length, padding=True,
                            return_tensors="pt").to(device)
            with torch.autocast(**autocast):
                logits = model(**enc).logits.view(len(batch), config.group_size).float()
            cos = None
            if prior is not None:
                cos = torch.from_numpy(np.stack([prior.cosines(q, texts) for q, texts in zip(queries, group_texts)]
                                                )).float().to(device)
            loss = (loss_fn(logits, cos, queries, group_texts) if loss_fn is not None
                    else group_loss(logits, cos, config))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            pairs_seen += len(passages)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", best=best_dev)
            timed_out = config.max_minutes is not None and time.monotonic() - started > config.max_minutes * 60
            if step % config.eval_every == 0 or step >= total_steps or timed_out:
                checkpoint(dev_evaluator(score_pairs) if dev_evaluator else None)
                if dev_evaluator and bad_evals >= config.patience:
                    log.info("early stop at step %d (best %s at %d)", step, best_dev, best_step)
                    stop = True
            if step >= total_steps or timed_out or stop:
                stop = True
                break
    bar.close()
    meta = {"config": asdict(config), "best_dev": best_dev, "best_step": best_step, "steps": step,
            "pairs_seen": pairs_seen, "history": history}
    (best_dir / "training.json").write_text(json.dumps(meta, indent=2))
    out = publish_directory(best_dir, Path(output))
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, best_dev, best_step, step, pairs_seen, time.monotonic() - started, history)
