"""Experiment, not part of the package: distilling a large bi-encoder's embedding space into a small
one (Reimers & Gurevych, 2020). A recipe's ``"bi_encoder_distill"`` stage (``run_experiment.py``,
``distill-bi-encoder.json``); tried and not shipped (the README's "A distilled bi-encoder").

The student (all-MiniLM-L6-v2 by default) learns to map each training text onto the teacher's
embedding of it (all-mpnet-base-v2 by default) through a linear projection: the loss is the squared
distance between ``W @ student(text)`` and ``teacher(text)``. The projection starts at the least-squares
fit of the untrained student's embeddings, and the student's word-embedding matrix stays fixed (fewer
parameters to fit on a CPU, and the trained model can be stored without it, see
``rerankit.shared_tensors``). No judgment is read: any texts of the target domain serve, e.g.
unlabelled queries and passages.

The result is a sentence-transformers folder (Transformer, mean Pooling, Dense, Normalize): its
cosines are those of the projected space. ``bi_encoder_stage`` runs it for a recipe (texts, teacher
embeddings, dev measure on a held-out half of the dev queries) and ``install_bi_encoder`` stores it
inside the model folder, where the fused reranker finds it (``rerankit.json``'s ``"bi_encoder"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl
from rerankit.errors import InvalidInputError
from rerankit.io import atomic_write_json, publish_directory
from rerankit.training.recipe import TrecDevSet

log = logging.getLogger(__name__)

# a dev measure of an embedding function: texts -> L2-normalized rows
EmbedFunction = Callable[[Sequence[str]], np.ndarray]
BiEncoderEvaluator = Callable[[EmbedFunction], float]


@dataclass
class BiEncoderDistillConfig:
    """Everything that decides a distillation run; stored beside the model as ``distillation.json``."""

    student: str = "all-MiniLM-L6-v2"
    teacher: str = "all-mpnet-base-v2"
    max_length: int = 128
    batch_size: int = 64
    learning_rate: float = 5e-5
    projection_learning_rate: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_minutes: float = 35.0
    max_steps: int | None = None
    eval_every: int = 300
    seed: int = 0
    threads: int | None = None
    bf16: bool = True


@dataclass
class BiEncoderDistillResult:
    output: Path
    best_dev: float | None
    best_step: int
    steps: int
    history: list[dict]


def distill_bi_encoder(texts: Sequence[str], teacher_vectors: np.ndarray, output: str | Path,
                       config: BiEncoderDistillConfig | None = None,
                       evaluate: BiEncoderEvaluator | None = None) -> BiEncoderDistillResult:
    """Train the student towards ``teacher_vectors`` (one row per text), keep the best dev checkpoint.

    ``evaluate`` (higher is better) is called at step 0, every ``eval_every`` steps and at the end;
    without it the last step is kept. The model is published atomically to ``output``.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import quiet_hf_logging, resolve_bi_encoder, sentence_transformer_modules

    models = sentence_transformer_modules()

    config = config or BiEncoderDistillConfig()
    texts = list(texts)
    teacher = np.asarray(teacher_vectors, dtype=np.float32)
    if not texts or teacher.ndim != 2 or teacher.shape[0] != len(texts):
        raise InvalidInputError(f"need one teacher vector per text: {len(texts)} texts, teacher shape {teacher.shape}")
    if config.batch_size < 2 or config.eval_every < 1:
        raise InvalidInputError("batch_size must be >= 2 and eval_every >= 1")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    quiet_hf_logging()
    student = SentenceTransformer(resolve_bi_encoder(config.student), device="cpu")
    transformer = student[0]
    transformer.max_seq_length = config.max_length
    encoder, tokenizer = transformer.auto_model, transformer.tokenizer
    encoder.get_input_embeddings().weight.requires_grad_(False)
    width = encoder.config.hidden_size
    projection = torch.nn.Linear(width, teacher.shape[1], bias=False)
    autocast = dict(device_type="cpu", dtype=torch.bfloat16, enabled=config.bf16)

    def pooled(batch: Sequence[str]):
        enc = tokenizer(list(batch), padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
        with torch.autocast(**autocast):
            hidden = encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        mean = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(mean, dim=-1)

    def embed(batch_texts: Sequence[str]) -> np.ndarray:
        """Projected, normalized embeddings (what the saved model returns), length-sorted batches."""
        encoder.eval()
        order = sorted(range(len(batch_texts)), key=lambda i: len(batch_texts[i]))
        out = np.zeros((len(batch_texts), teacher.shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for k in range(0, len(order), 128):
                idx = order[k:k + 128]
                vectors = torch.nn.functional.normalize(projection(pooled([batch_texts[i] for i in idx])), dim=-1)
                out[idx] = vectors.numpy()
        encoder.train()
        return out

    sample = rng.sample(range(len(texts)), min(len(texts), 3000))
    with torch.inference_mode():  # the projection starts at the least-squares map of the untrained student
        start_rows = torch.cat([pooled([texts[i] for i in sample[k:k + 128]]) for k in range(0, len(sample), 128)])
    fit = torch.linalg.lstsq(start_rows, torch.from_numpy(teacher[sample])).solution
    projection.weight.data = fit.T.contiguous()

    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params, "lr": config.learning_rate},
                                   {"params": projection.parameters(), "lr": config.projection_learning_rate}],
                                  weight_decay=config.weight_decay)
    base_rates = [config.learning_rate, config.projection_learning_rate]
    target = torch.from_numpy(teacher)
    Path(output).resolve().parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".rerankit-distill-", dir=Path(output).resolve().parent))
    best_dir = work / "best"
    history: list[dict] = []
    best_dev: float | None = None
    best_step = 0
    started = time.monotonic()

    def save(folder: Path) -> None:
        staged = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staged, ignore_errors=True)
        dense = models.Dense(width, teacher.shape[1], bias=False, activation_function=torch.nn.Identity())
        dense.linear.weight.data = projection.weight.data.clone()
        model = SentenceTransformer(modules=[transformer, student[1], dense, models.Normalize()], device="cpu")
        model.save(str(staged))
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)

    def checkpoint(step: int) -> None:
        nonlocal best_dev, best_step
        value = evaluate(embed) if evaluate is not None else None
        history.append({"step": step, "dev": value, "minutes": round((time.monotonic() - started) / 60, 2)})
        log.info("distillation step %d: dev %s", step, value)
        if value is None or best_dev is None or value > best_dev:
            best_dev, best_step = value, step
            save(best_dir)
        atomic_write_json(work / "history.json", history)

    step = 0
    try:
        checkpoint(0)
        done = False
        while not done:
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + rng.random() * 40)
            batches = [order[k:k + config.batch_size] for k in range(0, len(order), config.batch_size)]
            rng.shuffle(batches)
            for idx in batches:
                loss = ((projection(pooled([texts[i] for i in idx])) - target[idx]) ** 2).sum(-1).mean()
                warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
                for group, rate in zip(optimizer.param_groups, base_rates):
                    group["lr"] = rate * warm
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                out_of_time = config.max_minutes is not None and time.monotonic() - started > config.max_minutes * 60
                done = out_of_time or (config.max_steps is not None and step >= config.max_steps)
                if done or step % config.eval_every == 0:
                    checkpoint(step)
                if done:
                    break
        atomic_write_json(best_dir / "distillation.json",
                          {"config": asdict(config), "best_dev": best_dev, "best_step": best_step, "steps": step,
                           "texts": len(texts), "history": history})
        out = publish_directory(best_dir, Path(output))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BiEncoderDistillResult(out, best_dev, best_step, step, history)



