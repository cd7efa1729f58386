"""``rerankit train``: fine-tune a cross-encoder from a jsonl of groups, or reproduce a recipe."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInputError
from .app import app


@app.command()
def train(
    data: Optional[Path] = typer.Argument(None, help="jsonl of {query, positive(s), negatives?} groups."),
    out: Path = typer.Option(..., "--out", help="Output folder (Hugging Face format, loadable by load_reranker)."),
    recipe: Optional[Path] = typer.Option(None, help="Reproduce a recipe file instead (e.g. recipes/default.json)."),
    data_root: Optional[Path] = typer.Option(None, help="With --recipe: the judged-data folder."),
    base: str = typer.Option("all-MiniLM-L6-v2", help="Start weights: any Hugging Face encoder name or folder."),
    epochs: float = typer.Option(1.0, min=0.01),
    lr: float = typer.Option(5e-5, min=0.0),
    max_length: int = typer.Option(128, min=16),
    group_size: int = typer.Option(8, min=2, help="1 positive + (group_size - 1) negatives per query."),
    batch_groups: int = typer.Option(4, min=1, help="Query groups per optimizer step."),
    mine_negatives: int = typer.Option(7, min=0, help="BM25 hard negatives mined per query (0: use only the file's)."),
    mine_corpus: Optional[Path] = typer.Option(None, help="Corpus to mine negatives from (default: the file's passages)."),
    dev_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Held-out share of groups for early stopping."),
    eval_every: int = typer.Option(100, min=1),
    patience: int = typer.Option(3, min=1),
    max_minutes: Optional[float] = typer.Option(None, min=0.0),
    seed: int = typer.Option(0),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Fine-tune a cross-encoder (bf16 autocast; listwise loss; early stopping on a dev split)."""
    from ..training.data import mine_bm25_negatives, read_training_jsonl, split_dev
    from ..training.trainer import TrainConfig, group_mrr_evaluator, train_cross_encoder

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    if recipe is not None:
        from ..training.recipe import run_recipe

        summary = run_recipe(recipe, out, data_root, progress=not quiet)
        typer.echo(json.dumps(summary, indent=2))
        return
    if data is None:
        raise InvalidInputError("give a training jsonl file, or --recipe FILE")
    groups = read_training_jsonl(data)
    if mine_negatives:
        corpus = None
        if mine_corpus is not None:
            from ..retrieval.sources import load_passages

            corpus = [d.full_text for d in load_passages(mine_corpus)]
        mine_bm25_negatives(groups, corpus, per_query=mine_negatives, seed=seed)
    train_groups, dev_groups = split_dev(groups, dev_fraction, seed)
    config = TrainConfig(base_model=base, max_length=max_length, group_size=group_size, groups_per_batch=batch_groups,
                         learning_rate=lr, epochs=epochs, max_minutes=max_minutes, eval_every=eval_every,
                         patience=patience, seed=seed)
    result = train_cross_encoder(train_groups, out, config, group_mrr_evaluator(dev_groups) if dev_groups else None,
                                 progress=not quiet)
    typer.echo(json.dumps({"output": str(result.output), "steps": result.steps, "pairs_seen": result.pairs_seen,
                           "best_step": result.best_step, "dev_mrr": result.best_dev,
                           "minutes": round(result.seconds / 60, 2)}, indent=2))
