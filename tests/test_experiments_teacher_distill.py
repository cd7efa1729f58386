"""experiments/teacher_distill.py (not part of the package): distilling a bi-encoder's ordering into the
cross-encoder through the trainer's ``loss_fn``, pseudo-labels for unlabelled query pools, and a recipe
with a teacher end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from teacher_distill import DistillOptions, distillation_loss, pseudo_label, split_options, unlabelled_groups  # noqa: E402

from rerankit.training.data import TrainingGroup
from rerankit.training.trainer import TrainConfig


class _Cosines:
    """A stand-in for ``FrozenCosines``: fixed cosines per query."""

    def __init__(self, rows: dict[str, list[float]]) -> None:
        self.rows = rows

    def cosines(self, query, texts):
        return np.array(self.rows[query], dtype=np.float32)


def test_distillation_to_the_bi_encoder_adds_a_kl_term_on_the_logits():
    import torch

    logits = torch.zeros(2, 4, requires_grad=True)
    cosines = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.8, 0.3, 0.2, 0.6]])
    config = TrainConfig()
    loss_fn = distillation_loss(config, DistillOptions(distill_weight=1.0, distill_temperature=0.1),
                                _Cosines({"a": cosines[0].tolist(), "b": cosines[1].tolist()}))
    loss = loss_fn(logits, None, ["a", "b"], [["p", "n1", "n2", "n3"]] * 2)
    teacher = torch.softmax(cosines / 0.1, dim=1)
    expected_kl = float((teacher * (teacher.log() - np.log(0.25))).sum(1).mean())
    assert loss.item() == pytest.approx(float(np.log(4)) + expected_kl, rel=1e-5)
    loss.backward()
    # descending the gradient raises the negatives the teacher prefers: column 2 over column 1 in row 0
    assert -logits.grad[0, 2] > -logits.grad[0, 1] and -logits.grad[1, 3] > -logits.grad[1, 2]


def test_teacher_distillation_matches_the_fused_score_to_the_teacher():
    import torch

    logits = torch.zeros(1, 3, requires_grad=True)
    cosines = torch.tensor([[0.5, 0.5, 0.0]])  # the student's prior
    config = TrainConfig(bi_encoder_prior=2.0)
    options = DistillOptions(teacher="a-teacher", distill_weight=1.0, distill_temperature=0.1)
    loss = distillation_loss(config, options, _Cosines({"q": [0.9, 0.1, 0.5]}))(logits, cosines, ["q"], [["p", "x", "y"]])
    student = torch.log_softmax(2.0 * cosines, dim=1)
    target = torch.softmax(torch.tensor([[0.9, 0.1, 0.5]]) / 0.1, dim=1)
    expected = float(-student[0, 0] + (target * (target.log() - student)).sum())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    # the teacher ranks column 2 above column 1 although the prior ties them the other way round
    assert -logits.grad[0, 2] > -logits.grad[0, 1]


def test_the_options_leave_the_recipes_train_section():
    train, options = split_options({"learning_rate": 3e-5, "teacher": "t", "distill_weight": 1.0})
    assert train == {"learning_rate": 3e-5} and options == DistillOptions("t", 1.0, 0.05)
    TrainConfig(**train)  # what is left is the package's


def test_pseudo_label_takes_the_teachers_best_passage_as_positive():
    groups = [TrainingGroup("q", [], ["a", "b", "c"], "unlabelled"), TrainingGroup("r", ["x"], ["y"]),
              TrainingGroup("s", [], ["only"])]
    scores = {"a": 0.1, "b": 0.7, "c": 0.3}
    labelled = pseudo_label(groups, lambda q, texts: np.array([scores[t] for t in texts]))
    assert labelled[0].positives == ["b"] and labelled[0].negatives == ["a", "c"]
    assert labelled[0].source == "unlabelled+pseudo"
    assert labelled[1] is groups[1] and labelled[2] is groups[2]  # labelled or too small: unchanged


def _pool(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queries.jsonl").write_text(
        '{"_id": "1", "text": "volcano eruption"}\n{"_id": "2", "text": "green tea"}\n')
    docs = ["volcano eruption facts", "volcano tours", "green tea brewing", "tea history", "cats", "dogs"]
    (folder / "corpus.jsonl").write_text("".join(
        f'{{"_id": "d{i}", "title": "", "text": "{t}"}}\n' for i, t in enumerate(docs)))
    return folder


def test_unlabelled_groups_pool_bm25_passages_of_the_corpus(tmp_path):
    _pool(tmp_path)
    groups = unlabelled_groups(tmp_path / "queries.jsonl", tmp_path / "corpus.jsonl", pool=2)
    by_query = {g.query: g for g in groups}
    assert set(by_query) == {"volcano eruption", "green tea"}
    assert all(not g.positives and g.source == "unlabelled" for g in groups)
    assert set(by_query["volcano eruption"].negatives) == {"volcano eruption facts", "volcano tours"}
    assert set(by_query["green tea"].negatives) == {"green tea brewing", "tea history"}


@pytest.mark.slow
def test_a_recipe_distilling_a_teacher_on_unlabelled_queries_writes_a_fused_model(tmp_path, tiny_cross_encoder_dir):
    from run_experiment import run_experiment
    from test_experiments_judged import make_collection

    from rerankit import load_reranker

    root = tmp_path / "data"
    make_collection(root / "judged")
    _pool(root / "pool")
    recipe = {
        "start_model": str(tiny_cross_encoder_dir), "dev": {"collection": "judged", "depth": 4, "fusion_depth": 4},
        "sources": {"unlabelled": {"queries": "pool/queries.jsonl", "corpus": "pool/corpus.jsonl", "pool": 3}},
        "train": {"max_length": 32, "group_size": 3, "groups_per_batch": 2, "max_steps": 2, "eval_every": 1,
                  "learning_rate": 1e-3, "bf16": False, "threads": 1, "bi_encoder_prior": 2.0,
                  "teacher": "all-MiniLM-L6-v2", "distill_weight": 1.0},
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    summary = run_experiment(tmp_path / "recipe.json", tmp_path / "model", data_root=root, progress=False)
    assert summary["groups"] == 2 and summary["steps"] == 2 and summary["pairs_seen"] == 12
    training = json.loads((tmp_path / "model" / "training.json").read_text())
    assert "teacher" not in training["config"] and training["config"]["bi_encoder_prior"] == 2.0
    assert summary["distillation"] == {"teacher": "all-MiniLM-L6-v2", "distill_weight": 1.0, "distill_temperature": 0.05}
    scores = load_reranker(str(tmp_path / "model")).score("what is a volcano", ["All about the volcano.", "taxes"])
    assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all()
