"""The recipe that reproduces the shipped default model with one command.

A recipe is a JSON file (see ``recipes/default.json``): which training sources to read from the
data folder, how many negatives, the ``TrainConfig``, and the development collection used for
early stopping and for fitting the fusion weights. The development collection is never one that
is reported as an evaluation (TREC DL21 for the default; DL19 is kept for reporting).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl, read_trec_run
from ..errors import DataFormatError, InvalidInputError
from ..evaluation.metrics import trec_order
from ..io import atomic_write_json
from .data import TrainingGroup, write_training_jsonl
from .fusion import DevPairs, fit_fusion, ndcg10
from .sources import scifact_groups, squad_groups, wikiqa_groups
from .trainer import ScorePairs, TrainConfig, train_cross_encoder

log = logging.getLogger(__name__)


class TrecDevSet:
    """A judged collection with a first-stage run: the dev queries, their top-``depth`` candidates."""

    def __init__(self, folder: str | Path, depth: int = 30, run: str = "runs/bm25.top100.trec") -> None:
        folder = Path(folder)
        qrels_file = folder / "qrels" / "test-full.tsv"
        self.qrels = read_qrels(qrels_file if qrels_file.exists() else folder / "qrels" / "test.tsv")
        queries = read_queries_jsonl(folder / "queries.jsonl")
        corpus = {d.id: d.full_text for d in read_corpus_jsonl(folder / "corpus.jsonl")}
        first_stage = read_trec_run(folder / run)
        self.qids = [q for q in first_stage if q in self.qrels and q in queries]
        self.queries = [queries[q] for q in self.qids]
        self.doc_ids = [[d for d in trec_order(first_stage[q])[:depth] if d in corpus] for q in self.qids]
        self.texts = [[corpus[d] for d in ids] for ids in self.doc_ids]

    def evaluate(self, score_pairs: ScorePairs) -> float:
        """nDCG@10 after reranking the candidates with ``score_pairs``."""
        scores = [score_pairs(q, texts) for q, texts in zip(self.queries, self.texts)]
        pairs = DevPairs(self.qids, self.doc_ids, scores, [np.zeros_like(s) for s in scores])
        return ndcg10(pairs, scores, self.qrels)


def build_groups(recipe: dict, data_root: Path) -> list[TrainingGroup]:
    """Every training group the recipe's ``sources`` name, read from ``data_root``."""
    sources, negatives, seed = recipe["sources"], recipe.get("negatives", 7), recipe.get("seed", 0)
    groups: list[TrainingGroup] = []
    if "squad" in sources:
        groups += squad_groups(data_root / "train-squad" / sources["squad"].get("version", "v1.1-dev"),
                               sources["squad"].get("max_queries"), negatives, seed)
    if "wikiqa" in sources:
        groups += wikiqa_groups(data_root / "train-wikiqa" / "train.jsonl", negatives, seed)[
            : sources["wikiqa"].get("max_queries")]
    if "scifact" in sources:
        groups += scifact_groups(data_root / "train-scifact" / "pairs.jsonl",
                                 data_root / "scifact" / "corpus.jsonl", negatives, seed)[
            : sources["scifact"].get("max_queries")]
    unknown = set(sources) - {"squad", "wikiqa", "scifact"}
    if unknown:
        raise InvalidInputError(f"unknown recipe sources: {sorted(unknown)}")
    return groups


def collect_dev_pairs(model_dir: Path, dev: TrecDevSet, max_length: int | None = None) -> DevPairs:
    """Cross-encoder logits and bi-encoder cosines of every dev candidate."""
    from ..encoders import embed
    from ..rerankers.cross_encoder import CrossEncoderReranker
    from ..types import Document

    ce = CrossEncoderReranker(str(model_dir), activation="none", dtype="float32", max_length=max_length)
    logits, cosines = [], []
    for query, texts in zip(dev.queries, dev.texts):
        logits.append(ce._score(query, [Document(t) for t in texts]))
        vectors = embed([query, *texts])
        cosines.append(vectors[1:] @ vectors[0])
    return DevPairs(dev.qids, dev.doc_ids, logits, cosines)


def store_half_precision(model_dir: Path) -> None:
    """Rewrite ``model.safetensors`` in float16 (half the size; loading upcasts to the compute dtype)."""
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from ..io import atomic_write_bytes

    path = Path(model_dir) / "model.safetensors"
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(path).items()}
    atomic_write_bytes(path, save_bytes(tensors, metadata={"format": "pt"}))


def run_recipe(recipe_path: str | Path, output: str | Path, data_root: str | Path | None = None,
               progress: bool = True) -> dict:
    """Build the data, train, fit the fusion on the dev collection, write the model folder."""
    recipe_path = Path(recipe_path)
    try:
        recipe = json.loads(recipe_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read recipe {recipe_path}: {exc}") from exc
    root = Path(data_root or recipe.get("data_root", "../shared/data"))
    if not root.is_dir():
        raise DataFormatError(f"data folder {root} not found (the recipe reads ../shared/data)")
    started = time.monotonic()
    groups = build_groups(recipe, root)
    log.info("training groups: %d", len(groups))
    output = Path(output)
    if recipe.get("save_training_data"):
        write_training_jsonl(groups, Path(recipe["save_training_data"]))
    dev_cfg = recipe["dev"]
    dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("depth", 30))
    config = TrainConfig(**recipe.get("train", {}))
    result = train_cross_encoder(groups, output, config, dev.evaluate, progress=progress)
    if recipe.get("storage_dtype", "float16") == "float16":
        store_half_precision(result.output)
    fusion_dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("fusion_depth", 100))
    pairs = collect_dev_pairs(result.output, fusion_dev, config.max_length)
    weights, table = fit_fusion(pairs, fusion_dev.qrels, bi_encoder=config.bi_encoder, max_length=config.max_length)
    fused_dev = ndcg10(pairs, [weights.combine(c, s) for c, s in zip(pairs.ce, pairs.cos)], fusion_dev.qrels)
    atomic_write_json(result.output / "rerankit.json", weights.to_json())
    summary = {
        "recipe": str(recipe_path), "groups": len(groups), "steps": result.steps, "pairs_seen": result.pairs_seen,
        "best_step": result.best_step, "dev_collection": dev_cfg["collection"],
        "dev_ndcg10_training_objective": result.best_dev,
        "dev_ndcg10_by_ratio": {str(k): round(v, 4) for k, v in table.items()},
        "dev_ndcg10_fused": round(fused_dev, 4), "fusion": weights.to_json(),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    atomic_write_json(result.output / "recipe_summary.json", summary)
    return summary
