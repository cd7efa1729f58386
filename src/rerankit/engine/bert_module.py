"""BERT's modules in plain torch, loaded from a folder's safetensors without importing transformers.

The fused layers (``fused_encoder``) read a BERT model's weights through its module tree
(``embeddings``, ``encoder.layer[i].attention.self.query`` ..., ``pooler``, ``classifier``). Importing
transformers to build that tree costs about two seconds per process, more than the rest of a load, so
for BERT with absolute positions (MiniLM cross-encoders, all-MiniLM-L6-v2, rerankit's default) this
module builds the same tree with ``torch.nn`` layers and the checkpoint's tensors. Only what the fused
layers use is here: the embeddings' forward (word + position + token type, then LayerNorm) and the
pooler's (tanh of a linear map of the first token); the layers themselves run fused.

``bert_for_fusion(folder, head)`` returns ``None`` for anything else (another architecture, a missing or
unexpected tensor, no safetensors file), and the caller builds the transformers module as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn


class Embeddings(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # transformers' order:
        return self.LayerNorm(x + self.position_embeddings(positions)[None])  # bf16 sums depend on it


def _linear_norm(config: SimpleNamespace, inputs: int) -> nn.Module:
    block = nn.Module()
    block.dense = nn.Linear(inputs, config.hidden_size)
    block.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
    return block


def _layer(config: SimpleNamespace) -> nn.Module:
    hidden = config.hidden_size
    layer = nn.Module()
    layer.attention = nn.Module()
    layer.attention.self = nn.Module()
    for name in ("query", "key", "value"):
        setattr(layer.attention.self, name, nn.Linear(hidden, hidden))
    layer.attention.output = _linear_norm(config, hidden)
    layer.intermediate = nn.Module()
    layer.intermediate.dense = nn.Linear(hidden, config.intermediate_size)
    layer.output = _linear_norm(config, config.intermediate_size)
    return layer


class Pooler(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


class Bert(nn.Module):
    def __init__(self, config: SimpleNamespace, pooler: bool) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_layer(config) for _ in range(config.num_hidden_layers))
        self.pooler = Pooler(config.hidden_size) if pooler else None


class BertClassifier(nn.Module):
    """``bert`` and ``classifier`` as in ``BertForSequenceClassification`` (for ``FusedEncoderScores``)."""

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.config = config
        self.bert = Bert(config, pooler=True)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)


def _config(folder: Path) -> SimpleNamespace | None:
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    needed = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "type_vocab_size")
    if raw.get("model_type") != "bert" or any(not isinstance(raw.get(k), int) for k in needed):
        return None
    if raw.get("position_embedding_type", "absolute") not in (None, "absolute") or raw.get("hidden_act") != "gelu":
        return None
    labels = raw.get("id2label")
    return SimpleNamespace(**{k: raw[k] for k in needed}, model_type="bert", hidden_act="gelu",
                           position_embedding_type="absolute", layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
                           num_labels=len(labels) if isinstance(labels, dict) else int(raw.get("num_labels", 2)))


def bert_for_fusion(folder: str | Path, head: bool) -> nn.Module | None:
    """``BertClassifier`` (``head=True``) or the bare ``Bert`` encoder in fp32 with the folder's weights,
    or ``None`` where this module does not reproduce the model (see the module docstring)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = _config(folder)
    if config is None or not (folder / "model.safetensors").is_file():
        return None
    model: nn.Module = BertClassifier(config) if head else Bert(config, pooler=False)
    if not head:
        model.config = config
    try:
        state = load_file(str(folder / "model.safetensors"))
    except Exception:
        return None
    if not head:  # a bare BertModel's checkpoint may or may not carry the "bert." prefix
        state = {k.removeprefix("bert."): v for k, v in state.items()}
    expected = set(model.state_dict())
    state = {k: v for k, v in state.items() if k in expected}  # position_ids buffers, an unused pooler
    if set(state) != expected:
        return None
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()
