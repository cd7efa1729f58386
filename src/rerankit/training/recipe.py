"""The recipe that reproduces the shipped default model with one command.

A recipe is a JSON file (see ``recipes/default.json``): which training sources to read from the
data folder, how many negatives, the ``TrainConfig``, and the development collection used for
early stopping and for fitting the fusion weights. The development collection is never one that
is reported as an evaluation (TREC DL21 for the default; DL19 is kept for reporting).

``run_recipe`` runs these steps, each a function here:

- ``start_stage``: ``"start_model"`` (a folder, a base encoder name, or another recipe file, which is
  run first and whose model is used) is where training starts. ``recipes/default.json`` and
  ``recipes/default-large.json`` start from ``recipes/default-cross-encoder.json``'s model.
- ``train_stage``: with ``"sources"`` (SQuAD, WikiQA, SciFact), the cross-encoder trains on from there
  (``recipes/default-cross-encoder.json``); without them the stage is skipped.
- ``place_model``: the model is copied into the output folder (where it is not there already) and
  stored in float16.
- ``collect_dev_pairs`` and ``write_fusion``: the fusion weights (cross-encoder, bi-encoder cosine,
  and, with ``"lexical"``, a BM25 score whose document frequencies the recipe names) are fitted on
  the development queries and written with the recipe summary.

The recipe's shape is the pydantic model ``Recipe`` (``DevSpec``, ``SourcesSpec``, ``LexicalSpec``,
``TrainOptions``): JSON types as they are, no coercion, and no key the code does not read. Stages that no
shipped recipe uses (fine-tuning on judgments, teacher distillation, a distilled bi-encoder) are in
``experiments/`` at the repository root, outside the package; a recipe that names one of their keys is
refused here.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import time
from pathlib import Path
from typing import Any, get_args, get_type_hints

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl, read_trec_run
from ..encoders import DEFAULT_BI_ENCODER
from ..errors import DataFormatError, InvalidInputError, RerankitError
from ..evaluation.metrics import trec_order
from ..io import atomic_write_json, publish_directory
from ..lexical import LexicalScorer
from ..rerankers.fused import LEXICAL_FILE
from .data import TrainingGroup, write_training_jsonl
from .fusion import DevPairs, fit_fusion, ndcg10
from .sources import scifact_groups, squad_groups, wikiqa_groups
from .trainer import GroupLoss, ScorePairs, TrainConfig, train_cross_encoder

log = logging.getLogger(__name__)

_EXPERIMENTS = "the experimental stages are run by experiments/run_experiment.py, outside the package"


class _Spec(BaseModel):
    """A part of a recipe: JSON types as they are (strict: no ``"128"`` for 128) and no key the code does not
    read (the experiments' keys are refused, so that none is silently skipped). A key that may be absent but
    not ``null`` has a default and a type without ``None``."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DevSpec(_Spec):
    """``"dev"``: the development collection (a folder under the data root) for early stopping and the fusion."""

    collection: str
    depth: int = 30  # candidates per query reranked for early stopping
    fusion_depth: int = 100  # candidates per query the fusion weights are fitted on


class LexicalSpec(_Spec):
    """``"lexical"``: the corpus whose document frequencies the BM25 score of the fusion reads."""

    corpus: str  # a corpus.jsonl under the data root, e.g. "trec-dl21-passage/corpus.jsonl"


class SourceSpec(_Spec):
    """A training source (WikiQA, SciFact): at most ``max_queries`` of its groups (all without it)."""

    max_queries: int | None = None


class SquadSpec(SourceSpec):
    """SQuAD: the version's folder under ``train-squad``."""

    version: str = "v1.1-dev"


class SourcesSpec(_Spec):
    """``"sources"``: the training sources a recipe may name, each absent or an object."""

    squad: SquadSpec = None  # type: ignore[assignment]
    wikiqa: SourceSpec = None  # type: ignore[assignment]
    scifact: SourceSpec = None  # type: ignore[assignment]


def _train_options() -> type[_Spec]:
    """``TrainConfig``'s fields as a model (their types and defaults), so that ``"train"`` is checked against it."""
    hints = get_type_hints(TrainConfig)
    options: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        if f.default is not dataclasses.MISSING:
            options[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            options[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            options[f.name] = (hints[f.name], ...)
    return create_model("TrainOptions", __base__=_Spec, __doc__="``\"train\"``: ``TrainConfig``'s fields.",
                        **options)


TrainOptions = _train_options()


class Recipe(_Spec):
    """A recipe file of the package (``recipes/*.json``). ``data_folder`` applies ``data_root``'s default."""

    description: str | None = None
    data_root: str = "../shared/data"
    seed: int = 0
    negatives: int = 7  # negatives per training group
    sources: SourcesSpec | None = None
    dev: DevSpec
    train: TrainOptions = Field(default_factory=TrainOptions)  # type: ignore[valid-type]
    start_model: str | None = None  # a folder, a base encoder name, or a recipe file (relative to this one)
    lexical: LexicalSpec | None = None
    storage_dtype: str = "float16"  # "float16" stores the model in half precision; any other value leaves it
    save_training_data: str | None = None  # a jsonl file to write the training groups to


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
    return groups  # check_recipe has refused any source outside SourcesSpec


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


def store_half_precision(model_dir: Path) -> None:
    """Rewrite ``model.safetensors`` in float16 (half the size; loading upcasts to the compute dtype)."""
    from safetensors.torch import load_file
    from safetensors.torch import save as save_bytes

    from ..io import atomic_write_bytes

    path = Path(model_dir) / "model.safetensors"
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(path).items()}
    atomic_write_bytes(path, save_bytes(tensors, metadata={"format": "pt"}))


def data_folder(recipe: dict, data_root: str | Path | None) -> Path:
    """The data folder: the caller's, else the recipe's ``data_root``, else ``../shared/data``."""
    return Path(data_root or recipe.get("data_root", "../shared/data"))


def read_recipe(recipe_path: str | Path) -> dict:
    """The recipe file's JSON object; ``DataFormatError`` where it cannot be read."""
    recipe_path = Path(recipe_path)
    try:
        return json.loads(recipe_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read recipe {recipe_path}: {exc}") from exc


def check_recipe(recipe_path: str | Path, data_root: str | Path | None = None) -> dict:
    """Read a recipe and check it before any training: its shape (``Recipe``), earlier stages, data files.

    Raises ``DataFormatError`` (unreadable file, a value of the wrong type, a missing key, missing data) or
    ``InvalidInputError`` (unknown key, source or training option), so that a typo fails in a second, not
    after an hour-long stage. Returns the parsed recipe.
    """
    recipe = read_recipe(recipe_path)
    validate_recipe(recipe, recipe_path, data_root)
    return recipe


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model that validates the object at ``loc`` within a recipe (``()``: ``Recipe``)."""
    model: type[BaseModel] | None = Recipe
    for part in loc:
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = next((t for t in (field.annotation, *get_args(field.annotation))
                      if isinstance(t, type) and issubclass(t, BaseModel)), None)
    return model


def _recipe_error(exc: ValidationError, recipe_path: Path) -> RerankitError:
    """pydantic's errors as one message naming the file and each key path (``train.learning_rate: Input
    should be a valid number``): ``InvalidInputError`` where every problem is an unknown key, else
    ``DataFormatError`` (a wrong type or a missing key)."""
    problems, unknown = [], 0
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = ".".join(str(part) for part in loc)
        if error["type"] == "extra_forbidden":
            unknown += 1
            model = _model_at(loc[:-1])
            known = sorted(model.model_fields) if model is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            problems.append(f"{path}: unknown key, " + (f"did you mean {close[0]}?" if close
                                                         else f"not one of {', '.join(known)}"))
        elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(f"{path}: Input should be a JSON object")
        else:
            problems.append(f"{path}: {error['msg']}")
    message = f"recipe {recipe_path}: {'; '.join(problems)}" + (f" ({_EXPERIMENTS})" if unknown else "")
    return InvalidInputError(message) if unknown == len(problems) else DataFormatError(message)


def parse_recipe(recipe: object, recipe_path: str | Path) -> Recipe:
    """The parsed recipe as a ``Recipe`` (its shape only; ``validate_recipe`` checks the files too)."""
    if not isinstance(recipe, dict):
        raise DataFormatError(f"recipe {recipe_path}: must be a JSON object with a \"dev\": {{\"collection\": ...}}")
    try:
        return Recipe.model_validate(recipe)
    except ValidationError as exc:
        raise _recipe_error(exc, Path(recipe_path)) from None


def validate_recipe(recipe: dict, recipe_path: str | Path, data_root: str | Path | None = None) -> Recipe:
    """``check_recipe``'s checks of a parsed recipe (``recipe_path`` names it and anchors its start stage):
    ``parse_recipe``, then the start stage's recipe (checked first) and the data files. Returns the model."""
    recipe_path = Path(recipe_path)
    spec = parse_recipe(recipe, recipe_path)
    start = spec.start_model or ""
    if start.endswith(".json"):
        check_recipe(recipe_path.parent / start, data_root)
    root = data_folder(recipe, data_root)
    if not root.is_dir():
        raise DataFormatError(f"data folder {root} not found (the recipe reads ../shared/data)")
    needed = [root / spec.dev.collection] + ([root / spec.lexical.corpus] if spec.lexical is not None else [])
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise DataFormatError(f"recipe {recipe_path} reads {', '.join(missing)}, which do not exist")
    return spec


def start_stage(recipe: dict, recipe_path: Path, output: Path, config: TrainConfig, data_root: str | Path | None,
                progress: bool, summary: dict) -> tuple[Path | None, TrainConfig]:
    """The recipe's ``start_model`` as a folder (a recipe file is run first, into
    ``<output>.stage-<name>``, unless that folder holds its model), and ``config`` starting from it.
    ``(None, config)`` without a start model."""
    if not recipe.get("start_model"):
        return None, config
    from dataclasses import replace

    from ..encoders import resolve_bi_encoder

    start = str(recipe["start_model"])
    if start.endswith(".json"):  # an earlier stage's recipe: run it first, unless its model is there
        model_dir = output.with_name(output.name + ".stage-" + Path(start).stem)
        if (model_dir / "recipe_summary.json").is_file():
            log.info("reusing the stage already trained at %s (delete it to train again)", model_dir)
            summary["start_stage"] = json.loads((model_dir / "recipe_summary.json").read_text())
            summary["start_stage_reused"] = str(model_dir)
        else:
            summary["start_stage"] = run_recipe(recipe_path.parent / start, model_dir, data_root, progress)
    else:
        model_dir = Path(resolve_bi_encoder(start))
    summary["start_model"] = start
    return model_dir, replace(config, base_model=str(model_dir))  # sources, if any, train on from there


def train_stage(groups: list[TrainingGroup], recipe: dict, root: Path, output: Path, config: TrainConfig,
                progress: bool, summary: dict, loss_fn: GroupLoss | None = None) -> Path:
    """Train the cross-encoder on ``groups`` into ``output``, early stopping on the dev collection."""
    dev_cfg = recipe["dev"]
    log.info("training groups: %d", len(groups))
    if recipe.get("save_training_data"):
        write_training_jsonl(groups, Path(recipe["save_training_data"]))
    dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("depth", 30))
    result = train_cross_encoder(groups, output, config, dev.evaluate, progress=progress, loss_fn=loss_fn)
    summary.update({"groups": len(groups), "steps": result.steps, "pairs_seen": result.pairs_seen,
                    "best_step": result.best_step, "dev_ndcg10_training_objective": result.best_dev})
    return result.output


def place_model(model_dir: Path, output: Path, recipe: dict) -> Path:
    """The model in ``output`` (copied there without its fusion files where it is elsewhere), in the
    recipe's ``storage_dtype`` (float16 unless it says otherwise)."""
    if model_dir.resolve() != output.resolve():  # the start model itself: copy it into place
        import shutil
        import tempfile

        staged = Path(tempfile.mkdtemp(prefix=".rerankit-recipe-", dir=output.resolve().parent)) / "model"
        shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns(
            "rerankit.json", "recipe_summary.json", LEXICAL_FILE))
        model_dir = publish_directory(staged, output)
        shutil.rmtree(staged.parent, ignore_errors=True)
    if recipe.get("storage_dtype", "float16") == "float16":
        store_half_precision(model_dir)
    return model_dir


