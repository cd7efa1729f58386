"""``EngineReranker``: a local Hugging Face reranker behind the ``Reranker`` façade, on a chosen backend.

Pipeline per call: tokenize queries and documents once (``inputs``), split long documents into
windows, pack windows of all queries into token-budget batches (``batching``), run the backend,
aggregate windows per document (``max`` by default), and return scores in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..rerankers.base import Reranker, order_by_score
from ..scores import logits_to_scores
from ..types import Document, DocumentInput, RankedResult, normalize_documents, normalize_query, validate_top_k
from .backend import BACKENDS, Runner
from .batching import collate, pack_by_tokens
from .inputs import QWEN3_INSTRUCTION, InputBuilder, LongDocs, encoder_layout, yes_no_layout
from .modules import ModelInfo, read_info

DEFAULT_TOKEN_BUDGET = 8192
DEFAULT_MAX_BATCH = 64


def make_runner(info: ModelInfo, backend: str, num_threads: int | None = None, cache_dir: Path | None = None,
                calibration: list[dict[str, np.ndarray]] | None = None) -> Runner:
    """A runner for one of ``BACKENDS`` (``calibration``: batches that ``torch-int8`` balances its
    channels on and ``openvino-int8`` calibrates its activations on)."""
    if backend in ("torch-fp32", "torch-bf16", "torch-int8"):
        from .torch_backend import TorchRunner

        return TorchRunner(info, backend.split("-")[1], num_threads, calibration=calibration)
    if backend in ("onnx-fp32", "onnx-int8"):
        from .onnx_backend import OnnxRunner

        return OnnxRunner(info, backend.split("-")[1], num_threads, cache_dir)
    if backend in ("openvino-fp32", "openvino-bf16", "openvino-int8"):
        from .openvino_backend import OpenVinoRunner

        return OpenVinoRunner(info, backend.split("-")[1], num_threads, cache_dir, calibration)
    raise InvalidInputError(f"unknown backend {backend!r}; use 'auto' or one of {', '.join(BACKENDS)}")


def trained_max_length(folder: Path) -> int | None:
    """The training length a fused rerankit model stores in ``rerankit.json`` (None if absent)."""
    import json

    try:
        value = json.loads((folder / "rerankit.json").read_text()).get("max_length")
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
    from ..rerankers.cross_encoder import _activation_from_config

    return _activation_from_config(info.folder / "config.json") or ("sigmoid" if info.num_outputs == 1 else "none")


class EngineReranker(Reranker):
    """A cross-encoder or yes/no decoder reranker with fast backends, token-budget batching and long-document windows.

    ``backend``: ``auto`` (see ``engine.auto``), ``torch-fp32`` (reference), ``torch-bf16``,
    ``torch-int8`` (int8 matmuls on AMX, not exact: see ``int8_layers``), ``onnx-fp32``,
    ``onnx-int8``, ``openvino-fp32``, ``openvino-bf16`` or ``openvino-int8`` (see ``openvino_backend``).
    ``token_budget`` / ``max_batch`` default to the backend's preference. ``kind``: ``auto`` (from config.json), ``encoder`` or ``yes-no``.
    Scores follow ``CrossEncoderReranker`` (``activation``); a yes-no model scores
    ``sigmoid(logit_yes - logit_no)`` (= softmax over the two), or the raw difference with
    ``activation="none"``. ``long_docs``: ``max`` (best window), ``mean``, or ``first`` (plain truncation).
    ``max_length`` defaults to the ``max_length`` of the folder's ``rerankit.json`` (a fused model's
    training length), else 512, capped by the model's positions.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        backend: str = "auto",
        kind: str = "auto",
        activation: str = "auto",
        max_length: int | None = None,
        token_budget: int | None = None,
        max_batch: int | None = None,
        long_docs: LongDocs = "max",
        stride: int = 64,
        max_windows: int = 16,
        instruction: str = QWEN3_INSTRUCTION,
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        from ..encoders import quiet_hf_logging
        from ..rerankers.cross_encoder import resolve_model_source
        from .modules import detect_kind

        quiet_hf_logging()
        folder = Path(resolve_model_source(str(model)))
        resolved_kind = detect_kind(folder) if kind == "auto" else kind
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if not getattr(self.tokenizer, "is_fast", False):
            raise InvalidInputError(f"{folder}: the engine needs a fast tokenizer (tokenizer.json)")
        yes_no = None
        if resolved_kind == "yes-no":
            yes_no = (self.tokenizer.convert_tokens_to_ids("yes"), self.tokenizer.convert_tokens_to_ids("no"))
            if None in yes_no or self.tokenizer.unk_token_id in yes_no:
                raise InvalidInputError(f"{folder}: 'yes' and 'no' must be single tokens of the vocabulary")
        self.info = read_info(folder, resolved_kind, yes_no)  # type: ignore[arg-type]
        if self.info.kind == "encoder":
            layout = encoder_layout(self.tokenizer)
        else:
            layout = yes_no_layout(self.tokenizer, instruction)
        self.max_length = min(max_length or trained_max_length(folder) or 512, self.info.max_positions)
        self.builder = InputBuilder(self.tokenizer, layout, self.max_length, self.info.uses_token_types,
                                    long_docs, stride, max_windows)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for label, value in (("token_budget", token_budget), ("max_batch", max_batch)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{label} must be a positive integer, got {value!r}")
        self.requested_batching = (token_budget, max_batch)
        self.activation = _activation_for(self.info, activation)
        two_labels = self.info.kind == "encoder" and self.info.num_outputs > 1
        self.score_kind = "probability" if self.activation == "sigmoid" or two_labels else "logit"
        self.name = name or str(model)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.num_threads = num_threads
        self.auto_report: dict | None = None
        if backend == "auto":
            from .auto import choose_backend

            backend, self.runner, self.auto_report = choose_backend(self)
        else:
            self.runner = self.runner_for(backend)
        self.backend = backend

    def runner_for(self, backend: str) -> Runner:
        """A runner for ``backend`` with this reranker's threads, cache and (``torch-int8``) calibration."""
        calibration = self.calibration_batches() if backend in ("torch-int8", "openvino-int8") else None
        return make_runner(self.info, backend, self.num_threads, self.cache_dir, calibration)

    def calibration_batches(self) -> list[dict[str, np.ndarray]]:
        """The built-in calibration pairs (``auto.CALIBRATION``) as model batches."""
        from .auto import CALIBRATION

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
        """Model outputs ``[N, K]`` to one score each (see the class docstring)."""
        if self.info.kind == "yes-no":
            diff = outputs[:, 1] - outputs[:, 0]
            return 1.0 / (1.0 + np.exp(-diff)) if self.activation == "sigmoid" else diff
        return logits_to_scores(outputs, self.activation)

    def run_pairs(self, queries: Sequence[str], pairs: Sequence[tuple[int, str]]
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Outputs ``[P, K]``, scores ``[P]`` and scored character spans of (query index, text) pairs."""
        windows = self.builder.build(queries, pairs)
        outputs = np.zeros((len(windows), self.info.num_outputs), dtype=np.float32)
        for idx in pack_by_tokens([len(w.ids) for w in windows], self.token_budget, self.max_batch):
            chosen = [windows[i] for i in idx]
            types = [w.types for w in chosen] if self.info.uses_token_types else None
            outputs[idx] = self.runner(collate([w.ids for w in chosen], types, self.pad_id))
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
            out.append([RankedResult(int(i), float(part[i]), ds[i], r, int(i), spans[base + int(i)])
                        for r, i in enumerate(order)])
            base += len(ds)
        return out

    def rerank(self, query: str, documents: Sequence[DocumentInput], top_k: int | None = None) -> list[RankedResult]:
        """Best first, ties by input order; each result carries the scored span in ``offsets``."""
        return self.rerank_many([query], [documents], top_k)[0]
