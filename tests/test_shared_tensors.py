"""Model folders stored without the tensors another model carries (``rerankit.shared_tensors``), and the
bf16 embedder over a sentence-transformers folder with a Dense projection (a distilled bi-encoder's layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rerankit.encoders import sentence_transformer_modules
from rerankit.shared_tensors import SHARED_FILE, complete_folder, pack_into_parent, strip_shared

ADJECTIVES = ("red", "blue", "green", "small", "large", "old", "quiet", "bright", "heavy", "cold")
NOUNS = ("car", "house", "tree", "river", "song", "book", "horse", "lamp", "city", "garden")
VERBS = ("stands", "moves", "waits", "shines", "falls")
# more texts than the student has dimensions (a distillation's least-squares start cannot fit them exactly)
TEXTS = [f"the {a} {n} {v}" for a in ADJECTIVES for n in NOUNS for v in VERBS]
WORDS = "embeddings.word_embeddings.weight"


def tiny_student(folder: Path) -> Path:
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
def projected(tmp_path_factory):
    """(a tiny student with a random 16-d Dense projection, the student without it): the same word embeddings."""
    import torch
    from sentence_transformers import SentenceTransformer

    root = tmp_path_factory.mktemp("projected")
    start = tiny_student(root / "start")
    models = sentence_transformer_modules()
    base = SentenceTransformer(str(start), device="cpu")
    torch.manual_seed(1)
    dense = models.Dense(64, 16, bias=False, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[base[0], base[1], dense, models.Normalize()], device="cpu").save(str(root / "model"))
    return root / "model", start


def test_the_bf16_embedder_applies_a_dense_projection(tmp_path):
    """all-MiniLM-L6-v2 with a random orthogonal projection: rerankit's fused bf16 path against sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer

    from rerankit.encoders import embed, packaged_minilm_path

    models = sentence_transformer_modules()
    base = SentenceTransformer(packaged_minilm_path(), device="cpu")
    dense = models.Dense(384, 32, bias=True, activation_function=torch.nn.Identity())
    torch.manual_seed(0)
    dense.linear.weight.data = torch.linalg.qr(torch.randn(384, 32))[0].T.contiguous()
    dense.linear.bias.data = torch.randn(32) * 0.01
    SentenceTransformer(modules=[base[0], base[1], dense, models.Normalize()], device="cpu").save(str(tmp_path / "m"))
    reference = SentenceTransformer(str(tmp_path / "m"), device="cpu").encode(TEXTS[:40])
    fused = embed(TEXTS[:40], str(tmp_path / "m"))
    assert fused.shape == (40, 32)
    assert np.min(np.sum(fused * reference, axis=1)) > 0.99


def test_shared_word_embeddings_are_stripped_and_restored(projected, tmp_path):
    import shutil

    from sentence_transformers import SentenceTransformer

    folder, start = projected
    stored = tmp_path / "stored"
    shutil.copytree(folder, stored)
    strip_shared(stored, {WORDS: (str(start), WORDS)})  # the words are the start model's
    assert (stored / "model.safetensors").stat().st_size < (folder / "model.safetensors").stat().st_size / 1.5
    assert json.loads((stored / SHARED_FILE).read_text())["files"] == {"model.safetensors": {WORDS: [str(start), WORDS]}}
    restored = complete_folder(stored, cache_dir=tmp_path / "cache")
    assert complete_folder(stored, cache_dir=tmp_path / "cache") == restored  # built once
    a = SentenceTransformer(str(folder), device="cpu").encode(TEXTS)
    b = SentenceTransformer(restored, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_nested_model_packed_into_its_parent_file_loads_the_same(projected, tmp_path):
    import shutil

    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    folder, start = projected
    parent = tmp_path / "parent"
    shutil.copytree(start, parent)  # an outer model with its own weights file
    shutil.copytree(folder, parent / "inner")
    strip_shared(parent / "inner", {WORDS: (str(start), WORDS)})
    pack_into_parent(parent / "inner")
    assert sorted(p.name for p in parent.rglob("*.safetensors")) == ["model.safetensors"]  # one weights file
    outer = load_file(str(parent / "model.safetensors"))
    assert "inner/2_Dense/model.safetensors::linear.weight" in outer and WORDS in outer
    inner = complete_folder(parent / "inner", cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(SentenceTransformer(inner, device="cpu").encode(TEXTS),
                               SentenceTransformer(str(folder), device="cpu").encode(TEXTS), atol=1e-5)
    outer_done = complete_folder(parent, cache_dir=tmp_path / "cache")  # the outer model sheds the inner's tensors
    assert set(load_file(str(Path(outer_done) / "model.safetensors"))) == set(load_file(str(start / "model.safetensors")))


def test_a_changed_tensor_cannot_be_declared_shared(projected, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    _, start = projected
    stored = tmp_path / "stored"
    shutil.copytree(start, stored)
    weights = load_file(str(stored / "model.safetensors"))
    weights[WORDS] = weights[WORDS] + 0.01  # as if the word embeddings had trained
    save_file(weights, str(stored / "model.safetensors"))
    with pytest.raises(ValueError, match="cannot be shared"):
        strip_shared(stored, {WORDS: (str(start), WORDS)})
    assert not (stored / SHARED_FILE).exists()


def test_a_folder_without_shared_tensors_is_used_as_it_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert complete_folder(tmp_path) == str(tmp_path)
