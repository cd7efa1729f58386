"""experiments/bi_encoder_distill.py (not part of the package): distilling a teacher's embedding space into
a small student, the held-out dev half, and a recipe's "bi_encoder_distill" stage end to end.
(Storing the result without shared tensors is the package's: tests/test_shared_tensors.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bi_encoder_distill import BiEncoderDistillConfig, dev_half, distill_bi_encoder, distillation_texts, query_half  # noqa: E402
from test_shared_tensors import ADJECTIVES, NOUNS, TEXTS, VERBS, tiny_student

from rerankit.errors import InvalidInputError


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A tiny random student trained 40 steps towards a 16-d teacher, with its dev history."""
    root = tmp_path_factory.mktemp("distill")
    start = tiny_student(root / "start")
    rng = np.random.default_rng(0)
    words = {w: rng.normal(size=16) for w in (*ADJECTIVES, *NOUNS, *VERBS)}
    # a teacher whose space multiplies the adjective's and the noun's vectors: no linear map of a
    # bag-of-words embedding fits it, so the student's layers have to learn
    teacher = np.stack([words[a] * words[n] + words[v] for a, n, v in (t.split()[1:] for t in TEXTS)])
    teacher = (teacher / np.linalg.norm(teacher, axis=1, keepdims=True)).astype(np.float32)

    def closeness(embed) -> float:  # minus the mean squared distance to the teacher
        return -float(((embed(TEXTS) - teacher) ** 2).sum(1).mean())

    config = BiEncoderDistillConfig(student=str(start), batch_size=32, max_steps=120, eval_every=60,
                                    learning_rate=5e-4, projection_learning_rate=1e-3, warmup_steps=20,
                                    max_minutes=None, threads=2)
    result = distill_bi_encoder(TEXTS, teacher, root / "student", config, closeness)
    return root / "student", teacher, result, start


def test_every_checkpoint_is_measured_and_the_best_is_kept(distilled):
    folder, _, result, _ = distilled
    devs = [h["dev"] for h in result.history]
    assert [h["step"] for h in result.history] == [0, 60, 120] and result.steps == 120
    assert len(set(devs)) == 3  # the layers and the projection did change between checkpoints
    assert result.best_dev == max(devs) and result.best_step == result.history[devs.index(max(devs))]["step"]
    assert json.loads((folder / "distillation.json").read_text())["best_step"] == result.best_step


def test_the_saved_student_loads_and_embeds_in_the_teacher_space(distilled):
    from sentence_transformers import SentenceTransformer

    folder, teacher, result, _ = distilled
    model = SentenceTransformer(str(folder), device="cpu")
    vectors = model.encode(TEXTS, normalize_embeddings=True)
    assert vectors.shape == (len(TEXTS), 16) and len(model) == 4 and type(model[2]).__name__ == "Dense"
    assert -float(((vectors - teacher) ** 2).sum(1).mean()) == pytest.approx(result.best_dev, abs=0.02)


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(InvalidInputError):
        distill_bi_encoder(TEXTS, np.zeros((3, 4)), tmp_path / "x")
    with pytest.raises(InvalidInputError):
        distill_bi_encoder([], np.zeros((0, 4)), tmp_path / "x")


def _dev_collection(dev: Path) -> list[str]:
    """Twelve queries over three passages each (two in the BM25 run, the third judged); their ids."""
    (dev / "qrels").mkdir(parents=True)
    (dev / "runs").mkdir()
    qids = [f"q{i}" for i in range(12)]
    (dev / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": f"query {q}"}) + "\n" for q in qids))
    (dev / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"{q}d{k}", "title": "", "text": f"passage {q} {k}"})
                                              + "\n" for q in qids for k in range(3)))
    (dev / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{q}d2\t1\n" for q in qids))
    (dev / "runs" / "bm25.top100.trec").write_text("".join(f"{q} Q0 {q}d{k} {k + 1} {3 - k} bm25\n"
                                                           for q in qids for k in range(2)))
    return qids


def test_dev_halves_split_the_queries_and_the_held_out_candidates_are_not_trained_on(tmp_path):
    from rerankit.training.recipe import TrecDevSet

    dev = tmp_path / "data" / "dev"
    qids = _dev_collection(dev)
    halves = [dev_half(TrecDevSet(dev, depth=100), h) for h in (0, 1)]
    assert sorted(halves[0].qids + halves[1].qids) == sorted(qids) and halves[0].qids and halves[1].qids
    assert all(query_half(q) == 0 for q in halves[0].qids)
    assert all(len(ids) == len(texts) == 2 for ids, texts in zip(halves[0].doc_ids, halves[0].texts))
    assert halves[0].queries == [f"query {q}" for q in halves[0].qids]
    texts = distillation_texts({"corpora": ["dev/corpus.jsonl"], "queries": ["dev/queries.jsonl"]}, tmp_path / "data",
                               halves[0])
    held = {f"passage {q} {k}" for q in halves[0].qids for k in range(3)}  # candidates (k < 2) and judged (k = 2)
    assert not held & set(texts)
    assert {f"passage {q} {k}" for q in halves[1].qids for k in range(3)} <= set(texts)
    assert {f"query {q}" for q in qids} <= set(texts)  # queries are texts too (never their judgments)


@pytest.mark.slow
def test_a_recipe_with_a_distilled_bi_encoder_writes_one_weights_file_that_loads(tmp_path, tiny_cross_encoder_dir):
    from run_experiment import run_experiment

    from rerankit import load_reranker

    root = tmp_path / "data"
    _dev_collection(root / "dev")
    student = tiny_student(tmp_path / "student")
    recipe = {
        "start_model": str(tiny_cross_encoder_dir), "dev": {"collection": "dev", "depth": 2, "fusion_depth": 2},
        "train": {"max_length": 32, "bf16": False, "threads": 1}, "lexical": {"corpus": "dev/corpus.jsonl"},
        "bi_encoder_distill": {"queries": ["dev/queries.jsonl"], "corpora": ["dev/corpus.jsonl"], "held_out_half": 1,
                               "train": {"student": str(student), "teacher": "all-MiniLM-L6-v2", "batch_size": 8,
                                         "max_steps": 4, "eval_every": 2, "max_minutes": None, "threads": 1}},
        "storage": {"pack_bi_encoder": True},
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    summary = run_experiment(tmp_path / "recipe.json", tmp_path / "model", data_root=root, progress=False)
    model = tmp_path / "model"
    stage = summary["bi_encoder_distill"]
    assert stage["held_out_half"] == 1 and stage["steps"] == 4 and [h["step"] for h in stage["history"]] == [0, 2, 4]
    assert stage["dev_queries"] == sum(query_half(f"q{i}") == 1 for i in range(12))
    assert summary["fusion_fitted_on"].endswith("query half 1)") and summary["fusion"]["bi_encoder"] == "bi_encoder"
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*.safetensors")) == ["model.safetensors"]
    assert (model / "bi_encoder" / "config.json").is_file()
    scores = load_reranker(str(model)).score("query q3", ["passage q3 2", "passage q5 0"])
    assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all()
