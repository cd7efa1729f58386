"""The recipe that reproduces the shipped default model with one command.

A recipe is a JSON file (see ``recipes/default.json``): which training sources to read from the
data folder, how many negatives, the ``TrainConfig``, and the development collection used for
early stopping and for fitting the fusion weights. The development collection is never one that
is reported as an evaluation (TREC DL21 for the default; DL19 is kept for reporting).

Two optional stages around the first:

- ``"start_model"`` (a folder, a base encoder name, or another recipe file, which is run first and
  whose model is used) is where training starts: with ``sources`` the first stage trains on from
  it, without them the stage is skipped. Two stages can so chain: ``recipes/distill-mpnet.json``
  runs the default's SQuAD/WikiQA/SciFact recipe, then distils a larger teacher on unlabelled queries.
- ``"finetune"`` then fine-tunes on the development collection's own graded judgments
  (``training.judged``): k folds of its queries choose the number of steps by held-out nDCG@10, a
  last run on every query trains the model for that many steps, and the fusion weights are fitted
  on the folds' held-out ("out-of-fold") scores, so that no weight is fitted on scores of a model
  that trained on the same queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from ..datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl, read_trec_run
from ..encoders import DEFAULT_BI_ENCODER
from ..errors import DataFormatError, InvalidInputError
from ..evaluation.metrics import trec_order
from ..io import atomic_write_json, publish_directory
from ..lexical import LexicalScorer
from ..rerankers.fused import LEXICAL_FILE
from .data import TrainingGroup, write_training_jsonl
from .fusion import DevPairs, fit_fusion, ndcg10
from .judged import JudgedCollection, KFoldResult, kfold_finetune
from .sources import scifact_groups, squad_groups, unlabelled_groups, wikiqa_groups
from .trainer import ScorePairs, TrainConfig, train_cross_encoder

log = logging.getLogger(__name__)

_SOURCES = {"squad", "wikiqa", "scifact", "unlabelled"}  # the training sources a recipe may name


def query_half(qid: str) -> int:
    """0 or 1: a fixed split of a collection's queries (SHA-1 of the id, so it does not depend on order)."""
    return int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 2


class TrecDevSet:
    """A judged collection with a first-stage run: the dev queries, their top-``depth`` candidates."""

    def __init__(self, folder: str | Path, depth: int = 30, run: str = "runs/bm25.top100.trec",
                 half: int | None = None) -> None:
        folder = Path(folder)
        qrels_file = folder / "qrels" / "test-full.tsv"
        self.qrels = read_qrels(qrels_file if qrels_file.exists() else folder / "qrels" / "test.tsv")
        queries = read_queries_jsonl(folder / "queries.jsonl")
        corpus = {d.id: d.full_text for d in read_corpus_jsonl(folder / "corpus.jsonl")}
        first_stage = read_trec_run(folder / run)
        self.qids = [q for q in first_stage if q in self.qrels and q in queries and (half is None or query_half(q) == half)]
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
    if "unlabelled" in sources:  # e.g. MS MARCO dev queries over a passage pool, for a teacher to label
        spec = sources["unlabelled"]
        groups += unlabelled_groups(data_root / spec["queries"], data_root / spec["corpus"], spec.get("max_queries"),
                                    spec.get("pool", 15), seed)
    return groups  # check_recipe has refused any source outside _SOURCES


def collect_dev_pairs(model_dir: Path, dev: TrecDevSet, max_length: int | None = None,
                      bi_encoder: str = DEFAULT_BI_ENCODER) -> DevPairs:
    """Cross-encoder logits and ``bi_encoder`` cosines of every dev candidate."""
    from ..encoders import embed
    from ..rerankers.cross_encoder import CrossEncoderReranker
    from ..types import Document

    ce = CrossEncoderReranker(str(model_dir), activation="none", dtype="float32", max_length=max_length)
    logits, cosines = [], []
    for query, texts in zip(dev.queries, dev.texts):
        logits.append(ce._score(query, [Document(t) for t in texts]))
        vectors = embed([query, *texts], bi_encoder)
        cosines.append(vectors[1:] @ vectors[0])
    return DevPairs(dev.qids, dev.doc_ids, logits, cosines)


def lexical_statistics(spec: dict, data_root: Path) -> LexicalScorer:
    """Document frequencies over the recipe's ``"lexical": {"corpus": ...}`` (a corpus.jsonl under the data root)."""
    return LexicalScorer.from_texts(d.full_text for d in read_corpus_jsonl(data_root / spec["corpus"]))


