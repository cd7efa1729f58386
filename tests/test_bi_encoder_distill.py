"""Distilling a teacher's embedding space into all-MiniLM-L6-v2 (storing it without shared tensors:
tests/test_shared_tensors.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rerankit.encoders import sentence_transformer_modules
from rerankit.errors import InvalidInputError
from rerankit.training.bi_encoder_distill import BiEncoderDistillConfig, distill_bi_encoder

ADJECTIVES = ("red", "blue", "green", "small", "large", "old", "quiet", "bright", "heavy", "cold")
NOUNS = ("car", "house", "tree", "river", "song", "book", "horse", "lamp", "city", "garden")
VERBS = ("stands", "moves", "waits", "shines", "falls")
# more texts than the student has dimensions, so the starting least-squares projection cannot fit them exactly
TEXTS = [f"the {a} {n} {v}" for a in ADJECTIVES for n in NOUNS for v in VERBS]


def _tiny_student(folder):
    """A sentence-transformers folder: a random 2-layer BERT (width 64), mean pooling, normalization."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rerankit.encoders import packaged_minilm_path

    models = sentence_transformer_modules()
    torch.manual_seed(0)
    hf = folder.with_name(folder.name + "-hf")
    BertModel(BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64)).save_pretrained(hf)
    AutoTokenizer.from_pretrained(packaged_minilm_path()).save_pretrained(hf)
    transformer = models.Transformer(str(hf), max_seq_length=32)
    SentenceTransformer(modules=[transformer, models.Pooling(64, "mean"), models.Normalize()]).save(str(folder))
    return folder


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A tiny random student trained 40 steps towards a 16-d teacher, with its dev history."""
    root = tmp_path_factory.mktemp("distill")
    start = _tiny_student(root / "start")
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
