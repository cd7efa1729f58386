"""Run a recipe with the experimental stages that the package's ``rerankit train --recipe`` refuses.

Not part of the package: the stages here were tried and not shipped (see README.md in this folder).
A recipe is the package's (``rerankit.training.recipe``) plus any of these keys:

- ``"finetune"``: k-fold fine-tuning on the development collection's judgments (``judged_training``);
- ``"bi_encoder_distill"``: a bi-encoder distilled from a teacher into the model folder, and
  ``"storage": {"share_word_embeddings", "pack_bi_encoder"}`` to store it small (``bi_encoder_distill``);
- ``"sources": {"unlabelled": ...}`` and the ``"train"`` options ``teacher``, ``distill_weight`` and
  ``distill_temperature``: distillation into the cross-encoder (``teacher_distill``).

A recipe without them runs as ``rerankit.training.recipe.run_recipe`` runs it. A ``"start_model"``
recipe file must be a package recipe (e.g. ``../recipes/default-cross-encoder.json``); to start from
an experiment's model, name its folder. From the repository root:

    python experiments/run_experiment.py experiments/distill-bi-encoder.json --out .bench/distilled
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, fields
from pathlib import Path

import bi_encoder_distill
import judged_training
import teacher_distill

from rerankit.encoders import DEFAULT_BI_ENCODER
from rerankit.errors import DataFormatError, InvalidInputError
from rerankit.training.recipe import (
    TrecDevSet,
    begin_run,
    build_groups,
    collect_dev_pairs,
    data_folder,
    place_model,
    read_recipe,
    run_recipe,
    train_stage,
    validate_recipe,
    write_fusion,
)
from rerankit.training.trainer import TrainConfig

EXPERIMENT_KEYS = ("finetune", "bi_encoder_distill", "storage")  # top-level keys the package refuses


def split_recipe(recipe: dict) -> tuple[dict, dict]:
    """The package's part of ``recipe`` and the experiments' part (empty for a package recipe)."""
    shipped = {k: v for k, v in recipe.items() if k not in EXPERIMENT_KEYS}
    extra = {k: recipe[k] for k in EXPERIMENT_KEYS if recipe.get(k) is not None}
    sources = recipe.get("sources")
    if isinstance(sources, dict) and "unlabelled" in sources:
        shipped["sources"] = {k: v for k, v in sources.items() if k != "unlabelled"}
        extra["unlabelled"] = sources["unlabelled"]
    train = recipe.get("train")
    if isinstance(train, dict) and set(train) & set(teacher_distill.OPTIONS):
        shipped["train"], extra["distill"] = teacher_distill.split_options(train)
    return shipped, extra


def validate_experiment(recipe: dict, recipe_path: Path, data_root: str | Path | None = None) -> None:
    """The package's checks of the package's part, then the experiments' keys and the data they read."""
    if not isinstance(recipe, dict):
        validate_recipe(recipe, recipe_path, data_root)  # raises the package's error
    shipped, extra = split_recipe(recipe)
    validate_recipe(shipped, recipe_path, data_root)
    root = data_folder(shipped, data_root)
    needed = []
    finetune = extra.get("finetune")
    if finetune is not None:
        if not isinstance(finetune, dict) or not isinstance(finetune.get("train", {}), dict):
            raise DataFormatError(f"recipe {recipe_path}: \"finetune\" must be a JSON object")
        unknown_options = sorted(set(finetune.get("train", {})) - {f.name for f in fields(TrainConfig)})
        if unknown_options:
            raise InvalidInputError(f"recipe {recipe_path}: unknown training options {unknown_options}")
        needed.append(root / finetune.get("collection", recipe["dev"]["collection"]))
    storage = extra.get("storage", {})
    if not isinstance(storage, dict) or set(storage) - {"share_word_embeddings", "pack_bi_encoder"}:
        raise InvalidInputError(f"recipe {recipe_path}: \"storage\" takes share_word_embeddings and pack_bi_encoder")
    distill = extra.get("bi_encoder_distill")
    if distill is not None:
        if not isinstance(distill, dict) or not isinstance(distill.get("train", {}), dict):
            raise DataFormatError(f"recipe {recipe_path}: \"bi_encoder_distill\" must be a JSON object")
        known = {f.name for f in fields(bi_encoder_distill.BiEncoderDistillConfig)}
        unknown_options = sorted(set(distill.get("train", {})) - known)
        if unknown_options:
            raise InvalidInputError(f"recipe {recipe_path}: unknown distillation options {unknown_options}")
        if distill.get("held_out_half") not in (None, 0, 1):
            raise InvalidInputError(f"recipe {recipe_path}: held_out_half must be 0, 1 or absent")
        if finetune and distill.get("held_out_half") is not None:
            raise InvalidInputError(f"recipe {recipe_path}: \"finetune\" trains on every dev query; it cannot be "
                                    "combined with a held-out half")
        needed += [root / path for path in (*distill.get("queries", []), *distill.get("corpora", []))]
    unlabelled = extra.get("unlabelled")
    if unlabelled:
        needed += [root / unlabelled["queries"], root / unlabelled["corpus"]]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise DataFormatError(f"recipe {recipe_path} reads {', '.join(missing)}, which do not exist")


