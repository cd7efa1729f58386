"""What rerankit hands sentence-transformers' ``CrossEncoderTrainer``: the listwise group loss (with the
frozen bi-encoder's cosine as a prior), the development evaluation, and the time limit.

Kept apart from ``trainer.py`` because importing it imports torch and sentence-transformers; it takes
what it calls (the loss of a group's logits, the dev evaluation, the prior's cosines) as functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sentence_transformers.base.evaluation import BaseEvaluator
from sentence_transformers.cross_encoder import CrossEncoder
from sentence_transformers.util import batch_to_device
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

DEV_METRIC = "dev"
log = logging.getLogger("rerankit.training")


class GroupRankingLoss(torch.nn.Module):
    """A sentence-transformers cross-encoder loss over rows of ``(query, positive, negative_1, ...)``.

    All pairs of a batch go through the model in one forward pass; the logits are viewed as
    ``[rows, group_size]`` (column 0 the positive) and handed, with the frozen bi-encoder's cosines of
    the same pairs (None without ``prior_cosines``), each row's query and texts, to
    ``loss_fn(logits, cosines, queries, texts)``.
    """

    def __init__(self, model: CrossEncoder, loss_fn: Callable, prior_cosines: Callable | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn
        self.prior_cosines = prior_cosines

    def forward(self, inputs: list[list[str]], labels=None, prompt: str | None = None, task: str | None = None):
        queries = list(inputs[0])
        texts = [list(row) for row in zip(*inputs[1:])]
        pairs = [(query, text) for query, row in zip(queries, texts) for text in row]
        features = batch_to_device(self.model.preprocess(pairs), self.model.device)
        logits = self.model(features)["scores"].view(len(queries), -1).float()
        cosines = None
        if self.prior_cosines is not None:
            cosines = torch.from_numpy(np.stack([self.prior_cosines(q, row) for q, row in zip(queries, texts)]))
            cosines = cosines.float().to(logits.device)
        return self.loss_fn(logits, cosines, queries, texts)


class DevEvaluation(BaseEvaluator):
    """Runs a rerankit dev evaluation (a function of ``score_pairs(query, texts)``) on the model being
    trained; the trainer reads its value as ``eval_dev`` (and the minutes since training started as
    ``eval_minutes``). Scores in bf16 autocast when the run trains in
    it, plus the prior's cosines when there is one, so that it measures what the loss optimises."""

    def __init__(self, evaluate: Callable, bf16: bool, prior_weight: float = 0.0,
                 prior_cosines: Callable | None = None) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.bf16 = bf16
        self.prior_weight = prior_weight
        self.prior_cosines = prior_cosines
        self.primary_metric = DEV_METRIC
        self.started = time.monotonic()  # reset by the trainer when training starts

    def __call__(self, model: CrossEncoder, output_path: str | None = None, epoch: float = -1,
                 steps: int = -1) -> dict[str, float]:
        was_training = model.training
        model.eval()
        autocast = {"device_type": model.device.type, "dtype": torch.bfloat16, "enabled": self.bf16}

        def score_pairs(query: str, texts: Sequence[str]) -> np.ndarray:
            out = []
            with torch.inference_mode(), torch.autocast(**autocast):
                for start in range(0, len(texts), 64):
                    chunk = [(query, text) for text in texts[start: start + 64]]
                    features = batch_to_device(model.preprocess(chunk), model.device)
                    out.append(model(features)["scores"][:, 0].float().cpu().numpy())
            scores = np.concatenate(out) if out else np.zeros(0, np.float32)
            if self.prior_cosines is not None:
                scores = scores + self.prior_weight * self.prior_cosines(query, texts)
            return scores

        try:
            value = float(self.evaluate(score_pairs))
            return {DEV_METRIC: value, "minutes": round((time.monotonic() - self.started) / 60, 2)}
        finally:
            model.train(was_training)


class StopAfter(TrainerCallback):
    """Stops training once ``minutes`` have passed, and evaluates on the step training stops at (the
    trainer by itself evaluates only every ``eval_steps``)."""

    def __init__(self, minutes: float | None, evaluate: bool) -> None:
        self.seconds = None if minutes is None else minutes * 60
        self.evaluate = evaluate
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            control.should_training_stop = True
        if (control.should_training_stop or state.global_step >= state.max_steps) and self.evaluate:
            control.should_evaluate = True
        return control


class ProgressOnStderr(ProgressCallback):
    """transformers' progress bar, with its log lines (loss, learning rate, dev value) on the
    ``rerankit.training`` logger: transformers prints them to stdout, where ``rerankit train`` writes its
    summary."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            log.info("%s", {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items()
                            if k != "total_flos"})


def log_off_stdout(trainer, progress: bool) -> None:
    """The trainer's printing callbacks replaced: a progress bar on stderr (with ``progress``), log lines
    on the logger."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(ProgressOnStderr())