def write_fusion(model_dir: Path, pairs: DevPairs, fusion_dev: TrecDevSet, recipe: dict, root: Path, bi_encoder: str,
                 max_length: int | None, summary: dict, started: float) -> dict:
    """Fit the fusion on ``pairs`` (with the recipe's lexical score, if any) and write ``rerankit.json``,
    the lexical table and ``recipe_summary.json`` into ``model_dir``; returns the summary."""
    lexical_path = model_dir / LEXICAL_FILE
    if recipe.get("lexical"):
        scorer = lexical_statistics(recipe["lexical"], root)
        scorer.save(lexical_path)
        pairs.lexical = lexical_scores(pairs, fusion_dev, scorer)
        summary["lexical_statistics"] = {**recipe["lexical"], "terms": len(scorer.df), "documents": scorer.documents}
    else:
        lexical_path.unlink(missing_ok=True)  # a start model's statistics belong to its own fusion
    weights, table, lexical_table = fit_fusion(pairs, fusion_dev.qrels, bi_encoder=bi_encoder, max_length=max_length)
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


def begin_run(recipe: dict, recipe_path: Path, output: Path, data_root: str | Path | None,
              progress: bool) -> tuple[Path, float, dict, Path, TrainConfig]:
    """The first steps of every recipe run (``run_recipe``, and the experiments' runner): the data folder,
    the start time, the summary begun, and the start stage's model folder and ``TrainConfig``."""
    root, started = data_folder(recipe, data_root), time.monotonic()
    summary: dict = {"recipe": str(recipe_path), "dev_collection": recipe["dev"]["collection"]}
    model_dir, config = start_stage(recipe, recipe_path, output, TrainConfig(**recipe.get("train", {})), data_root,
                                    progress, summary)
    return root, started, summary, model_dir, config


def run_recipe(recipe_path: str | Path, output: str | Path, data_root: str | Path | None = None,
               progress: bool = True) -> dict:
    """Build the data, train, fit the fusion on the dev collection, write the model folder."""
    recipe_path, output = Path(recipe_path), Path(output)
    recipe = check_recipe(recipe_path, data_root)
    dev_cfg = recipe["dev"]
    root, started, summary, model_dir, config = begin_run(recipe, recipe_path, output, data_root, progress)
    if recipe.get("sources"):
        model_dir = train_stage(build_groups(recipe, root), recipe, root, output, config, progress, summary)
    model_dir = place_model(model_dir, output, recipe)
    fusion_dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("fusion_depth", 100))
    pairs = collect_dev_pairs(model_dir, fusion_dev, config.max_length, config.bi_encoder)
    summary["fusion_fitted_on"] = "the final model's scores on the development queries"
    return write_fusion(model_dir, pairs, fusion_dev, recipe, root, config.bi_encoder, config.max_length, summary,
                        started)