def check_experiment(recipe_path: str | Path, data_root: str | Path | None = None) -> dict:
    """Read and check a recipe before any training (as ``rerankit.training.recipe.check_recipe``)."""
    recipe = read_recipe(recipe_path)
    validate_experiment(recipe, Path(recipe_path), data_root)
    return recipe


def run_experiment(recipe_path: str | Path, output: str | Path, data_root: str | Path | None = None,
                   progress: bool = True) -> dict:
    """Train, run the experimental stages, fit the fusion on the dev collection, write the model folder."""
    recipe_path = Path(recipe_path)
    recipe = check_experiment(recipe_path, data_root)
    shipped, extra = split_recipe(recipe)
    if not extra:
        return run_recipe(recipe_path, output, data_root, progress)
    output, dev_cfg = Path(output), recipe["dev"]
    root, started, summary, model_dir, config = begin_run(shipped, recipe_path, output, data_root, progress)
    if shipped.get("sources") or extra.get("unlabelled"):
        groups = build_groups(shipped, root) if shipped.get("sources") else []
        if extra.get("unlabelled"):  # e.g. MS MARCO dev queries over a passage pool, for a teacher to label
            spec = extra["unlabelled"]
            groups += teacher_distill.unlabelled_groups(root / spec["queries"], root / spec["corpus"],
                                                        spec.get("max_queries"), spec.get("pool", 15),
                                                        recipe.get("seed", 0))
        options = extra.get("distill", teacher_distill.DistillOptions())
        groups, loss_fn = teacher_distill.prepare(groups, config, options)
        if loss_fn is not None:  # training.json records the package's TrainConfig only
            summary["distillation"] = asdict(options)
        model_dir = train_stage(groups, shipped, root, output, config, progress, summary, loss_fn)
    pairs = None
    if extra.get("finetune"):
        model_dir, pairs, finetune_summary = judged_training.finetune_stage(recipe, root, model_dir, output, config,
                                                                            progress)
        summary.update(finetune_summary)
    model_dir = place_model(model_dir, output, shipped)
    fusion_dev = TrecDevSet(root / dev_cfg["collection"], depth=dev_cfg.get("fusion_depth", 100))
    bi_encoder, bi_encoder_path = config.bi_encoder, config.bi_encoder
    storage = extra.get("storage", {})
    if storage.get("share_word_embeddings"):  # before any measurement: the fusion reads the stored model
        change = bi_encoder_distill.share_word_embeddings(model_dir, storage["share_word_embeddings"])
        summary["cross_encoder_word_embeddings"] = {"from": storage["share_word_embeddings"],
                                                    "largest_change_reverted": round(change, 6)}
    half = None
    if extra.get("bi_encoder_distill"):
        spec = extra["bi_encoder_distill"]
        stage_dir = output.with_name(output.name + ".stage-bi-encoder")
        summary["bi_encoder_distill"], held_out = bi_encoder_distill.bi_encoder_stage(spec, root, dev_cfg, stage_dir)
        folder = bi_encoder_distill.install_bi_encoder(stage_dir, model_dir,
                                                       spec.get("train", {}).get("student", DEFAULT_BI_ENCODER))
        if storage.get("pack_bi_encoder"):  # one weights file for the whole model folder
            from rerankit.shared_tensors import pack_into_parent

            pack_into_parent(folder)
        bi_encoder, bi_encoder_path = bi_encoder_distill.BI_ENCODER_FOLDER, str(folder)
        if held_out is not None:  # the other half's passages were trained on: fit on the held-out queries only
            fusion_dev, half = held_out, spec.get("held_out_half")
    if pairs is None:
        pairs = collect_dev_pairs(model_dir, fusion_dev, config.max_length, bi_encoder_path)
        summary["fusion_fitted_on"] = (f"the final model's scores on the development queries ({len(fusion_dev.qids)}; "
                                       f"query half {half})" if half is not None
                                       else "the final model's scores on the development queries")
    else:
        summary["fusion_fitted_on"] = "out-of-fold scores (each query scored by a model that did not train on it)"
    return write_fusion(model_dir, pairs, fusion_dev, shipped, root, bi_encoder, config.max_length, summary, started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, help="a recipe file, e.g. experiments/distill-bi-encoder.json")
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--data-root", type=Path, help="the data folder (default: the recipe's data_root)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        summary = run_experiment(args.recipe, args.out, args.data_root, progress=not args.quiet)
    except (DataFormatError, InvalidInputError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