def lexical_scores(pairs: DevPairs, dev: TrecDevSet, scorer: LexicalScorer) -> list[np.ndarray]:
    """The lexical score of each dev candidate in ``pairs`` (whose queries and documents ``dev`` holds)."""
    queries = dict(zip(dev.qids, dev.queries))
    texts = {d: t for ids, ts in zip(dev.doc_ids, dev.texts) for d, t in zip(ids, ts)}
    return [scorer.scores(queries[q], [texts[d] for d in ids]) for q, ids in zip(pairs.qids, pairs.doc_ids)]


BI_ENCODER_FOLDER = "bi_encoder"  # a distilled bi-encoder's place inside the model folder


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


def held_out_half(recipe: dict) -> int | None:
    """The dev query half kept out of the bi-encoder stage's texts, if any."""
    return (recipe.get("bi_encoder_distill") or {}).get("held_out_half")


def _bi_encoder_stage(spec: dict, root: Path, dev_cfg: dict, stage_dir: Path) -> tuple[dict, TrecDevSet | None]:
    """Distil the teacher into a bi-encoder at ``stage_dir`` (reused where a finished one is there).

    Returns the stage summary and the held-out dev set (the queries the fusion is then fitted on).
    """
    from dataclasses import asdict

    from ..encoders import embed
    from .bi_encoder_distill import BiEncoderDistillConfig, distill_bi_encoder

    config = BiEncoderDistillConfig(**spec.get("train", {}))
    half = spec.get("held_out_half")
    depth = dev_cfg.get("fusion_depth", 100)
    held_out = None if half is None else TrecDevSet(root / dev_cfg["collection"], depth=depth, half=half)
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


WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def install_bi_encoder(stage_dir: Path, model_dir: Path, student: str) -> Path:
    """Copy the distilled bi-encoder into the model folder in fp16, without the student's (frozen) word embeddings."""
    import shutil

    from ..shared_tensors import strip_shared

    folder = model_dir / BI_ENCODER_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(stage_dir, folder)
    for weights_folder in (folder, *(p.parent for p in folder.glob("*_Dense/model.safetensors"))):
        store_half_precision(weights_folder)
    strip_shared(folder, {WORD_EMBEDDINGS: (student, WORD_EMBEDDINGS)})
    return folder


def share_word_embeddings(model_dir: Path, source: str) -> float:
    """Give the cross-encoder ``source``'s word embeddings and store it without them; returns the largest change.

    For a cross-encoder whose word embeddings barely moved from its start model's while training.
    """
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from ..io import atomic_write_bytes
    from ..shared_tensors import source_tensor, strip_shared

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


def store_half_precision(model_dir: Path) -> None:
    """Rewrite ``model.safetensors`` in float16 (half the size; loading upcasts to the compute dtype)."""
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from ..io import atomic_write_bytes

    path = Path(model_dir) / "model.safetensors"
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(path).items()}
    atomic_write_bytes(path, save_bytes(tensors, metadata={"format": "pt"}))


def _finetune_stage(recipe: dict, root: Path, start: Path, output: Path, base_config: TrainConfig,
                    progress: bool) -> tuple[Path, DevPairs | None, dict]:
    """k-fold fine-tuning on the development collection's judgments; returns (model, out-of-fold pairs, summary)."""
    import shutil
    import tempfile
    from dataclasses import asdict, replace

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


def out_of_fold_pairs(result: KFoldResult, collection: JudgedCollection, config: TrainConfig) -> DevPairs:
    """The held-out scores as fusion inputs: cross-encoder logits and bi-encoder cosines.

    The held-out scores are the training objective, ``logit + bi_encoder_prior * cosine``; the fusion
    (and the fused reranker at inference) reads the logit alone, so the prior is taken out again.
    """
    from ..encoders import embed

    qids = sorted(result.out_of_fold)
    cosines = []
    for q in qids:
        vectors = embed([collection.queries[q], *[collection.texts[d] for d in result.doc_ids[q]]], config.bi_encoder)
        cosines.append(vectors[1:] @ vectors[0])
    logits = [result.out_of_fold[q] - config.bi_encoder_prior * cos for q, cos in zip(qids, cosines)]
    return DevPairs(qids, [result.doc_ids[q] for q in qids], logits, cosines)


def _data_root(recipe: dict, data_root: str | Path | None) -> Path:
    """The data folder: the caller's, else the recipe's ``data_root``, else ``../shared/data``."""
    return Path(data_root or recipe.get("data_root", "../shared/data"))


