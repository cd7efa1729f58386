"""Hugging Face cross-encoders (``AutoModelForSequenceClassification``) run with torch.

Score range: with ``activation="auto"`` the model's own sentence-transformers setting decides
(``Identity`` gives raw logits, ``Sigmoid`` probabilities); a model without one gets a sigmoid
for a single label, as ``sentence_transformers.CrossEncoder.predict`` does. Two-label models
score with the probability of the last label. ``score_kind`` says which one you get.

``backend="auto"`` (the default) runs the weights through ``EngineReranker`` with its ``auto``
rule (the fastest CPU backend that keeps the fp32 ranking; see ``rerankit.engine.auto``), except
when a CUDA device is present or ``device``/``dtype`` are given, or the model has no fast
tokenizer: then this module's own torch loop runs it, as ``backend="torch"`` always does.
Any engine backend name (``torch-fp32``, ``torch-bf16``, ``onnx-int8``, ...) picks that backend;
``dtype`` and ``device`` then do not apply, and ``long_docs`` says how documents longer than ``max_length`` are scored
(``first``, the default here, is plain truncation as with ``torch``; ``max`` scores overlapping windows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..encoders import quiet_hf_logging
from ..errors import InvalidInputError, ModelNotFoundError
from ..scores import logits_to_scores
from ..types import Document
from .base import Reranker

Activation = Literal["auto", "sigmoid", "none"]

LOCAL_ALTERNATIVES = (
    "'default' (the model shipped inside rerankit), a local folder in Hugging Face format "
    "(config.json + weights + tokenizer), or a model already in your Hugging Face cache"
)


def resolve_model_source(name_or_path: str) -> str:
    """Return a loadable folder or hub name; raise ``ModelNotFoundError`` if neither exists."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
        from ..shared_tensors import complete_folder

        return complete_folder(path)
    if name_or_path.count("/") != 1 or name_or_path.startswith(("/", ".", "~")):
        raise ModelNotFoundError(f"no model folder at {name_or_path!r}; use {LOCAL_ALTERNATIVES}")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as exc:  # offline, unknown repo, gated: all mean "not available here"
        raise ModelNotFoundError(
            f"could not load {name_or_path!r} from the Hugging Face hub ({type(exc).__name__}); "
            f"offline, use {LOCAL_ALTERNATIVES}"
        ) from exc


def _activation_from_config(config_path: Path) -> str | None:
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    fn = (config.get("sentence_transformers") or {}).get("activation_fn") or ""
    if fn.endswith("Identity"):
        return "none"
    if fn.endswith("Sigmoid"):
        return "sigmoid"
    return None


class CrossEncoderReranker(Reranker):
    """A local or hub cross-encoder, scored in length-sorted batches."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        max_length: int | None = None,
        batch_size: int = 32,
        activation: Activation = "auto",
        dtype: str = "float32",
        device: str | None = None,
        backend: str = "auto",
        long_docs: str = "first",
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if activation not in ("auto", "sigmoid", "none"):
            raise InvalidInputError(f"activation must be 'auto', 'sigmoid' or 'none', got {activation!r}")
        if batch_size < 1:
            raise InvalidInputError("batch_size must be >= 1")
        source = resolve_model_source(model_name_or_path)
        quiet_hf_logging()
        self.name = model_name_or_path
        self.batch_size = batch_size
        self.engine = None
        if backend == "auto" and (device is not None or dtype != "float32" or torch.cuda.is_available()
                                  or not getattr(AutoTokenizer.from_pretrained(source), "is_fast", False)):
            backend = "torch"
        if backend != "torch":
            from ..engine import EngineReranker

            self.engine = EngineReranker(source, backend=backend, activation=activation, max_length=max_length,
                                         long_docs=long_docs, name=model_name_or_path)  # type: ignore[arg-type]
            self.tokenizer, self.max_length = self.engine.tokenizer, self.engine.max_length
            self.activation, self.score_kind = self.engine.activation, self.engine.score_kind
            self.backend = self.engine.backend
            return
        self.backend = "torch"
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
        if torch_dtype is None:
            raise InvalidInputError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
        self.name = model_name_or_path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch_dtype)
        self.model.to(self.device).eval()
        model_max = getattr(self.model.config, "max_position_embeddings", 512) or 512
        self.max_length = min(max_length or 512, model_max)
        self.batch_size = batch_size
        if activation == "auto":
            activation = _activation_from_config(Path(source) / "config.json") or (
                "sigmoid" if self.model.config.num_labels == 1 else "none"
            )
        self.activation = activation
        self.score_kind = "probability" if activation == "sigmoid" or self.model.config.num_labels > 1 else "logit"

    def logits(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Raw model outputs for (query, text) pairs, one row per text, in input order."""
        if self.engine is not None:
            return self.engine.logits(query, texts)
        import torch

        encoded = self.tokenizer(
            [query] * len(texts), list(texts), truncation="longest_first", max_length=self.max_length
        )
        lengths = np.array([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer.pad({k: [encoded[k][i] for i in idx] for k in keys}, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                out[idx] = self.model(**batch).logits.float().cpu().numpy()
        return out

    def score_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence]) -> list[np.ndarray]:
        """``score`` for several queries at once (one array per query, equal to ``score``'s); on the
        engine, the pairs of all queries share token-budget batches."""
        if self.engine is not None:
            return self.engine.score_many(queries, candidate_lists)
        if len(queries) != len(candidate_lists):
            raise InvalidInputError(f"{len(queries)} queries but {len(candidate_lists)} candidate lists")
        return [self.score(q, docs) for q, docs in zip(queries, candidate_lists)]

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        if self.engine is not None:  # the engine's own rule for long documents (best window, or mean)
            return self.engine._score(query, documents)
        return logits_to_scores(self.logits(query, [d.full_text for d in documents]), self.activation)
