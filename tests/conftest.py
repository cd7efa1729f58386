"""Shared fixtures: tiny corpora written into tmp folders (everything offline)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rerankit.types import Document

# the training experiments (outside the package) import as top-level modules in their tests
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))

TINY_CORPUS = [
    {"_id": "cat", "title": "Cats", "text": "The domestic cat is a small carnivorous mammal that purrs and hunts mice."},
    {"_id": "dog", "title": "Dogs", "text": "Dogs are loyal companions, descended from wolves, and love to fetch sticks."},
    {"_id": "rust", "title": "Rust", "text": "Rust is a systems programming language focused on memory safety without a garbage collector."},
    {"_id": "python", "title": "Python", "text": "Python is a dynamically typed programming language popular for data science."},
    {"_id": "paris", "title": "Paris", "text": "Paris is the capital of France, famous for the Eiffel Tower and the Louvre museum."},
    {"_id": "tea", "title": "Tea", "text": "Green tea is brewed from unoxidized leaves of Camellia sinensis and contains caffeine."},
]


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Engine exports (ONNX files, completed model folders) go to a temporary cache, never the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RERANKIT_CACHE", str(tmp_path_factory.mktemp("rerankit-cache")))
    yield
    patch.undo()


def write_corpus(path: Path, records: list[dict]) -> Path:
    """Write ``records`` as a BEIR corpus.jsonl at ``path``."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def tiny_docs() -> list[Document]:
    return [Document(text=r["text"], title=r["title"], id=r["_id"]) for r in TINY_CORPUS]


@pytest.fixture
def tiny_corpus_jsonl(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl", TINY_CORPUS)


@pytest.fixture(scope="session")
def dense_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dense + BM25 index of ``TINY_CORPUS`` built once per session with the real all-MiniLM-L6-v2.

    Tests must treat it as read-only.
    """
    from rerankit.retrieval import build_index

    docs = [Document(text=r["text"], title=r["title"], id=r["_id"]) for r in TINY_CORPUS]
    return build_index(docs, tmp_path_factory.mktemp("dense_index") / "index", dense=True)


@pytest.fixture
def corpus_writer():
    """The ``write_corpus(path, records)`` helper, as a fixture."""
    return write_corpus


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT cross-encoder (MiniLM's tokenizer), built offline."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rerankit.encoders import packaged_minilm_path

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(packaged_minilm_path()).save_pretrained(folder)
    return folder


def shared_data_dir() -> Path | None:
    """``$RERANKIT_DATA`` or ``<repo>/../shared/data``, if it exists."""
    import os

    candidate = Path(os.environ.get("RERANKIT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


def recipe_data_root(tmp_path: Path) -> Path:
    """A data folder with the empty collections the recipe tests name: ``dev`` and ``pool``."""
    for name in ("dev", "pool"):
        (tmp_path / "data" / name).mkdir(parents=True)
    (tmp_path / "data" / "pool" / "queries.jsonl").write_text("")
    (tmp_path / "data" / "pool" / "corpus.jsonl").write_text("")
    return tmp_path / "data"


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(json.dumps(recipe))
    return path
