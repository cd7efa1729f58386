"""Training: the jsonl format, negative mining, and a tiny end-to-end run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rerankit import DataFormatError, load_reranker
from rerankit.cli import main
from rerankit.io import publish_directory
from rerankit.training.data import TrainingGroup, mine_bm25_negatives, read_training_jsonl, split_dev

GROUPS = [
    {"query": "how do volcanoes erupt", "positive": "Volcanoes erupt when magma rises through the crust and pressure forces it out.",
     "negatives": ["The stock market closed higher on Friday.", "Penguins live in the southern hemisphere.", "Bread rises because yeast produces gas."]},
    {"query": "what do koalas eat", "positive": "Koalas feed almost only on eucalyptus leaves.",
     "negatives": ["The violin has four strings.", "Magma is molten rock beneath the surface.", "Chess openings have names like the Sicilian."]},
    {"query": "who painted the mona lisa", "positive": "The Mona Lisa was painted by Leonardo da Vinci in the early 1500s.",
     "negatives": ["Koalas sleep up to twenty hours a day.", "A marathon is 42.195 kilometres long.", "Copper conducts electricity well."]},
    {"query": "how long is a marathon", "positive": "A marathon race covers 42.195 kilometres.",
     "negatives": ["Leonardo also designed flying machines.", "Eucalyptus oil has a strong smell.", "The Pacific is the largest ocean."]},
    {"query": "why does bread rise", "positive": "Bread dough rises because yeast ferments sugar into carbon dioxide gas.",
     "negatives": ["Volcanic ash can disrupt flights.", "Violins are tuned in fifths.", "Copper is used in wiring."]},
    {"query": "what is the largest ocean", "positive": "The Pacific Ocean is the largest and deepest ocean on Earth.",
     "negatives": ["A marathon commemorates a Greek messenger.", "Chess is played on an 8x8 board.", "Penguins cannot fly."]},
]


def write_groups(path, groups=GROUPS):
    path.write_text("".join(json.dumps(g) + "\n" for g in groups))
    return path


def test_read_training_jsonl_accepts_both_positive_forms(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n\n" +
                    json.dumps({"query": "q2", "positives": ["a", "b"], "negatives": ["n"]}) + "\n")
    groups = read_training_jsonl(path)
    assert [(g.query, g.positives, g.negatives) for g in groups] == [("q", ["p"], []), ("q2", ["a", "b"], ["n"])]


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "invalid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"positive": "p"}', "'query'"),
    ('{"query": "q"}', "positive"),
    ('{"query": "q", "positive": "p", "negatives": [1]}', "negatives"),
])
def test_malformed_training_lines_name_the_line(tmp_path, bad_line, message):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "ok", "positive": "fine"}) + "\n" + bad_line + "\n")
    with pytest.raises(DataFormatError) as info:
        read_training_jsonl(path)
    assert f"{path}:2:" in str(info.value) and message in str(info.value)


def test_bm25_mining_adds_hard_negatives_and_never_the_positive():
    groups = [TrainingGroup("volcano magma eruption", ["magma erupts from a volcano"], [])]
    corpus = ["magma erupts from a volcano", "volcano tourism in Iceland", "magma chambers", "cats", "dogs", "tea"]
    mine_bm25_negatives(groups, corpus, per_query=2, depth=3)
    assert len(groups[0].negatives) == 2  # only two passages match the query at all
    assert len(groups[0].negatives) == 2
    assert "magma erupts from a volcano" not in groups[0].negatives
    assert set(groups[0].negatives) <= {"volcano tourism in Iceland", "magma chambers"}


def test_split_dev_is_seeded_and_disjoint():
    groups = [TrainingGroup(f"q{i}", ["p"], ["n"]) for i in range(20)]
    train, dev = split_dev(groups, 0.2, seed=1)
    assert len(dev) == 4 and len(train) == 16
    assert not {g.query for g in train} & {g.query for g in dev}
    assert [g.query for g in split_dev(groups, 0.2, seed=1)[1]] == [g.query for g in dev]


def test_publish_directory_replaces_old_folder_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    publish_directory(staged, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.slow
def test_train_cli_tiny_set_gives_loadable_model_ranking_positives_first(tmp_path, capsys):
    data = write_groups(tmp_path / "train.jsonl")
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(data), "--out", str(out), "--epochs", "12", "--lr", "1e-4", "--group-size", "4",
              "--batch-groups", "2", "--mine-negatives", "0", "--dev-fraction", "0", "--max-length", "64", "--quiet"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 36 and (out / "config.json").is_file() and (out / "training.json").is_file()
    reranker = load_reranker(str(out))
    for group in GROUPS:
        scores = reranker.score(group["query"], [group["positive"], *group["negatives"]])
        assert scores[0] > scores[1:].max(), (group["query"], scores)
    import torch

    # training flushes denormals to zero while it runs, and only then: the process gets them back
    assert torch.tensor([1e-40], dtype=torch.float32).mul(1.0).item() != 0.0


def test_train_cli_rejects_missing_and_malformed_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing.jsonl" in err[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{oops\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(bad), "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2 and ":2:" in capsys.readouterr().err


def test_bm25_mining_tops_up_with_random_passages_when_few_match():
    groups = [TrainingGroup("volcano", ["volcano facts"], [])]
    mine_bm25_negatives(groups, ["volcano facts", "volcano tours", "cats", "dogs", "tea"], per_query=3)
    assert groups[0].negatives[0] == "volcano tours"
    assert len(groups[0].negatives) == 3 and len(set(groups[0].negatives)) == 3


def test_group_loss_is_listwise_cross_entropy_over_the_fused_score():
    import torch

    from rerankit.training.trainer import TrainConfig, group_loss

    logits = torch.zeros(2, 4, requires_grad=True)
    cosines = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.8, 0.3, 0.2, 0.6]])
    plain = group_loss(logits, cosines, TrainConfig())
    assert plain.item() == pytest.approx(float(np.log(4)))  # uniform logits: -log(1/4); no prior, cosines unread
    plain.backward()
    assert (logits.grad[:, 0] < 0).all() and (logits.grad[:, 1:] > 0).all()  # the positive up, the negatives down
    with_prior = group_loss(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), TrainConfig(bi_encoder_prior=2.0))
    assert with_prior.item() == pytest.approx(float(np.log(1 + np.exp(-2.0))), rel=1e-5)


@pytest.mark.slow
def test_a_loss_fn_replaces_the_loss_and_sees_each_groups_query_and_texts(tmp_path, tiny_cross_encoder_dir):
    from rerankit.training.trainer import TrainConfig, group_loss, train_cross_encoder

    groups = read_training_jsonl(write_groups(tmp_path / "train.jsonl"))
    config = TrainConfig(base_model=str(tiny_cross_encoder_dir), max_length=32, group_size=3, groups_per_batch=2,
                         max_steps=3, bf16=False, threads=1)
    calls = []

    def loss_fn(logits, cosines, queries, texts):
        calls.append((tuple(logits.shape), cosines, queries, texts))
        return group_loss(logits, cosines, config)

    result = train_cross_encoder(groups, tmp_path / "model", config, progress=False, loss_fn=loss_fn)
    assert result.steps == 3 and len(calls) == 3
    positives = {g.query: set(g.positives) for g in groups}
    for shape, cosines, queries, texts in calls:
        assert shape == (2, 3) and cosines is None  # no bi_encoder_prior: no cosines
        assert len(queries) == len(texts) == 2 and all(len(t) == 3 for t in texts)
        assert all(t[0] in positives[q] and not set(t[1:]) & positives[q] for q, t in zip(queries, texts))


@pytest.mark.slow
def test_the_best_dev_checkpoint_is_published_and_early_stopping_ends_the_run(tmp_path, tiny_cross_encoder_dir):
    from rerankit.training.trainer import TrainConfig, group_mrr_evaluator, train_cross_encoder

    groups = read_training_jsonl(write_groups(tmp_path / "train.jsonl"))
    probe = ("how do volcanoes erupt", [GROUPS[0]["positive"], *GROUPS[0]["negatives"]])
    scripted = iter([0.1, 0.3, 0.9, 0.2, 0.9, 0.5, 0.4])  # the dev values, in the order of the evaluations
    seen = []  # the probe's scores at each evaluation

    def evaluate(score_pairs):
        seen.append(score_pairs(*probe))
        return next(scripted)

    config = TrainConfig(base_model=str(tiny_cross_encoder_dir), max_length=32, group_size=3, groups_per_batch=2,
                         learning_rate=3e-3, max_steps=12, eval_every=2, patience=10, bf16=False, threads=1)
    result = train_cross_encoder(groups, tmp_path / "model", config, evaluate, progress=False)
    assert [(h["step"], h["dev"]) for h in result.history] == list(zip(range(0, 13, 2), [0.1, 0.3, 0.9, 0.2, 0.9, 0.5,
                                                                                        0.4]))
    assert (result.best_step, result.best_dev, result.steps) == (4, 0.9, 12)  # the first of two equal values
    published = load_reranker(str(tmp_path / "model")).score(*probe)  # the logits' sigmoid
    step4, last = (1 / (1 + np.exp(-seen[i])) for i in (2, -1))
    assert np.allclose(published, step4, atol=1e-5) and not np.allclose(published, last, atol=1e-3)
    stored = json.loads((tmp_path / "model" / "training.json").read_text())
    assert stored["best_step"] == 4 and stored["history"] == result.history

    # nothing can improve with both learning rates at zero: the start weights stay best and the run stops
    # after `patience` evaluations that did not beat the first counted one
    evaluate = group_mrr_evaluator(groups[:3])
    frozen = TrainConfig(base_model=str(tiny_cross_encoder_dir), max_length=32, group_size=3, groups_per_batch=2,
                         learning_rate=0.0, head_learning_rate=0.0, max_steps=40, eval_every=2, patience=2,
                         bf16=False, threads=1)
    result = train_cross_encoder(groups, tmp_path / "frozen", frozen, evaluate, progress=False)
    assert result.best_step == 0 and result.steps == 6 and len({h["dev"] for h in result.history}) == 1


@pytest.mark.slow
def test_a_failed_run_leaves_no_work_folder_and_no_model(tmp_path, tiny_cross_encoder_dir):
    from rerankit.training.trainer import TrainConfig, train_cross_encoder

    groups = read_training_jsonl(write_groups(tmp_path / "train.jsonl"))
    config = TrainConfig(base_model=str(tiny_cross_encoder_dir), max_length=32, group_size=3, groups_per_batch=2,
                         max_steps=3, bf16=False, threads=1)

    def broken_loss(logits, cosines, queries, texts):
        raise RuntimeError("loss failed")

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="loss failed"):
        train_cross_encoder(groups, out / "model", config, progress=False, loss_fn=broken_loss)
    assert list(out.iterdir()) == []  # neither the trainer's checkpoints nor a half-written model
