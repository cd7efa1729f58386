"""Tiny models for the engine tests, built offline (random weights; MiniLM's WordPiece tokenizer as rerankit's
shipped default carries it, so that these tests need no other model package, e.g. on a bare GPU machine)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from rerankit.rerankers.registry import default_model_path

K = TypeVar("K")
# cuda backends, compared with torch-fp32 on the CPU (relative to the reference's score range)
CUDA_TOLERANCE = {"cuda-fp32": 1e-3, "cuda-fp16": 0.02, "cuda-bf16": 0.05}

QUERIES = ["how do vaccines train the immune system", "what is the capital of australia"]
DOCS = [
    "Vaccines expose the immune system to a harmless piece of a pathogen.",
    "Canberra is the capital city of Australia.",
    "x",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris, and it was the tallest structure of its day. " * 3,
    "Bread rises because yeast ferments sugars.",
    "mRNA vaccines carry instructions for cells to build a spike protein " * 6,
    "Sydney is the largest city in Australia and home to the Opera House, on the harbour.",
    "Herd immunity",
    "Kangaroos are marsupials found only in Australia; they hop and carry their young in a pouch. " * 2,
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
]


def build_tiny_cross_encoder(folder: Path, max_positions: int = 512) -> Path:
    """A 2-layer BERT cross-encoder with random weights (init std 0.1, so that logits spread)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=max_positions, num_labels=1,
                        initializer_range=0.1)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    return folder


def build_tiny_causal_lm(folder: Path) -> Path:
    """A 2-layer Llama causal LM with MiniLM's (WordPiece) tokenizer, which has 'yes' and 'no' tokens."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=30522, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.3, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    return folder


def assert_same_ranking(reference: np.ndarray, candidate: np.ndarray, rel_tol: float) -> None:
    """Every pair the reference separates by more than ``rel_tol`` of its score range keeps its order,
    and the top document is the same."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    tol = rel_tol * float(reference.max() - reference.min())
    assert int(np.argmax(candidate)) == int(np.argmax(reference)) or reference.max() - reference[np.argmax(candidate)] <= tol
    for i in range(len(reference)):
        for j in range(len(reference)):
            if reference[i] - reference[j] > tol:
                assert candidate[i] > candidate[j], (i, j, reference[[i, j]], candidate[[i, j]])


def kernel_or_skip(kernel: K | None, what: str, needs: str = "AMX-BF16") -> K:
    """``kernel``, or skip the test where it could not be built or loaded here."""
    if kernel is None:
        pytest.skip(f"no {what} here (needs {needs}, Linux and the rerankit-amx package: pip install ./extras/rerankit-amx)")
    return kernel


def reranker_or_skip(model_dir, backend: str, **kwargs):
    """``CrossEncoderReranker(model_dir, backend=...)``, or skip where the runtime says the backend cannot
    run on this CPU (a kernel it lacks, found at load)."""
    from rerankit.errors import BackendUnavailableError
    from rerankit.rerankers.cross_encoder import CrossEncoderReranker

    try:
        return CrossEncoderReranker(model_dir, backend=backend, **kwargs)
    except BackendUnavailableError as exc:
        if "does not run on this CPU" not in str(exc):
            raise
        pytest.skip(f"{backend} cannot run on this CPU: {exc}")
