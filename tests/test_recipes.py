"""Recipes are checked before any training: the shipped ones hold together, typos fail fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_data_dir
from rerankit.errors import DataFormatError, InvalidInputError
from rerankit.training.recipe import check_recipe, run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _data_root(tmp_path: Path) -> Path:
    for name in ("dev", "pool"):
        (tmp_path / "data" / name).mkdir(parents=True)
    (tmp_path / "data" / "pool" / "queries.jsonl").write_text("")
    (tmp_path / "data" / "pool" / "corpus.jsonl").write_text("")
    return tmp_path / "data"


def _write(path: Path, recipe: dict) -> Path:
    path.write_text(json.dumps(recipe))
    return path


@pytest.mark.parametrize("name", ["default.json", "default-cross-encoder.json", "default-large.json",
                                  "distill-mpnet.json", "distill-bi-encoder.json"])
def test_shipped_recipes_hold_together(name):
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not beside this clone (the recipes read it)")
    recipe = check_recipe(RECIPES / name, data)
    assert recipe["dev"]["collection"] == "trec-dl21-passage"  # DL19 is for reporting only


def test_second_stage_recipe_runs_the_default_first():
    recipe = json.loads((RECIPES / "distill-mpnet.json").read_text())
    assert (RECIPES / recipe["start_model"]).is_file()
    assert json.loads((RECIPES / recipe["start_model"]).read_text()).get("start_model") is None


def test_a_valid_two_stage_recipe_passes(tmp_path):
    data = _data_root(tmp_path)
    _write(tmp_path / "stage1.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}})
    recipe = _write(tmp_path / "stage2.json", {
        "dev": {"collection": "dev"}, "start_model": "stage1.json",
        "sources": {"unlabelled": {"queries": "pool/queries.jsonl", "corpus": "pool/corpus.jsonl"}},
        "train": {"learning_rate": 3e-5, "teacher": "all-mpnet-base-v2"},
    })
    assert check_recipe(recipe, data)["start_model"] == "stage1.json"


@pytest.mark.parametrize("change, error, words", [
    ({"train": {"learning_rat": 1e-5}}, InvalidInputError, "learning_rat"),
    ({"finetune": {"collection": "dev", "train": {"max_step": 5}}}, InvalidInputError, "max_step"),
    ({"sources": {"sqaud": {}}}, InvalidInputError, "sqaud"),
    ({"start_model": "missing-stage.json"}, DataFormatError, "missing-stage.json"),
    ({"dev": {"collection": "trec-dl99"}}, DataFormatError, "trec-dl99"),
    ({"sources": ["squad"]}, DataFormatError, "sources"),
    ({"train": [1, 2]}, DataFormatError, "train"),
    ({"sources": {"unlabelled": {"queries": "pool/nope.jsonl", "corpus": "pool/corpus.jsonl"}}},
     DataFormatError, "nope.jsonl"),
    ({"lexical": {"corpus": "pool/nope.jsonl"}}, DataFormatError, "nope.jsonl"),
    ({"lexical": "pool/corpus.jsonl"}, DataFormatError, "lexical"),
    ({"storage": {"share_embeddings": True}}, InvalidInputError, "storage"),
    ({"bi_encoder_distill": {"train": {"learning_rat": 1e-5}}}, InvalidInputError, "learning_rat"),
    ({"bi_encoder_distill": {"held_out_half": 2}}, InvalidInputError, "held_out_half"),
    ({"bi_encoder_distill": {"held_out_half": 0}, "finetune": {"collection": "dev"}}, InvalidInputError, "finetune"),
    ({"bi_encoder_distill": {"corpora": ["pool/nope.jsonl"]}}, DataFormatError, "nope.jsonl"),
])
def test_a_broken_recipe_fails_before_training(tmp_path, change, error, words):
    data = _data_root(tmp_path)
    recipe = _write(tmp_path / "recipe.json", {"dev": {"collection": "dev"}, "sources": {"squad": {}}, **change})
    with pytest.raises(error, match=words):
        check_recipe(recipe, data)
    with pytest.raises(error, match=words):  # run_recipe checks first: nothing is trained or written
        run_recipe(recipe, tmp_path / "model", data, progress=False)
    assert not (tmp_path / "model").exists()


def test_unreadable_recipe_and_missing_data_folder(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="cannot read recipe"):
        check_recipe(tmp_path / "bad.json", tmp_path)
    recipe = _write(tmp_path / "recipe.json", {"dev": {"collection": "dev"}})
    with pytest.raises(DataFormatError, match="data folder"):
        check_recipe(recipe, tmp_path / "no-such-folder")
    for broken in ({"sources": {"squad": {}}}, {"dev": "trec-dl21-passage"}, {"dev": {"depth": 30}}, []):
        _write(tmp_path / "nodev.json", broken)
        with pytest.raises(DataFormatError, match="dev"):
            check_recipe(tmp_path / "nodev.json", tmp_path)


def test_a_valid_distillation_recipe_passes(tmp_path):
    data = _data_root(tmp_path)
    recipe = _write(tmp_path / "recipe.json", {
        "dev": {"collection": "dev"}, "lexical": {"corpus": "pool/corpus.jsonl"},
        "bi_encoder_distill": {"queries": ["pool/queries.jsonl"], "corpora": ["pool/corpus.jsonl"], "held_out_half": 1,
                               "train": {"max_minutes": 5, "teacher": "all-mpnet-base-v2"}},
        "storage": {"share_word_embeddings": "all-MiniLM-L6-v2", "pack_bi_encoder": True},
    })
    assert check_recipe(recipe, data)["bi_encoder_distill"]["held_out_half"] == 1


def test_dev_halves_split_the_queries_and_the_held_out_candidates_are_not_trained_on(tmp_path):
    from rerankit.training.recipe import TrecDevSet, distillation_texts, query_half

    dev = tmp_path / "data" / "dev"
    (dev / "qrels").mkdir(parents=True)
    (dev / "runs").mkdir()
    qids = [f"q{i}" for i in range(12)]
    (dev / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": f"query {q}"}) + "\n" for q in qids))
    (dev / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"{q}d{k}", "title": "", "text": f"passage {q} {k}"})
                                              + "\n" for q in qids for k in range(3)))
    (dev / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{q}d2\t1\n" for q in qids))
    (dev / "runs" / "bm25.top100.trec").write_text("".join(f"{q} Q0 {q}d{k} {k + 1} {3 - k} bm25\n"
                                                           for q in qids for k in range(2)))
    halves = [TrecDevSet(dev, depth=100, half=h) for h in (0, 1)]
    assert sorted(halves[0].qids + halves[1].qids) == sorted(qids) and halves[0].qids and halves[1].qids
    assert all(query_half(q) == 0 for q in halves[0].qids)
    texts = distillation_texts({"corpora": ["dev/corpus.jsonl"], "queries": ["dev/queries.jsonl"]}, tmp_path / "data",
                               halves[0])
    held = {f"passage {q} {k}" for q in halves[0].qids for k in range(3)}  # candidates (k < 2) and judged (k = 2)
    assert not held & set(texts)
    assert {f"passage {q} {k}" for q in halves[1].qids for k in range(3)} <= set(texts)
    assert {f"query {q}" for q in qids} <= set(texts)  # queries are texts too (never their judgments)
