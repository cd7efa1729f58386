"""Token counting (Jina's ``usage``) and truncation (Cohere's ``max_tokens_per_doc``) with the model's tokenizer.

Rerankers without a fast Hugging Face tokenizer fall back to words and punctuation marks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_WORDS = re.compile(r"\w+|[^\w\s]")


def find_tokenizer(reranker: Any) -> Any | None:
    """The fast tokenizer of a cross-encoder, engine or fused reranker, or None."""
    for owner in (reranker, getattr(reranker, "engine", None), getattr(reranker, "cross_encoder", None)):
        tokenizer = getattr(owner, "tokenizer", None)
        if tokenizer is not None and getattr(tokenizer, "is_fast", False):
            return tokenizer
    return None


def count_tokens(tokenizer: Any | None, query: str, texts: Sequence[str]) -> int:
    """Tokens read for ``query`` paired with each text (the query counted once per pair), no special tokens."""
    if tokenizer is None:
        return len(_WORDS.findall(query)) * len(texts) + sum(len(_WORDS.findall(t)) for t in texts)
    ids = tokenizer([query, *texts], add_special_tokens=False, verbose=False)["input_ids"]
    return len(ids[0]) * len(texts) + sum(len(x) for x in ids[1:])


def truncate_tokens(tokenizer: Any | None, texts: Sequence[str], max_tokens: int) -> list[str]:
    """Each text cut after its first ``max_tokens`` tokens (character offsets from the tokenizer)."""
    if tokenizer is None:
        out = []
        for text in texts:
            matches = list(_WORDS.finditer(text))
            out.append(text if len(matches) <= max_tokens else text[: matches[max_tokens - 1].end()])
        return out
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out = []
    for text, offsets in zip(texts, encoded["offset_mapping"]):
        out.append(text if len(offsets) <= max_tokens else text[: offsets[max_tokens - 1][1]])
    return out
