"""Local cross-encoders and yes/no decoder rerankers: one class, ``CrossEncoderReranker``, on any engine backend.

A Hugging Face ``*ForSequenceClassification`` folder (or hub name), or a Qwen3-Reranker-style causal
LM, scored through ``rerankit.engine``: tokenize queries and documents once (``engine.inputs``),
split long documents into windows, pack the windows of all queries into token-budget batches
(``engine.batching``), run the backend's runner, take each document's best window (or the mean),
and return scores in input order.

Backends (``backend=``): ``auto`` (the default: the fastest backend that keeps the fp32 ranking on
this machine, see ``rerankit.engine.auto``), ``torch`` (the plain torch module on ``device`` in
``dtype``; CUDA when present), or any of ``rerankit.engine.BACKENDS``: ``torch-fp32`` (the CPU
reference), ``torch-bf16``, ``torch-int8``, ``onnx-fp32``, ``onnx-int8``, ``openvino-fp32``,
``openvino-bf16``, ``openvino-int8``, ``cuda-fp32``, ``cuda-fp16``, ``cuda-bf16``.

Score range: with ``activation="auto"`` the model's own sentence-transformers setting decides
(``Identity`` gives raw logits, ``Sigmoid`` probabilities); a model without one gets a sigmoid for a
single label, as ``sentence_transformers.CrossEncoder.predict`` does. Two-label models score with
the probability of the last label; a yes-no model scores ``sigmoid(logit_yes - logit_no)``.
``score_kind`` says which one you get. ``long_docs``: ``first`` (plain truncation, as
sentence-transformers; the default), ``max`` (best overlapping window) or ``mean``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engine.backend import BACKENDS, Runner, make_runner, run_batches
from ..engine.batching import collate, pack_by_tokens
from ..engine.inputs import QWEN3_INSTRUCTION, InputBuilder, LongDocs, encoder_layout, yes_no_layout
from ..engine.modules import ModelInfo, detect_kind, read_info
from ..engine.tokenizer import load_tokenizer
from ..errors import InvalidInputError
from ..loading import LOCAL_ALTERNATIVES, activation_from_config, resolve_model_source
from ..scores import logits_to_scores
from ..types import Document, DocumentInput, RankedResult, normalize_documents, normalize_query
from ..validation import positive_int, validate_top_k
from .base import Reranker, order_by_score

DEFAULT_TOKEN_BUDGET = 8192
DEFAULT_MAX_BATCH = 64
DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}

__all__ = ["CrossEncoderReranker", "LOCAL_ALTERNATIVES", "resolve_model_source", "trained_max_length"]


def trained_max_length(folder: Path) -> int | None:
    """The training length a fused rerankit model stores in ``rerankit.json`` (None if absent)."""
    try:
        value = json.loads((Path(folder) / "rerankit.json").read_text()).get("max_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _activation_for(info: ModelInfo, activation: str) -> str:
    if activation not in ("auto", "sigmoid", "none"):
        raise InvalidInputError(f"activation must be 'auto', 'sigmoid' or 'none', got {activation!r}")
    if activation != "auto":
        return activation
    if info.kind == "yes-no":
        return "sigmoid"
    return activation_from_config(info.folder / "config.json") or ("sigmoid" if info.num_outputs == 1 else "none")


def backend_for(backend: str, device: str | None, dtype: str | None) -> str:
    """The engine backend that ``backend``, ``device`` and ``dtype`` ask for (``auto`` stays ``auto``
    unless a device or dtype is given; ``torch`` is the torch module on that device in that dtype)."""
    if dtype is not None and dtype not in DTYPES:
        raise InvalidInputError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    if backend == "auto" and device is None and dtype is None:
        return "auto"
    if backend not in ("auto", "torch"):
        if device is not None or dtype is not None:
            raise InvalidInputError(f"device and dtype apply to backend='torch' or 'auto', not {backend!r}")
        if backend not in BACKENDS:
            raise InvalidInputError(f"unknown backend {backend!r}; use 'auto', 'torch' or one of {', '.join(BACKENDS)}")
        return backend
    import torch

    cuda = device.startswith("cuda") if device else torch.cuda.is_available()
    if device is not None and not cuda and device != "cpu":
        raise InvalidInputError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    precision = DTYPES[dtype or "float32"]
    if not cuda and precision == "fp16":
        raise InvalidInputError("float16 needs a CUDA device; use dtype='bfloat16' on a CPU")
    return f"{'cuda' if cuda else 'torch'}-{precision}"


class CrossEncoderReranker(Reranker):
    """A cross-encoder or yes/no decoder reranker on an engine backend (see the module docstring).

    ``max_length`` defaults to the ``max_length`` of the folder's ``rerankit.json`` (a fused model's
    training length), else 512, capped by the model's positions. ``batch_size`` (or ``max_batch``)
    caps sequences per batch and ``token_budget`` padded tokens per batch; both default to the
    backend's preference. ``kind``: ``auto`` (from config.json), ``encoder`` or ``yes-no``.
    """

    batches_queries = True

    def __init__(
        self,
        model: str | Path,
        *,
        backend: str = "auto",
        device: str | None = None,
        dtype: str | None = None,
        kind: str = "auto",
        activation: str = "auto",
        max_length: int | None = None,
        batch_size: int | None = None,
        token_budget: int | None = None,
        max_batch: int | None = None,
        long_docs: LongDocs = "first",
        stride: int = 64,
        max_windows: int = 16,
        instruction: str = QWEN3_INSTRUCTION,
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        for label, value in (("token_budget", token_budget), ("max_batch", max_batch), ("batch_size", batch_size)):
            if value is not None:
                positive_int(value, label)
        backend = backend_for(backend, device, dtype)
        self.device = device
        folder = Path(resolve_model_source(str(model)))
        resolved_kind = detect_kind(folder) if kind == "auto" else kind
        self.tokenizer = load_tokenizer(folder)
        yes_no = None
        if resolved_kind == "yes-no":
            yes_no = (self.tokenizer.convert_tokens_to_ids("yes"), self.tokenizer.convert_tokens_to_ids("no"))
            if None in yes_no or self.tokenizer.unk_token_id in yes_no:
                raise InvalidInputError(f"{folder}: 'yes' and 'no' must be single tokens of the vocabulary")
        self.info = read_info(folder, resolved_kind, yes_no)  # type: ignore[arg-type]
        layout = encoder_layout(self.tokenizer) if self.info.kind == "encoder" else yes_no_layout(self.tokenizer, instruction)
        self.max_length = min(max_length or trained_max_length(folder) or 512, self.info.max_positions)
        self.builder = InputBuilder(self.tokenizer, layout, self.max_length, self.info.uses_token_types,
                                    long_docs, stride, max_windows)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.requested_batching = (token_budget, max_batch or batch_size)
        self.activation = _activation_for(self.info, activation)
        two_labels = self.info.kind == "encoder" and self.info.num_outputs > 1
        self.score_kind = "probability" if self.activation == "sigmoid" or two_labels else "logit"
        self.name = name or str(model)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.num_threads = num_threads
        self.auto_report: dict | None = None
        if backend == "auto":
            from ..engine.auto import choose_backend

            backend, self.runner, self.auto_report = choose_backend(self)
        else:
            self.runner = self.runner_for(backend)
        self.backend = backend

    def runner_for(self, backend: str) -> Runner:
        """A runner for ``backend`` with this reranker's threads, cache, device and (int8) calibration."""
        calibration = self.calibration_batches() if backend == "torch-int8" else None
        return make_runner(self.info, backend, self.num_threads, self.cache_dir, calibration, self.device)

    def calibration_batches(self) -> list[dict[str, np.ndarray]]:
        """The built-in calibration pairs (``engine.auto.CALIBRATION``) as model batches."""
        from ..engine.auto import CALIBRATION

        windows = self.builder.build([q for q, _ in CALIBRATION],
                                     [(qi, d) for qi, (_, docs) in enumerate(CALIBRATION) for d in docs])
        types = self.info.uses_token_types
        return [collate([windows[i].ids for i in idx], [windows[i].types for i in idx] if types else None, self.pad_id)
                for idx in pack_by_tokens([len(w.ids) for w in windows], DEFAULT_TOKEN_BUDGET, DEFAULT_MAX_BATCH)]

    @property
    def token_budget(self) -> int:
        """Padded tokens per batch: as given, else the runner's preference, else ``DEFAULT_TOKEN_BUDGET``."""
        return self.requested_batching[0] or getattr(self.runner, "token_budget", DEFAULT_TOKEN_BUDGET)

    @property
    def max_batch(self) -> int:
        """Sequences per batch at most: as given, else the runner's preference, else ``DEFAULT_MAX_BATCH``."""
        return self.requested_batching[1] or getattr(self.runner, "max_batch", DEFAULT_MAX_BATCH)

    # -- scores -------------------------------------------------------------------------------
    def to_scores(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs ``[N, K]`` to one score each (see the module docstring)."""
        if self.info.kind == "yes-no":
            diff = outputs[:, 1] - outputs[:, 0]
            return 1.0 / (1.0 + np.exp(-diff)) if self.activation == "sigmoid" else diff
        return logits_to_scores(outputs, self.activation)

    def run_pairs(self, queries: Sequence[str], pairs: Sequence[tuple[int, str]]
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Outputs ``[P, K]``, scores ``[P]`` and scored character spans of (query index, text) pairs."""
        windows = self.builder.build(queries, pairs)
        outputs = np.zeros((len(windows), self.info.num_outputs), dtype=np.float32)
        types = self.info.uses_token_types
        jobs = ((idx, collate([windows[i].ids for i in idx], [windows[i].types for i in idx] if types else None,
                              self.pad_id))
                for idx in pack_by_tokens([len(w.ids) for w in windows], self.token_budget, self.max_batch))
        run_batches(self.runner, jobs, outputs)
        window_scores = self.to_scores(outputs).astype(np.float32)
        pair_out = np.zeros((len(pairs), self.info.num_outputs), dtype=np.float32)
        pair_scores = np.zeros(len(pairs), dtype=np.float32)
        spans: list[tuple[int, int]] = [(0, 0)] * len(pairs)
        start = 0
        while start < len(windows):
            w = windows[start]
            count = w.windows_of_pair
            block = window_scores[start : start + count]
            best = start + int(np.argmax(block))
            pair_out[w.pair] = outputs[best]
            pair_scores[w.pair] = block.mean() if self.builder.long_docs == "mean" else window_scores[best]
            spans[w.pair] = windows[best].span
            start += count
        return pair_out, pair_scores, spans

    def logits(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Raw model outputs per text (best window), one row per text, in input order."""
        return self.run_pairs([query], [(0, t) for t in texts])[0]

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return self.run_pairs([query], [(0, d.full_text) for d in documents])[1]

    # -- many queries at once -----------------------------------------------------------------
    def _many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[DocumentInput]]):
        if len(queries) != len(candidate_lists):
            raise InvalidInputError(f"{len(queries)} queries but {len(candidate_lists)} candidate lists")
        queries = [normalize_query(q) for q in queries]
        docs = [normalize_documents(c) for c in candidate_lists]
        pairs = [(qi, d.full_text) for qi, ds in enumerate(docs) for d in ds]
        _, scores, spans = self.run_pairs(queries, pairs)
        return docs, scores, spans

    def score_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[DocumentInput]]) -> list[np.ndarray]:
        """Scores for several queries, their pairs packed into shared batches; one array per query."""
        docs, scores, _ = self._many(queries, candidate_lists)
        bounds = np.cumsum([0] + [len(d) for d in docs])
        return [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def rerank_many(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[DocumentInput]],
                    top_k: int | None = None) -> list[list[RankedResult]]:
        """``rerank`` for several queries at once (pairs of all queries share batches)."""
        top_k = validate_top_k(top_k)
        docs, scores, spans = self._many(queries, candidate_lists)
        out, base = [], 0
        for ds in docs:
            part = scores[base : base + len(ds)]
            order = order_by_score(part)[:top_k]
            out.append([RankedResult(int(i), float(part[i]), ds[i], r, offsets=spans[base + int(i)])
                        for r, i in enumerate(order)])
            base += len(ds)
        return out

    def rerank(self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None) -> list[RankedResult]:
        """Best first, ties by input order; each result carries the scored span in ``offsets``."""
        return self.rerank_many([query], [documents], top_k)[0]
