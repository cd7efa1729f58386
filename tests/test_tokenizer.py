"""``engine.tokenizer``: the tokenizers-only path gives transformers' ids, offsets and token types."""

from __future__ import annotations

import json

import pytest

from rerankit.engine.tokenizer import FastTokenizer, load_tokenizer, reads_verbatim
from rerankit.loading import packaged_minilm_path
from rerankit.rerankers.registry import default_model_path

TEXTS = ["How do I reset my password?", "", "   spaced   out  ", "Café naïve résumé — “quotes” 東京 🙂",
         "UPPER lower MiXeD 12,345.67 e-mail: a.b@c.org", "word " * 300, "\tTabs\nand\nnewlines\r\n"]


def _folders(tiny_cross_encoder_dir):
    return [default_model_path(), packaged_minilm_path(), tiny_cross_encoder_dir]


def test_same_ids_offsets_and_types_as_transformers(tiny_cross_encoder_dir):
    from transformers import AutoTokenizer

    for folder in _folders(tiny_cross_encoder_dir):
        assert reads_verbatim(folder), folder
        ours, theirs = FastTokenizer(folder), AutoTokenizer.from_pretrained(folder)
        for kwargs in ({"add_special_tokens": False, "return_offsets_mapping": True}, {},
                       {"truncation": True, "max_length": 16}):
            a, b = ours(TEXTS, **kwargs), theirs(TEXTS, **kwargs)
            assert a["input_ids"] == b["input_ids"], (folder, kwargs)
            if "return_offsets_mapping" in kwargs:
                assert [list(map(tuple, o)) for o in a["offset_mapping"]] == \
                       [list(map(tuple, o)) for o in b["offset_mapping"]]
        for query, doc in zip(TEXTS, reversed(TEXTS)):
            a = ours(query, doc, return_token_type_ids=True)
            b = theirs(query, doc, return_token_type_ids=True)
            assert a["input_ids"] == b["input_ids"] and a["token_type_ids"] == b["token_type_ids"]
            assert a.encodings[0].sequence_ids == b.encodings[0].sequence_ids
        assert (ours.pad_token_id, ours.unk_token_id) == (theirs.pad_token_id, theirs.unk_token_id)
        for token in ("yes", "no", "zzqqxxnotaword"):
            assert ours.convert_tokens_to_ids(token) == theirs.convert_tokens_to_ids(token)


def test_the_files_own_truncation_is_ignored():
    # the default's tokenizer.json says truncate at 128; transformers ignores that, and so must we
    assert json.loads((default_model_path() / "tokenizer.json").read_text())["truncation"]
    ids = FastTokenizer(default_model_path())(["word " * 300], add_special_tokens=False)["input_ids"][0]
    assert len(ids) == 300


def test_other_tokenizer_classes_go_through_transformers(tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "tok"
    AutoTokenizer.from_pretrained(packaged_minilm_path()).save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))
    assert not reads_verbatim(folder)
    assert not isinstance(load_tokenizer(folder), FastTokenizer)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert not reads_verbatim(folder)


def test_a_pair_needs_a_single_text():
    from rerankit.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        FastTokenizer(default_model_path())(["a", "b"], "c")