def check_recipe(recipe_path: str | Path, data_root: str | Path | None = None) -> dict:
    """Read a recipe and check it before any training: known keys, earlier stages, data files.

    Raises ``DataFormatError`` (unreadable file, missing data) or ``InvalidInputError`` (unknown
    source or training option), so that a typo fails in a second, not after an hour-long stage.
    Returns the parsed recipe.
    """
    recipe_path = Path(recipe_path)
    try:
        recipe = json.loads(recipe_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read recipe {recipe_path}: {exc}") from exc
    if not isinstance(recipe, dict) or not isinstance(recipe.get("dev"), dict) or "collection" not in recipe["dev"]:
        raise DataFormatError(f"recipe {recipe_path} needs a \"dev\": {{\"collection\": ...}}")
    for key in ("sources", "train", "finetune"):
        if recipe.get(key) is not None and not isinstance(recipe[key], dict):
            raise DataFormatError(f"recipe {recipe_path}: \"{key}\" must be a JSON object")
    options = {f.name for f in fields(TrainConfig)}
    for section in (recipe.get("train") or {}, (recipe.get("finetune") or {}).get("train") or {}):
        unknown_options = sorted(set(section) - options)
        if unknown_options:
            raise InvalidInputError(f"recipe {recipe_path}: unknown training options {unknown_options}")
    unknown = set(recipe.get("sources") or {}) - _SOURCES
    if unknown:
        raise InvalidInputError(f"unknown recipe sources: {sorted(unknown)}")
    start = str(recipe.get("start_model") or "")
    if start.endswith(".json"):
        check_recipe(recipe_path.parent / start, data_root)
    root = _data_root(recipe, data_root)
    if not root.is_dir():
        raise DataFormatError(f"data folder {root} not found (the recipe reads ../shared/data)")
    needed = [root / recipe["dev"]["collection"]]
    if recipe.get("finetune"):
        needed.append(root / recipe["finetune"].get("collection", recipe["dev"]["collection"]))
    if recipe.get("lexical") is not None:
        if not isinstance(recipe["lexical"], dict) or "corpus" not in recipe["lexical"]:
            raise DataFormatError(f"recipe {recipe_path}: \"lexical\" must be {{\"corpus\": \"<folder>/corpus.jsonl\"}}")
        needed.append(root / recipe["lexical"]["corpus"])
    storage = recipe.get("storage", {})
    if not isinstance(storage, dict) or set(storage) - {"share_word_embeddings", "pack_bi_encoder"}:
        raise InvalidInputError(f"recipe {recipe_path}: \"storage\" takes share_word_embeddings and pack_bi_encoder")
    distill = recipe.get("bi_encoder_distill")
    if distill is not None:
        from .bi_encoder_distill import BiEncoderDistillConfig

        if not isinstance(distill, dict) or not isinstance(distill.get("train", {}), dict):
            raise DataFormatError(f"recipe {recipe_path}: \"bi_encoder_distill\" must be a JSON object")
        unknown_options = sorted(set(distill.get("train", {})) - {f.name for f in fields(BiEncoderDistillConfig)})
        if unknown_options:
            raise InvalidInputError(f"recipe {recipe_path}: unknown distillation options {unknown_options}")
        if distill.get("held_out_half") not in (None, 0, 1):
            raise InvalidInputError(f"recipe {recipe_path}: held_out_half must be 0, 1 or absent")
        if recipe.get("finetune") and distill.get("held_out_half") is not None:
            raise InvalidInputError(f"recipe {recipe_path}: \"finetune\" trains on every dev query; it cannot be "
                                    "combined with a held-out half")
        needed += [root / path for path in (*distill.get("queries", []), *distill.get("corpora", []))]
    unlabelled = (recipe.get("sources") or {}).get("unlabelled")
    if unlabelled:
        needed += [root / unlabelled["queries"], root / unlabelled["corpus"]]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise DataFormatError(f"recipe {recipe_path} reads {', '.join(missing)}, which do not exist")
    return recipe


def run_recipe(recipe_path: str | Path, output: str | Path, data_root: str | Path | None = None,
               progress: bool = True) -> dict:
    """Build the data, train, fit the fusion on the dev collection, write the model folder."""
    recipe_path = Path(recipe_path)
    recipe = check_recipe(recipe_path, data_root)
    root = _data_root(recipe, data_root)
    started = time.monotonic()
    output = Path(output)
    dev_cfg = recipe["dev"]
    config = TrainConfig(**recipe.get("train", {}))
    summary: dict = {"recipe": str(recipe_path), "dev_collection": dev_cfg["collection"]}
    if recipe.get("start_model"):
        from dataclasses import replace

        from ..encoders import resolve_bi_encoder

        start = str(recipe["start_model"])
        if start.endswith(".json"):  # an earlier stage's recipe: run it first, unless its model is there
            stage_recipe = recipe_path.parent / start
            model_dir = output.with_name(output.name + ".stage-" + Path(start).stem)
            if (model_dir / "recipe_summary.json").is_file():
                log.info("reusing the stage already trained at %s (delete it to train again)", model_dir)
                summary["start_stage"] = json.loads((model_dir / "recipe_summary.json").read_text())
                summary["start_stage_reused"] = str(model_dir)
            else:
                summary["start_stage"] = run_recipe(stage_recipe, model_dir, data_root, progress)
        else:
            model_dir = Path(resolve_bi_encoder(start))
        summary["start_model"] = start
        config = replace(config, base_model=str(model_dir))  # sources, if any, train on from there
    if recipe.get("sources"):
        groups = build_groups(recipe, root)
        log.info("training groups: %d", len(groups))
        if recipe.get("save_training_data"):
            write_training_jsonl(groups, Path(recipe["save_training_data"]))
        dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("depth", 30))
        result = train_cross_encoder(groups, output, config, dev.evaluate, progress=progress)
        model_dir = result.output
        summary.update({"groups": len(groups), "steps": result.steps, "pairs_seen": result.pairs_seen,
                        "best_step": result.best_step, "dev_ndcg10_training_objective": result.best_dev})
    pairs = None
    if recipe.get("finetune"):
        model_dir, pairs, finetune_summary = _finetune_stage(recipe, root, model_dir, output, config, progress)
        summary.update(finetune_summary)
    if model_dir.resolve() != output.resolve():  # the start model itself: copy it into place
        import shutil
        import tempfile

        staged = Path(tempfile.mkdtemp(prefix=".rerankit-recipe-", dir=output.resolve().parent)) / "model"
        shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns(
            "rerankit.json", "recipe_summary.json", LEXICAL_FILE, BI_ENCODER_FOLDER))
        model_dir = publish_directory(staged, output)
        shutil.rmtree(staged.parent, ignore_errors=True)
    if recipe.get("storage_dtype", "float16") == "float16":
        store_half_precision(model_dir)
    fusion_dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("fusion_depth", 100))
    bi_encoder, bi_encoder_path = config.bi_encoder, config.bi_encoder
    storage = recipe.get("storage", {})
    if storage.get("share_word_embeddings"):  # before any measurement: the fusion reads the stored model
        change = share_word_embeddings(model_dir, storage["share_word_embeddings"])
        summary["cross_encoder_word_embeddings"] = {"from": storage["share_word_embeddings"],
                                                    "largest_change_reverted": round(change, 6)}
    if recipe.get("bi_encoder_distill"):
        spec = recipe["bi_encoder_distill"]
        stage_dir = output.with_name(output.name + ".stage-bi-encoder")
        summary["bi_encoder_distill"], held_out = _bi_encoder_stage(spec, root, dev_cfg, stage_dir)
        folder = install_bi_encoder(stage_dir, model_dir, spec.get("train", {}).get("student", DEFAULT_BI_ENCODER))
        if storage.get("pack_bi_encoder"):  # one weights file for the whole model folder
            from ..shared_tensors import pack_into_parent

            pack_into_parent(folder)
        bi_encoder, bi_encoder_path = BI_ENCODER_FOLDER, str(folder)
        if held_out is not None:  # the other half's passages were trained on: fit on the held-out queries only
            fusion_dev = held_out
    if pairs is None:
        pairs = collect_dev_pairs(model_dir, fusion_dev, config.max_length, bi_encoder_path)
        summary["fusion_fitted_on"] = (f"the final model's scores on the development queries ({len(fusion_dev.qids)}; "
                                       f"query half {held_out_half(recipe)})" if held_out_half(recipe) is not None
                                       else "the final model's scores on the development queries")
    else:
        summary["fusion_fitted_on"] = "out-of-fold scores (each query scored by a model that did not train on it)"
    lexical_path = model_dir / LEXICAL_FILE
    if recipe.get("lexical"):
        scorer = lexical_statistics(recipe["lexical"], root)
        scorer.save(lexical_path)
        pairs.lexical = lexical_scores(pairs, fusion_dev, scorer)
        summary["lexical_statistics"] = {**recipe["lexical"], "terms": len(scorer.df), "documents": scorer.documents}
    else:
        lexical_path.unlink(missing_ok=True)  # a start model's statistics belong to its own fusion
    weights, table, lexical_table = fit_fusion(pairs, fusion_dev.qrels, bi_encoder=bi_encoder,
                                               max_length=config.max_length)
    lexical = pairs.lexical or [None] * len(pairs.ce)
    fused_dev = ndcg10(pairs, [weights.combine(c, s, lx) for c, s, lx in zip(pairs.ce, pairs.cos, lexical)],
                       fusion_dev.qrels)
    atomic_write_json(model_dir / "rerankit.json", weights.to_json())
    summary.update({
        "dev_ndcg10_by_ratio": {str(k): round(v, 4) for k, v in table.items()},
        "dev_ndcg10_by_lexical_share": {str(k): round(v, 4) for k, v in lexical_table.items()},
        "dev_ndcg10_fused": round(fused_dev, 4), "fusion": weights.to_json(),
        "minutes": round((time.monotonic() - started) / 60, 1),
    })
    atomic_write_json(model_dir / "recipe_summary.json", summary)
    return summary
