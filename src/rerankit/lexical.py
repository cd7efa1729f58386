"""BM25 of a query against candidate texts, with document frequencies from a fixed reference corpus.

A reranker sees only the query and its candidates, and 100 candidates that all match the query are
a poor sample for inverse document frequencies. ``LexicalScorer`` carries the frequencies of a
reference corpus instead (``from_texts``; stored gzipped beside a model with ``save``), so a rare
query word weighs as much as it would in a full BM25 index. Scores are divided by the query's
highest possible score, which puts them in [0, 1] whatever the query's length.

Tokens are those of rerankit's BM25 first stage (``bm25s`` with English stopwords and the Snowball
stemmer).
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import DataFormatError, InvalidInputError
from .io import atomic_write_bytes

LEXICAL_FORMAT = "rerankit-lexical-v1"


_THREAD = threading.local()  # PyStemmer's stemmers keep a cache and are not to be shared across threads


def _stemmer(language: str):
    stemmers = _THREAD.__dict__.setdefault("stemmers", {})
    if language not in stemmers:
        import Stemmer

        stemmers[language] = Stemmer.Stemmer(language)
    return stemmers[language]


def _tokenize(texts: Sequence[str], language: str | None) -> list[list[str]]:
    import bm25s

    stemmer = _stemmer(language) if language else None
    tokens = bm25s.tokenize(list(texts), stopwords="en" if language == "english" else None, stemmer=stemmer,
                            return_ids=False, show_progress=False)
    return [list(t) for t in tokens]


class LexicalScorer:
    """BM25 (``k1``, ``b``) with fixed document frequencies ``df`` over ``documents`` reference texts."""

    def __init__(self, df: dict[str, int], documents: int, average_length: float, *, k1: float = 0.9,
                 b: float = 0.4, language: str | None = "english") -> None:
        if documents < 1 or average_length <= 0:
            raise InvalidInputError("a lexical scorer needs >= 1 reference document and a positive average length")
        self.df, self.documents, self.average_length = df, documents, average_length
        self.k1, self.b, self.language = k1, b, language

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, min_df: int = 2, **kwargs) -> LexicalScorer:
        """Frequencies counted over ``texts``; terms seen in fewer than ``min_df`` texts are not kept
        (they score as if seen once)."""
        tokens = _tokenize(list(texts), kwargs.get("language", "english"))
        if not tokens:
            raise InvalidInputError("cannot count document frequencies over no texts")
        df: Counter[str] = Counter()
        for t in tokens:
            df.update(set(t))
        kept = {term: n for term, n in df.items() if n >= min_df}
        average = sum(len(t) for t in tokens) / len(tokens)
        return cls(kept, len(tokens), max(average, 1.0), **kwargs)

    def idf(self, term: str) -> float:
        n = self.df.get(term, 1)
        return math.log(1.0 + (self.documents - n + 0.5) / (n + 0.5))

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """BM25 of ``query`` against each text over its highest possible score: floats in [0, 1]."""
        query_terms = set(_tokenize([query], self.language)[0])
        if not texts:
            return np.zeros(0, dtype=np.float32)
        if not query_terms:
            return np.zeros(len(texts), dtype=np.float32)
        weights = {term: self.idf(term) for term in query_terms}
        ceiling = sum(weights.values()) * (self.k1 + 1.0)
        out = np.zeros(len(texts), dtype=np.float32)
        for i, tokens in enumerate(_tokenize(texts, self.language)):
            counts = Counter(t for t in tokens if t in weights)
            norm = self.k1 * (1.0 - self.b + self.b * len(tokens) / self.average_length)
            out[i] = sum(w * counts[t] * (self.k1 + 1.0) / (counts[t] + norm) for t, w in weights.items() if counts[t])
        return out / ceiling

    def save(self, path: str | Path) -> None:
        """Gzipped JSON, written atomically."""
        body = {"format": LEXICAL_FORMAT, "documents": self.documents, "average_length": self.average_length,
                "k1": self.k1, "b": self.b, "language": self.language, "df": dict(sorted(self.df.items()))}
        atomic_write_bytes(path, gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0))

    @classmethod
    def load(cls, path: str | Path) -> LexicalScorer:
        try:
            body = json.loads(gzip.decompress(Path(path).read_bytes()))
        except (OSError, ValueError, EOFError) as exc:
            raise DataFormatError(f"cannot read lexical statistics {path}: {exc}") from exc
        if not isinstance(body, dict) or body.get("format") != LEXICAL_FORMAT:
            raise DataFormatError(f"{path}: not a {LEXICAL_FORMAT} file")
        try:
            return cls({str(k): int(v) for k, v in body["df"].items()}, int(body["documents"]),
                       float(body["average_length"]), k1=float(body["k1"]), b=float(body["b"]),
                       language=body["language"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: malformed lexical statistics ({exc})") from exc
