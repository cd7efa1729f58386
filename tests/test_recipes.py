"""Recipes are checked before any training: the shipped ones hold together, typos fail fast."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import recipe_data_root, shared_data_dir, write_recipe

from rerankit.errors import DataFormatError, InvalidInputError
from rerankit.training.recipe import Recipe, TrainOptions, check_recipe, parse_recipe, run_recipe
from rerankit.training.trainer import TrainConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
EXPERIMENTS = RECIPES.parent / "experiments"


def test_the_recipes_folder_holds_the_shipped_models_recipes_only():
    # the experiments' recipes are in experiments/ (experiments/run_experiment.py runs them)
    assert sorted(p.name for p in RECIPES.glob("*.json")) == ["default-cross-encoder.json", "default-large.json",
                                                             "default.json"]


@pytest.mark.parametrize("name", ["default.json", "default-cross-encoder.json", "default-large.json"])
def test_shipped_recipes_hold_together(name):
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not beside this clone (the recipes read it)")
    recipe = check_recipe(RECIPES / name, data)
    assert recipe["dev"]["collection"] == "trec-dl21-passage"  # DL19 is for reporting only


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_a_valid_recipe_model(path):
    # the model alone (no data folder needed): every key known, every value of its type, nothing coerced
    raw = json.loads(path.read_text())
    recipe = parse_recipe(raw, path)
    assert isinstance(recipe, Recipe) and recipe.model_dump(exclude_unset=True) == raw
    assert TrainConfig(**raw.get("train", {})) == TrainConfig(**recipe.train.model_dump())


def test_the_train_section_is_checked_against_train_config():
    assert list(TrainOptions.model_fields) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert TrainConfig(**TrainOptions().model_dump()) == TrainConfig()  # the same defaults


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.json")), ids=lambda p: p.name)
def test_the_package_refuses_the_experiments_recipes_and_points_to_experiments(path):
    with pytest.raises(InvalidInputError, match="unknown key.*experiments/run_experiment.py"):
        parse_recipe(json.loads(path.read_text()), path)


@pytest.mark.parametrize("name", ["default.json", "default-large.json"])
def test_the_fusion_recipes_run_the_default_cross_encoder_first(name):
    recipe = json.loads((RECIPES / name).read_text())
    assert recipe["start_model"] == "default-cross-encoder.json" and not recipe.get("sources")
    assert json.loads((RECIPES / recipe["start_model"]).read_text()).get("start_model") is None


def test_a_valid_two_stage_recipe_passes(tmp_path):
    data = recipe_data_root(tmp_path)
    write_recipe(tmp_path / "stage1.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}})
    recipe = write_recipe(tmp_path / "stage2.json", {
        "dev": {"collection": "dev"}, "start_model": "stage1.json", "lexical": {"corpus": "pool/corpus.jsonl"},
        "train": {"max_length": 64, "bi_encoder": "all-mpnet-base-v2"},
    })
    assert check_recipe(recipe, data)["start_model"] == "stage1.json"


@pytest.mark.parametrize("change, error, words", [
    ({"train": {"learning_rat": 1e-5}}, InvalidInputError, "learning_rat"),
    ({"sources": {"sqaud": {}}}, InvalidInputError, "sqaud"),
    ({"start_model": "missing-stage.json"}, DataFormatError, "missing-stage.json"),
    ({"dev": {"collection": "trec-dl99"}}, DataFormatError, "trec-dl99"),
    ({"sources": ["squad"]}, DataFormatError, "sources"),
    ({"train": [1, 2]}, DataFormatError, "train"),
    ({"lexical": {"corpus": "pool/nope.jsonl"}}, DataFormatError, "nope.jsonl"),
    ({"lexical": "pool/corpus.jsonl"}, DataFormatError, "lexical"),
    ({"lexicl": {"corpus": "pool/corpus.jsonl"}}, InvalidInputError, "lexicl"),
    # the experiments' keys (experiments/run_experiment.py) are refused, never skipped
    ({"finetune": {"collection": "dev"}}, InvalidInputError, "finetune.*experiments/"),
    ({"bi_encoder_distill": {"held_out_half": 0}}, InvalidInputError, "bi_encoder_distill.*experiments/"),
    ({"storage": {"pack_bi_encoder": True}}, InvalidInputError, "storage.*experiments/"),
    ({"sources": {"unlabelled": {"queries": "pool/queries.jsonl", "corpus": "pool/corpus.jsonl"}}},
     InvalidInputError, "unlabelled"),
    ({"train": {"teacher": "all-mpnet-base-v2", "distill_weight": 1.0}}, InvalidInputError, "distill_weight"),
])
def test_a_broken_recipe_fails_before_training(tmp_path, change, error, words):
    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}, **change})
    with pytest.raises(error, match=words):
        check_recipe(recipe, data)
    with pytest.raises(error, match=words):  # run_recipe checks first: nothing is trained or written
        run_recipe(recipe, tmp_path / "model", data, progress=False)
    assert not (tmp_path / "model").exists()


def test_unreadable_recipe_and_missing_data_folder(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="cannot read recipe"):
        check_recipe(tmp_path / "bad.json", tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}})
    with pytest.raises(DataFormatError, match="data folder"):
        check_recipe(recipe, tmp_path / "no-such-folder")
    for broken in ({"sources": {"squad": {}}}, {"dev": "trec-dl21-passage"}, {"dev": {"depth": 30}}, []):
        write_recipe(tmp_path / "nodev.json", broken)
        with pytest.raises(DataFormatError, match="dev"):
            check_recipe(tmp_path / "nodev.json", tmp_path)


@pytest.mark.parametrize("change, words", [
    ({"train": {"learning_rate": "fast"}}, "train.learning_rate: Input should be a valid number"),
    ({"train": {"max_length": "128"}}, "train.max_length: Input should be a valid integer"),  # no coercion
    ({"train": {"bf16": 1}}, "train.bf16: Input should be a valid boolean"),
    ({"train": {"max_length": None}}, "train.max_length: Input should be a valid integer"),
    ({"train": None}, "train: Input should be a JSON object"),
    ({"dev": {"collection": "dev", "depth": 2.5}}, "dev.depth: Input should be a valid integer"),
    ({"dev": {"collection": 7}}, "dev.collection: Input should be a valid string"),
    ({"sources": {"squad": {"max_queries": "10"}}}, "sources.squad.max_queries: Input should be a valid integer"),
    ({"sources": {"wikiqa": None}}, "sources.wikiqa: Input should be a JSON object"),
    ({"lexical": {}}, "lexical.corpus: Field required"),
    ({"seed": "0"}, "seed: Input should be a valid integer"),
    ({"start_model": 3}, "start_model: Input should be a valid string"),
])
def test_a_value_of_the_wrong_type_is_named_by_its_key_path(tmp_path, change, words):
    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}, **change})
    with pytest.raises(DataFormatError) as info:
        check_recipe(recipe, data)
    assert str(info.value).startswith(f"recipe {recipe}: ") and words in str(info.value)
    with pytest.raises(DataFormatError, match=re.escape(words)):  # before anything is trained or written
        run_recipe(recipe, tmp_path / "model", data, progress=False)
    assert not (tmp_path / "model").exists()


def test_an_unknown_key_is_refused_with_its_path_a_suggestion_and_the_experiments_folder(tmp_path):
    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "lexicl": {"corpus": "pool/corpus.jsonl"},
                                               "train": {"learning_rat": 1e-5}, "sources": {"wikiqa": {"verison": 1}}})
    with pytest.raises(InvalidInputError) as info:
        check_recipe(recipe, data)
    message = str(info.value)
    assert message.startswith(f"recipe {recipe}: ")
    for words in ("lexicl: unknown key, did you mean lexical?",
                  "train.learning_rat: unknown key, did you mean learning_rate?",
                  "sources.wikiqa.verison: unknown key, not one of max_queries", "experiments/run_experiment.py"):
        assert words in message


def test_an_unknown_key_beside_a_wrong_type_is_a_format_error_naming_both(tmp_path):
    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "finetune": {},
                                               "train": {"epochs": "one"}})
    with pytest.raises(DataFormatError) as info:
        check_recipe(recipe, data)
    assert "train.epochs: Input should be a valid number" in str(info.value)
    assert "finetune: unknown key" in str(info.value)