BI_ENCODER_FOLDER = "bi_encoder"  # a distilled bi-encoder's place inside the model folder
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def query_half(qid: str) -> int:
    """0 or 1: a fixed split of a collection's queries (SHA-1 of the id, so it does not depend on order)."""
    return int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 2


def dev_half(dev: TrecDevSet, half: int) -> TrecDevSet:
    """``dev`` keeping only the queries of ``half`` (changed in place and returned)."""
    keep = [i for i, q in enumerate(dev.qids) if query_half(q) == half]
    dev.qids, dev.queries, dev.doc_ids, dev.texts = (
        [values[i] for i in keep] for values in (dev.qids, dev.queries, dev.doc_ids, dev.texts))
    return dev


def distillation_texts(spec: dict, data_root: Path, held_out: TrecDevSet | None) -> list[str]:
    """The bi-encoder stage's texts: its ``queries`` files, then its ``corpora``, without the held-out
    dev queries' candidates and judged passages (by id) and without repeats."""
    banned: set[str] = set()
    if held_out is not None:
        banned = {d for ids in held_out.doc_ids for d in ids}
        banned |= {d for q in held_out.qids for d in held_out.qrels.get(q, {})}
    texts = [t.strip() for path in spec.get("queries", []) for t in read_queries_jsonl(data_root / path).values()]
    texts += [d.full_text for path in spec.get("corpora", []) for d in read_corpus_jsonl(data_root / path)
              if d.id not in banned]
    return list(dict.fromkeys(t for t in texts if t))


