"""Long documents: overlapping windows find a relevant sentence that truncation cuts off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine_helpers import build_tiny_cross_encoder
from rerankit.rerankers.cross_encoder import CrossEncoderReranker

FILLER = (
    "The committee reviewed the quarterly budget and discussed the maintenance schedule for the "
    "municipal buildings, including the library roof, the heating system and the parking lot. "
)
NEEDLE = "The zephyr falcon migrates to Patagonia every winter."
QUERY = "where does the zephyr falcon migrate"


class OverlapRunner:
    """A deterministic scorer: how many distinct query words occur in the document part (token type 1).

    It stands in for a trained model so that the test checks windowing and aggregation exactly.
    """

    name = "overlap"

    def __init__(self, stop_ids: set[int]) -> None:
        self.stop_ids = stop_ids

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        out = []
        for ids, mask, types in zip(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]):
            real = mask == 1
            query = set(ids[real & (types == 0)].tolist()) - self.stop_ids
            doc = set(ids[real & (types == 1)].tolist())
            out.append([float(len(query & doc))])
        return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("engine-long"))


def _engine(model_dir: Path, long_docs: str) -> CrossEncoderReranker:
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32", activation="none", long_docs=long_docs, stride=32)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    stop = set(tok.all_special_ids) | set(tok(["where does the"], add_special_tokens=False)["input_ids"][0])
    engine.runner = OverlapRunner(stop)
    return engine


def test_relevant_sentence_beyond_the_truncation_point(model_dir):
    long_doc = FILLER * 20 + NEEDLE + " " + FILLER * 2
    needle_at = long_doc.index(NEEDLE)
    tokenizer = CrossEncoderReranker(model_dir, backend="torch-fp32").tokenizer
    tokens_before = len(tokenizer(long_doc[:needle_at], add_special_tokens=False)["input_ids"])
    assert tokens_before > 512
    docs = ["Falcons are birds of prey.", long_doc, FILLER]

    truncated = _engine(model_dir, "first").rerank(QUERY, docs)
    assert truncated[0].index == 0  # truncation never sees the needle
    assert truncated[[r.index for r in truncated].index(1)].score == 0.0

    chunked = _engine(model_dir, "max").rerank(QUERY, docs)
    assert chunked[0].index == 1
    start, end = chunked[0].offsets
    assert start <= needle_at and needle_at + len(NEEDLE) <= end
    assert 0 < start  # a later window, not the truncated head


def test_short_documents_are_one_window_with_full_span(model_dir):
    engine = _engine(model_dir, "max")
    windows = engine.builder.build([QUERY], [(0, NEEDLE), (0, FILLER * 20)])
    assert [w.pair for w in windows][:1] == [0] and sum(w.pair == 0 for w in windows) == 1
    assert windows[0].span == (0, len(NEEDLE))
    long_windows = [w for w in windows if w.pair == 1]
    assert len(long_windows) > 1 and all(len(w.ids) <= engine.max_length for w in long_windows)
    spans = [w.span for w in long_windows]
    assert spans[0][0] == 0 and spans[-1][1] == len((FILLER * 20).rstrip())
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # consecutive windows overlap


def test_first_is_plain_truncation_and_mean_averages(model_dir):
    from rerankit.rerankers.cross_encoder import CrossEncoderReranker

    doc = FILLER * 20 + NEEDLE
    plain = CrossEncoderReranker(str(model_dir), activation="none", backend="torch")
    first = CrossEncoderReranker(model_dir, backend="torch-fp32", activation="none", long_docs="first")
    np.testing.assert_allclose(first.score(QUERY, [doc, NEEDLE]), plain.score(QUERY, [doc, NEEDLE]), rtol=1e-5, atol=1e-6)
    mean = _engine(model_dir, "mean").score(QUERY, [doc])[0]
    best = _engine(model_dir, "max").score(QUERY, [doc])[0]
    assert 0 < mean < best
