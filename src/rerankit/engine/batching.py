"""Token-budget batching: sort inputs by length and pack batches by padded tokens, not by count.

A batch holds as many sequences as fit ``count * longest <= token_budget`` (at most
``max_batch``). Inputs are sorted longest first, so each batch pads to nearly its own length and
short pairs share large batches; callers scatter the outputs back with the returned indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..validation import positive_int


def pack_by_tokens(lengths: Sequence[int], token_budget: int, max_batch: int = 256) -> list[np.ndarray]:
    """Index arrays of the batches, longest sequences first; every index appears once."""
    positive_int(token_budget, "token_budget"), positive_int(max_batch, "max_batch")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    i = 0
    while i < len(order):
        longest = int(lengths[order[i]])
        size = max(1, min(max_batch, token_budget // max(1, longest)))
        batches.append(order[i : i + size])
        i += size
    return batches


def collate(ids: Sequence[Sequence[int]], types: Sequence[Sequence[int]] | None, pad_id: int) -> dict[str, np.ndarray]:
    """Right-padded int64 ``input_ids``, ``attention_mask`` (and ``token_type_ids`` if ``types``)."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if types is not None:
        token_types = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(types):
            token_types[row, : len(seq)] = seq
        batch["token_type_ids"] = token_types
    return batch