def bi_encoder_stage(spec: dict, root: Path, dev_cfg: dict, stage_dir: Path) -> tuple[dict, TrecDevSet | None]:
    """Distil the teacher into a bi-encoder at ``stage_dir`` (reused where a finished one is there).

    Returns the stage summary and the held-out dev set (the queries the fusion is then fitted on).
    """
    from rerankit.encoders import embed

    config = BiEncoderDistillConfig(**spec.get("train", {}))
    half = spec.get("held_out_half")
    depth = dev_cfg.get("fusion_depth", 100)
    held_out = None if half is None else dev_half(TrecDevSet(root / dev_cfg["collection"], depth=depth), half)
    dev = held_out or TrecDevSet(root / dev_cfg["collection"], depth=depth)
    if (stage_dir / "distillation.json").is_file():
        log.info("reusing the bi-encoder already distilled at %s (delete it to train again)", stage_dir)
        done = json.loads((stage_dir / "distillation.json").read_text())
        return {**{k: done[k] for k in ("texts", "steps", "best_step", "best_dev", "history", "config")},
                "reused": str(stage_dir), "dev_queries": len(dev.qids), "held_out_half": half}, held_out
    texts = distillation_texts(spec, root, held_out)
    log.info("distillation texts: %d; embedding them with the teacher %s", len(texts), config.teacher)
    teacher = embed(texts, config.teacher)

    def evaluate(embed_texts) -> float:
        def cosines(query: str, candidates) -> np.ndarray:
            vectors = embed_texts([query, *candidates])
            return vectors[1:] @ vectors[0]

        return dev.evaluate(cosines)

    result = distill_bi_encoder(texts, teacher, stage_dir, config, evaluate)
    return {"texts": len(texts), "steps": result.steps, "best_step": result.best_step, "best_dev": result.best_dev,
            "history": result.history, "config": asdict(config), "dev_queries": len(dev.qids),
            "held_out_half": half}, held_out


def install_bi_encoder(stage_dir: Path, model_dir: Path, student: str) -> Path:
    """Copy the distilled bi-encoder into the model folder in fp16, without the student's (frozen) word embeddings."""
    from rerankit.shared_tensors import strip_shared
    from rerankit.training.recipe import store_half_precision

    folder = model_dir / BI_ENCODER_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(stage_dir, folder)
    for weights_folder in (folder, *(p.parent for p in folder.glob("*_Dense/model.safetensors"))):
        store_half_precision(weights_folder)
    strip_shared(folder, {WORD_EMBEDDINGS: (student, WORD_EMBEDDINGS)})
    return folder


def share_word_embeddings(model_dir: Path, source: str) -> float:
    """Give the cross-encoder ``source``'s word embeddings and store it without them; returns the largest change.

    For a cross-encoder whose word embeddings barely moved from its start model's while training
    (the recipe's ``"storage": {"share_word_embeddings": source}``).
    """
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from rerankit.io import atomic_write_bytes
    from rerankit.shared_tensors import source_tensor, strip_shared

    path = model_dir / "model.safetensors"
    weights = load_file(str(path))
    name = next((k for k in weights if k.endswith(WORD_EMBEDDINGS)), None)
    if name is None:
        raise InvalidInputError(f"{path} has no {WORD_EMBEDDINGS}")
    original = source_tensor(model_dir, source, WORD_EMBEDDINGS)
    change = float((weights[name].float() - original.float()).abs().max())
    weights[name] = original.to(weights[name].dtype)
    atomic_write_bytes(path, save_bytes({k: v.contiguous() for k, v in weights.items()}, metadata={"format": "pt"}))
    strip_shared(model_dir, {name: (source, WORD_EMBEDDINGS)})
    return change
