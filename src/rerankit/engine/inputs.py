"""From (query, document) pairs to model inputs: tokenize once, lay out, split long documents.

Each pair becomes ``prefix + query + middle + document + suffix`` token ids. For cross-encoders the
layout is read from the tokenizer itself (a probe pair shows where its special tokens and token
types go), so the ids are exactly those of ``tokenizer(query, doc, truncation="longest_first")``.
For yes/no decoder rerankers it is the Qwen3-Reranker prompt (``QWEN3_*`` below).

Queries and documents are each tokenized once, in one batch call of the fast tokenizer, without
special tokens. A document too long for ``max_length`` is split into windows of the remaining
token budget that overlap by ``stride`` tokens (``long_docs="first"`` keeps only the first
window, which is exactly plain truncation). Each window remembers its character span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InvalidInputError
from ..validation import positive_int

LongDocs = Literal["max", "first", "mean"]

QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass(frozen=True)
class PairLayout:
    """Fixed token ids around the query and the document, and the token type of each part."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...] = ()
    middle_types: tuple[int, ...] = ()
    suffix_types: tuple[int, ...] = ()
    query_type: int = 0
    doc_type: int = 0
    query_template: str = "{query}"  # how the query text is written before tokenization
    doc_lead: str = ""  # prepended to the document text (its characters are not in the offsets)

    @property
    def fixed(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def encoder_layout(tokenizer) -> PairLayout:
    """The tokenizer's own pair template, found by encoding a probe pair."""
    enc = tokenizer("a", "b", return_token_type_ids=True)
    encoding = enc.encodings[0] if getattr(enc, "encodings", None) else None
    if encoding is None:
        raise InvalidInputError("the engine needs a fast (Rust) tokenizer")
    ids, seq, types = encoding.ids, encoding.sequence_ids, encoding.type_ids
    first = [i for i, s in enumerate(seq) if s == 0]
    second = [i for i, s in enumerate(seq) if s == 1]
    a, b = first[0], second[0]
    parts = (range(0, a), range(first[-1] + 1, b), range(second[-1] + 1, len(ids)))
    (pre, mid, suf) = (tuple(ids[i] for i in r) for r in parts)
    (pre_t, mid_t, suf_t) = (tuple(types[i] for i in r) for r in parts)
    return PairLayout(pre, mid, suf, pre_t, mid_t, suf_t, query_type=types[a], doc_type=types[b])


def yes_no_layout(tokenizer, instruction: str = QWEN3_INSTRUCTION, prefix: str = QWEN3_PREFIX,
                  suffix: str = QWEN3_SUFFIX) -> PairLayout:
    """Qwen3-Reranker's prompt: ``<Instruct>: ...\\n<Query>: ...\\n<Document>: ...`` inside the chat template.

    The document is tokenized as ``" " + text`` so that byte-level BPE tokenizers give the same
    ids as tokenizing the whole prompt at once (the space attaches to the first word).
    """
    encode = lambda text: tuple(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    template = "<Instruct>: " + instruction.replace("{", "{{").replace("}", "}}") + "\n<Query>: {query}\n<Document>:"
    return PairLayout(encode(prefix), (), encode(suffix), query_template=template, doc_lead=" ")


@dataclass
class Window:
    """One model input: a (query, document) pair, or one window of a long document."""

    pair: int
    ids: list[int]
    types: list[int] | None
    span: tuple[int, int]  # character offsets of the window in the document text
    windows_of_pair: int = 1
    extra: dict = field(default_factory=dict)


def _query_keep(lq: int, ld: int, budget: int) -> int:
    """Query tokens kept under ``longest_first`` truncation, as the tokenizers library does it:
    the shorter side keeps at most ``budget // 2`` tokens (the query on ties), the other the rest."""
    if lq + ld <= budget:
        return lq
    if lq <= ld:
        return min(lq, budget // 2)
    return budget - min(ld, budget // 2)


def _starts(ld: int, width: int, stride: int, max_windows: int) -> list[int]:
    """Window starts covering ``ld`` tokens, ``width`` each, overlapping by ``stride``."""
    step = max(1, width - stride)
    starts, s = [0], 0
    while s + width < ld and len(starts) < max_windows:
        s = min(s + step, ld - width)
        starts.append(s)
    return starts


@dataclass
class InputBuilder:
    """Turns queries and (query index, document text) pairs into ``Window`` objects."""

    tokenizer: object
    layout: PairLayout
    max_length: int
    uses_token_types: bool
    long_docs: LongDocs = "max"
    stride: int = 64
    max_windows: int = 16

    def __post_init__(self) -> None:
        if self.long_docs not in ("max", "first", "mean"):
            raise InvalidInputError(f"long_docs must be 'max', 'first' or 'mean', got {self.long_docs!r}")
        if self.max_length - self.layout.fixed < 8:
            raise InvalidInputError(f"max_length {self.max_length} leaves no room for the query and document")
        positive_int(self.stride, "stride", minimum=0), positive_int(self.max_windows, "max_windows")

    def build(self, queries: Sequence[str], pairs: Sequence[tuple[int, str]]) -> list[Window]:
        """Windows for every pair, grouped by pair in pair order."""
        lay = self.layout
        q_texts = [lay.query_template.format(query=q) for q in queries]
        q_ids = self.tokenizer(q_texts, add_special_tokens=False)["input_ids"] if q_texts else []
        lead = len(lay.doc_lead)
        d_enc = self.tokenizer([lay.doc_lead + text for _, text in pairs], add_special_tokens=False,
                               return_offsets_mapping=True) if pairs else {"input_ids": [], "offset_mapping": []}
        budget = self.max_length - lay.fixed
        windows: list[Window] = []
        for p, ((qi, text), d_ids, offsets) in enumerate(zip(pairs, d_enc["input_ids"], d_enc["offset_mapping"])):
            q = q_ids[qi]
            keep = _query_keep(len(q), len(d_ids), budget)
            q = q[:keep]
            width = max(1, budget - keep)
            starts = [0] if self.long_docs == "first" else _starts(len(d_ids), width, self.stride, self.max_windows)
            for s in starts:
                d = d_ids[s : s + width]
                ids = [*lay.prefix, *q, *lay.middle, *d, *lay.suffix]
                types = None
                if self.uses_token_types:
                    types = [*lay.prefix_types, *([lay.query_type] * len(q)), *lay.middle_types,
                             *([lay.doc_type] * len(d)), *lay.suffix_types]
                if d:
                    span = (max(0, offsets[s][0] - lead), max(0, offsets[s + len(d) - 1][1] - lead))
                else:
                    span = (0, 0)
                windows.append(Window(p, ids, types, span, len(starts)))
        return windows
