"""Load a local Hugging Face reranker as one torch module that maps token batches to scores.

Two kinds of model:

- ``encoder``: a cross-encoder (``*ForSequenceClassification``); outputs its logits ``[B, labels]``.
- ``yes-no``: a decoder-only reranker in the Qwen3-Reranker style (``*ForCausalLM``); outputs the
  ``[no, yes]`` logits at each sequence's last real token ``[B, 2]``. Only those two rows of the
  LM head are computed, so the vocabulary projection costs nothing (the bf16 backend keeps them
  in float32, as the fused encoders keep their classification head).

Inputs are right-padded: ``input_ids``, ``attention_mask`` and, for encoders that use them,
``token_type_ids`` (int64).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InvalidInputError, ModelNotFoundError

ModelKind = Literal["encoder", "yes-no"]


def detect_kind(folder: str | Path) -> ModelKind:
    """``encoder`` for sequence-classification models, ``yes-no`` for causal LMs (from config.json)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{folder} is not a Hugging Face model folder: {exc}") from exc
    architectures = config.get("architectures") or []
    if any(a.endswith("ForCausalLM") for a in architectures):
        return "yes-no"
    return "encoder"


@dataclass(frozen=True)
class ModelInfo:
    """What the input builder and the backends need to know, read from config.json alone."""

    folder: Path
    kind: ModelKind
    num_outputs: int
    uses_token_types: bool
    max_positions: int
    yes_no_ids: tuple[int, int] | None = None  # (yes, no) token ids of a yes-no model


def input_names(info: ModelInfo) -> list[str]:
    """The scoring module's inputs, in order: ``input_ids``, ``attention_mask`` (and ``token_type_ids``)."""
    names = ["input_ids", "attention_mask"]
    return names + ["token_type_ids"] if info.uses_token_types else names


def _config_fields(folder: Path, kind: ModelKind) -> dict:
    """The config.json fields ``read_info`` needs, read as JSON (no transformers import) where the
    file states them all, else from ``transformers.AutoConfig`` (which fills in class defaults)."""
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{folder} is not a Hugging Face model folder: {exc}") from exc
    needed = ["model_type", "max_position_embeddings"]
    if kind == "encoder":
        needed.append("type_vocab_size")
    labels = raw.get("id2label")
    if all(raw.get(key) is not None for key in needed) and (isinstance(labels, dict) or "num_labels" in raw):
        return {**raw, "num_labels": len(labels) if isinstance(labels, dict) else int(raw["num_labels"])}
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    return config.to_dict() | {"num_labels": config.num_labels}


def read_info(folder: str | Path, kind: ModelKind | Literal["auto"] = "auto",
              yes_no_ids: tuple[int, int] | None = None) -> ModelInfo:
    """``ModelInfo`` of a model folder without loading its weights."""
    folder = Path(folder)
    resolved: ModelKind = detect_kind(folder) if kind == "auto" else kind
    if resolved not in ("encoder", "yes-no"):
        raise InvalidInputError(f"unknown model kind {kind!r}")
    config = _config_fields(folder, resolved)
    model_type = config.get("model_type")
    if resolved == "encoder":
        types = bool(config.get("type_vocab_size") or 0) and model_type not in ("roberta", "xlm-roberta")
        max_pos = config.get("max_position_embeddings") or 512
        if model_type in ("roberta", "xlm-roberta", "camembert"):
            max_pos -= 2  # positions start after the padding index
        return ModelInfo(folder, resolved, int(config["num_labels"]), types, int(max_pos))
    if yes_no_ids is None:
        raise InvalidInputError("a yes-no reranker needs the token ids of 'yes' and 'no'")
    max_pos = config.get("max_position_embeddings") or 8192
    return ModelInfo(folder, resolved, 2, False, int(max_pos), yes_no_ids)


def _from_pretrained(auto_class, folder: Path, attn: str):
    """fp32 weights with ``attn`` attention, or eager where the architecture has no SDPA (MPNet, say)."""
    import torch

    try:
        return auto_class.from_pretrained(folder, dtype=torch.float32, attn_implementation=attn)
    except ValueError as exc:
        if attn == "eager" or "does not support an attention implementation" not in str(exc):
            raise
        return auto_class.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")


def _encoder_module(folder: Path, attn: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = _from_pretrained(AutoModelForSequenceClassification, folder, attn)

    class EncoderScores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).logits

    return EncoderScores().eval()


def _yes_no_module(folder: Path, yes_id: int, no_id: int, attn: str):
    import torch
    from transformers import AutoModelForCausalLM

    model = _from_pretrained(AutoModelForCausalLM, folder, attn)
    head = model.get_output_embeddings()
    weight = head.weight.detach()[[no_id, yes_id]].clone()
    bias = head.bias.detach()[[no_id, yes_id]].clone() if getattr(head, "bias", None) is not None else None

    class YesNoScores(torch.nn.Module):
        def __init__(self, body) -> None:
            super().__init__()
            self.body = body
            self.head = torch.nn.Linear(weight.shape[1], 2, bias=bias is not None)
            with torch.no_grad():
                self.head.weight.copy_(weight)
                if bias is not None:
                    self.head.bias.copy_(bias)

        def forward(self, input_ids, attention_mask):
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
            last = attention_mask.sum(dim=1) - 1
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return self.head(hidden[rows, last].to(self.head.weight.dtype))

    return YesNoScores(model.get_decoder()).eval()


def build_module(info: ModelInfo, attn: str = "sdpa"):
    """The fp32 torch scoring module (``attn="eager"`` for ONNX export)."""
    from ..loading import quiet_hf_logging

    quiet_hf_logging()
    if info.kind == "encoder":
        return _encoder_module(info.folder, attn)
    assert info.yes_no_ids is not None
    return _yes_no_module(info.folder, info.yes_no_ids[0], info.yes_no_ids[1], attn)
