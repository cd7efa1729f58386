"""experiments/run_experiment.py (not part of the package): the experiments' recipes are checked before any
training, as the package's are, and a recipe without an experimental key runs as the package runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXPERIMENTS, recipe_data_root, shared_data_dir, write_recipe

from rerankit.errors import DataFormatError, InvalidInputError

ROOT = Path(__file__).resolve().parents[1]

from run_experiment import check_experiment, run_experiment, split_recipe  # noqa: E402


@pytest.mark.parametrize("name", ["distill-mpnet.json", "distill-bi-encoder.json"])
def test_the_experiments_recipes_hold_together_and_start_from_the_shipped_cross_encoder(name):
    recipe = json.loads((EXPERIMENTS / name).read_text())
    assert recipe["start_model"] == "../recipes/default-cross-encoder.json"
    assert (EXPERIMENTS / recipe["start_model"]).is_file()
    assert split_recipe(recipe)[1]  # each has an experimental key (the package refuses it)
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not beside this clone (the recipes read it)")
    assert check_experiment(EXPERIMENTS / name, data)["dev"]["collection"] == "trec-dl21-passage"


def test_the_experimental_parts_are_split_off():
    shipped, extra = split_recipe({
        "dev": {"collection": "dev"}, "finetune": {"folds": 3}, "storage": {"pack_bi_encoder": True},
        "sources": {"squad": {}, "unlabelled": {"queries": "q", "corpus": "c"}},
        "train": {"learning_rate": 1e-5, "teacher": "t", "distill_weight": 1.0}})
    assert shipped == {"dev": {"collection": "dev"}, "sources": {"squad": {}}, "train": {"learning_rate": 1e-5}}
    assert set(extra) == {"finetune", "storage", "unlabelled", "distill"}
    assert split_recipe({"dev": {"collection": "dev"}, "train": {"max_length": 64}})[1] == {}


def test_valid_experimental_recipes_pass(tmp_path):
    data = recipe_data_root(tmp_path)
    write_recipe(tmp_path / "stage1.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}})
    recipe = write_recipe(tmp_path / "distill.json", {
        "dev": {"collection": "dev"}, "lexical": {"corpus": "pool/corpus.jsonl"}, "start_model": "stage1.json",
        "bi_encoder_distill": {"queries": ["pool/queries.jsonl"], "corpora": ["pool/corpus.jsonl"], "held_out_half": 1,
                               "train": {"max_minutes": 5, "teacher": "all-mpnet-base-v2"}},
        "storage": {"share_word_embeddings": "all-MiniLM-L6-v2", "pack_bi_encoder": True},
    })
    assert check_experiment(recipe, data)["bi_encoder_distill"]["held_out_half"] == 1
    recipe = write_recipe(tmp_path / "teacher.json", {
        "dev": {"collection": "dev"}, "start_model": "stage1.json",
        "sources": {"unlabelled": {"queries": "pool/queries.jsonl", "corpus": "pool/corpus.jsonl"}},
        "train": {"learning_rate": 3e-5, "teacher": "all-mpnet-base-v2", "distill_weight": 1.0},
        "finetune": {"collection": "dev", "folds": 3, "train": {"max_steps": 5}},
    })
    assert check_experiment(recipe, data)["finetune"]["folds"] == 3


@pytest.mark.parametrize("change, error, words", [
    ({"train": {"learning_rat": 1e-5, "distill_weight": 1.0}}, InvalidInputError, "learning_rat"),  # the package's check
    ({"finetune": {"collection": "dev", "train": {"max_step": 5}}}, InvalidInputError, "max_step"),
    ({"finetune": {"collection": "dev", "train": {"teacher": "t"}}}, InvalidInputError, "teacher"),
    ({"finetune": {"collection": "trec-dl99"}}, DataFormatError, "trec-dl99"),
    ({"sources": {"unlabelled": {"queries": "pool/nope.jsonl", "corpus": "pool/corpus.jsonl"}}},
     DataFormatError, "nope.jsonl"),
    ({"storage": {"share_embeddings": True}}, InvalidInputError, "storage"),
    ({"bi_encoder_distill": {"train": {"learning_rat": 1e-5}}}, InvalidInputError, "learning_rat"),
    ({"bi_encoder_distill": {"held_out_half": 2}}, InvalidInputError, "held_out_half"),
    ({"bi_encoder_distill": {"held_out_half": 0}, "finetune": {"collection": "dev"}}, InvalidInputError, "finetune"),
    ({"bi_encoder_distill": {"corpora": ["pool/nope.jsonl"]}}, DataFormatError, "nope.jsonl"),
    ({"bi_encoder_distill": {}, "lexicl": {}}, InvalidInputError, "lexicl"),
])
def test_a_broken_experimental_recipe_fails_before_training(tmp_path, change, error, words):
    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}, **change})
    with pytest.raises(error, match=words):
        check_experiment(recipe, data)
    with pytest.raises(error, match=words):  # run_experiment checks first: nothing is trained or written
        run_experiment(recipe, tmp_path / "model", data, progress=False)
    assert not (tmp_path / "model").exists()


def test_a_package_recipe_is_run_by_the_package(tmp_path, monkeypatch):
    import run_experiment as runner

    data = recipe_data_root(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}})
    calls = []
    monkeypatch.setattr(runner, "run_recipe", lambda *args: calls.append(args) or {"ran": "package"})
    assert run_experiment(recipe, tmp_path / "model", data, progress=False) == {"ran": "package"}
    assert calls == [(recipe, tmp_path / "model", data, False)]
