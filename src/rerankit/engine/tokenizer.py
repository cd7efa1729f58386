"""A model folder's tokenizer without importing transformers, where that gives the same ids.

``load_tokenizer(folder)`` reads ``tokenizer.json`` with the ``tokenizers`` library (a 20 ms import,
against about a second for transformers' tokenizer classes) for the WordPiece tokenizer classes whose
``tokenizer.json`` transformers loads as it is (BERT, DistilBERT, ELECTRA: MiniLM cross-encoders,
rerankit's default), and falls back to ``transformers.AutoTokenizer`` for every other folder.

``FastTokenizer`` answers the calls the engine makes of a Hugging Face fast tokenizer: ``tok(texts,
add_special_tokens=..., return_offsets_mapping=...)["input_ids"]``, ``tok(a, b).encodings``,
``tok(texts, truncation=True, max_length=n)``, ``pad_token_id``, ``unk_token_id`` and
``convert_tokens_to_ids``. The file's own truncation and padding settings are switched off, and set
per call, as transformers does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError

# tokenizer classes whose tokenizer.json transformers uses unchanged (checked against AutoTokenizer
# in tests/test_tokenizer.py)
VERBATIM_CLASSES = frozenset({"BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer", "DistilBertTokenizerFast",
                              "ElectraTokenizer", "ElectraTokenizerFast"})


class Encoded(dict):
    """A tokenizer call's result: ``input_ids`` (and offsets, token types) by key, ``encodings`` by attribute."""

    def __init__(self, encodings: list, single: bool, offsets: bool, token_types: bool) -> None:
        pick = (lambda values: values[0]) if single else (lambda values: values)  # noqa: E731
        super().__init__(input_ids=pick([e.ids for e in encodings]),
                         attention_mask=pick([e.attention_mask for e in encodings]))
        if offsets:
            self["offset_mapping"] = pick([e.offsets for e in encodings])
        if token_types:
            self["token_type_ids"] = pick([e.type_ids for e in encodings])
        self.encodings = encodings


def _token_text(value) -> str | None:
    """A special token from tokenizer_config.json: a string, or an ``{"content": ...}`` object."""
    return value.get("content") if isinstance(value, dict) else value


class FastTokenizer:
    """``tokenizer.json`` through the ``tokenizers`` library, called like a transformers fast tokenizer."""

    is_fast = True

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.backend.no_padding()
        self.backend.no_truncation()
        config = _tokenizer_config(folder)
        self.truncation_side = "left" if config.get("truncation_side") == "left" else "right"
        self.pad_token_id = self._id_of(config.get("pad_token"))
        self.unk_token_id = self._id_of(config.get("unk_token"))

    def _id_of(self, token) -> int | None:
        text = _token_text(token)
        return None if text is None else self.backend.token_to_id(text)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        """The id of ``token``, or the unknown token's id where the vocabulary lacks it (as transformers)."""
        found = self.backend.token_to_id(token)
        return self.unk_token_id if found is None else found

    def __call__(self, text: str | Sequence[str], text_pair: str | None = None, *, add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, return_token_type_ids: bool = False,
                 truncation: bool = False, max_length: int | None = None, verbose: bool = True) -> Encoded:
        if truncation and max_length is not None:
            self.backend.enable_truncation(max_length, strategy="longest_first", direction=self.truncation_side)
            try:
                return self(text, text_pair, add_special_tokens=add_special_tokens, return_token_type_ids=return_token_type_ids,
                            return_offsets_mapping=return_offsets_mapping)
            finally:
                self.backend.no_truncation()
        if isinstance(text, str):  # an empty pair text means no pair, as in transformers
            encodings = [self.backend.encode(text, text_pair or None, add_special_tokens=add_special_tokens)]
            return Encoded(encodings, True, return_offsets_mapping, return_token_type_ids)
        if text_pair is not None:
            raise InvalidInputError("a text pair goes with a single text")
        encodings = self.backend.encode_batch(list(text), add_special_tokens=add_special_tokens)
        return Encoded(encodings, False, return_offsets_mapping, return_token_type_ids)


def _tokenizer_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def reads_verbatim(folder: str | Path) -> bool:
    """Whether ``FastTokenizer`` gives this folder's tokenizer exactly (see ``VERBATIM_CLASSES``)."""
    folder = Path(folder)
    return (folder / "tokenizer.json").is_file() and _tokenizer_config(folder).get("tokenizer_class") in VERBATIM_CLASSES


def load_tokenizer(folder: str | Path):
    """``FastTokenizer`` where it is exact for this folder, else transformers' fast tokenizer."""
    if reads_verbatim(folder):
        return FastTokenizer(folder)
    from transformers import AutoTokenizer

    from ..loading import quiet_hf_logging

    quiet_hf_logging()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(f"{folder}: rerankit needs a fast tokenizer (tokenizer.json)")
    return tokenizer
