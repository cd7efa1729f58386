"""experiments/judged_training.py (not part of the package): fine-tuning on graded judgments, groups per
grade, and k-fold step selection with out-of-fold scores; run as a recipe's "finetune" stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from judged_training import JudgedCollection, KFoldResult, kfold_finetune, out_of_fold_pairs  # noqa: E402

from rerankit.training.trainer import TrainConfig

TOPICS = ["volcano", "pasta", "tides", "koala", "violin", "copper"]


def make_collection(root: Path) -> Path:
    """Six queries; per query a grade-3, a grade-1 and a grade-0 passage, one unjudged passage in the run,
    and one judged passage outside the corpus (only in the full qrels)."""
    (root / "qrels").mkdir(parents=True)
    (root / "runs").mkdir()
    corpus, qrels, full, run = [], [], [], []
    for i, topic in enumerate(TOPICS):
        q = f"q{i}"
        docs = {f"{q}-best": (f"All about the {topic}: a complete answer about the {topic}.", 3),
                f"{q}-some": (f"The {topic} is mentioned here once.", 1),
                f"{q}-none": ("An unrelated passage about taxes.", 0),
                f"{q}-unjudged": ("Another unrelated passage about weather.", None)}
        for rank, (doc_id, (text, grade)) in enumerate(docs.items(), start=1):
            corpus.append({"_id": doc_id, "title": "", "text": text})
            run.append(f"{q} Q0 {doc_id} {rank} {10 - rank} bm25")
            if grade is not None:
                qrels.append(f"{q}\t{doc_id}\t{grade}")
        full.append(f"{q}\t{q}-elsewhere\t2")
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"what is a {t}"}) + "\n"
                                                for i, t in enumerate(TOPICS)))
    header = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "test.tsv").write_text(header + "\n".join(qrels) + "\n")
    (root / "qrels" / "test-full.tsv").write_text(header + "\n".join(qrels + full) + "\n")
    (root / "runs" / "bm25.top100.trec").write_text("\n".join(run) + "\n")
    return root


def test_groups_pit_each_grade_against_lower_grades(tmp_path):
    collection = JudgedCollection.read(make_collection(tmp_path / "c"))
    assert collection.qids() == [f"q{i}" for i in range(6)]
    assert "q0-elsewhere" in collection.qrels["q0"] and "q0-elsewhere" not in collection.pool_qrels["q0"]
    groups = collection.groups(["q0"])
    by_source = {g.source: g for g in groups}
    assert set(by_source) == {"judged-grade3", "judged-grade1"}
    top = by_source["judged-grade3"]
    assert top.positives == ["All about the volcano: a complete answer about the volcano."]
    # grade 3 beats grade 1, grade 0 and the unjudged pool passage
    assert len(top.negatives) == 3 and "Another unrelated passage about weather." in top.negatives
    low = by_source["judged-grade1"]
    assert low.negatives == ["An unrelated passage about taxes."]  # unjudged passages are not below grade 1


@pytest.mark.slow
def test_kfold_picks_a_step_and_scores_every_query_out_of_fold(tmp_path, tiny_cross_encoder_dir):
    collection = JudgedCollection.read(make_collection(tmp_path / "c"))
    config = TrainConfig(base_model=str(tiny_cross_encoder_dir), max_length=32, group_size=3, groups_per_batch=2,
                         max_steps=4, eval_every=2, learning_rate=1e-3, bf16=False, threads=1)
    result = kfold_finetune(collection, config, tmp_path / "work", folds=3, depth=4)
    assert sorted(result.dev_by_step) == [0, 2, 4]
    assert result.best_step in result.dev_by_step
    assert sorted(q for fold in result.folds for q in fold) == collection.qids()  # each query held out once
    assert set(result.out_of_fold) == set(collection.qids())
    for qid, scores in result.out_of_fold.items():
        assert scores.shape == (4,) and np.isfinite(scores).all()
    assert all(0.0 <= v <= 1.0 for v in result.dev_by_step.values())


@pytest.mark.slow
def test_recipe_with_start_model_and_finetune_writes_a_fused_model(tmp_path, tiny_cross_encoder_dir):
    from run_experiment import run_experiment

    from rerankit import load_reranker

    root = tmp_path / "data"
    make_collection(root / "judged")
    recipe = {
        "seed": 0, "start_model": str(tiny_cross_encoder_dir),
        "dev": {"collection": "judged", "depth": 4, "fusion_depth": 4},
        "train": {"max_length": 32, "group_size": 3, "groups_per_batch": 2, "learning_rate": 1e-3,
                  "bf16": False, "threads": 1},
        "finetune": {"folds": 3, "depth": 4, "train": {"max_steps": 4, "eval_every": 2}},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    summary = run_experiment(path, tmp_path / "model", data_root=root, progress=False)
    assert summary["finetune_folds"] == 3 and set(summary["finetune_dev_by_step"]) == {"0", "2", "4"}
    assert summary["fusion_fitted_on"].startswith("out-of-fold" if summary["finetune_best_step"] else "the final")
    saved = json.loads((tmp_path / "model" / "recipe_summary.json").read_text())
    assert saved["finetune_best_step"] == summary["finetune_best_step"]
    reranker = load_reranker(str(tmp_path / "model"))
    scores = reranker.score("what is a volcano", ["All about the volcano.", "taxes"])
    assert scores.shape == (2,) and ((0 <= scores) & (scores <= 1)).all()


def test_out_of_fold_pairs_take_the_prior_out_of_the_held_out_scores(tmp_path):
    from rerankit.encoders import embed

    collection = JudgedCollection.read(make_collection(tmp_path / "judged"))
    doc_ids = {"q0": ["q0-best", "q0-none"], "q1": ["q1-some", "q1-best"]}
    logits = {"q0": np.array([2.0, -1.0]), "q1": np.array([0.5, 0.25])}
    cosines = {q: embed([collection.queries[q], *[collection.texts[d] for d in ids]])[1:]
               @ embed([collection.queries[q]])[0] for q, ids in doc_ids.items()}
    held_out = {q: logits[q] + 20.0 * cosines[q] for q in doc_ids}  # what the trainer's scorer returns
    result = KFoldResult(50, {0: 0.1, 50: 0.2}, held_out, doc_ids, [["q0"], ["q1"]])
    pairs = out_of_fold_pairs(result, collection, TrainConfig(bi_encoder_prior=20.0))
    assert pairs.qids == ["q0", "q1"] and pairs.doc_ids == [doc_ids["q0"], doc_ids["q1"]]
    for got, q in zip(pairs.ce, pairs.qids):
        np.testing.assert_allclose(got, logits[q], atol=1e-4)
    for got, q in zip(pairs.cos, pairs.qids):
        np.testing.assert_allclose(got, cosines[q], atol=1e-5)
