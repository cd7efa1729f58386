"""First-stage candidates for evaluation: a TREC run file, or BM25 built on the fly over a BEIR corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..datasets import Run, read_corpus_jsonl, read_trec_run
from ..errors import DataFormatError, InvalidInputError
from ..types import Document
from ..validation import positive_int

BUNDLED_BM25_RUN = Path("runs") / "bm25.top100.trec"
QRELS_CANDIDATES = (Path("qrels") / "test-full.tsv", Path("qrels") / "test.tsv")


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The BEIR folder, or ``DataFormatError`` if it does not exist."""
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataFormatError(f"data folder not found: {data_dir}")
    return path


def resolve_qrels_path(data_dir: str | Path, qrels: str | Path | None = None) -> Path:
    """``qrels`` (as given, else relative to ``data_dir``), or the folder's ``qrels/test-full.tsv``
    when present (all judgments, as published TREC DL figures use), else ``qrels/test.tsv``."""
    if qrels is not None:
        candidate = Path(qrels).expanduser()
        if candidate.is_file():
            return candidate
        inside = Path(data_dir) / candidate
        if not candidate.is_absolute() and inside.is_file():
            return inside
        raise DataFormatError(f"qrels file not found: {qrels}")
    for rel in QRELS_CANDIDATES:
        if (Path(data_dir) / rel).is_file():
            return Path(data_dir) / rel
    raise DataFormatError(f"no qrels in {data_dir}: expected {' or '.join(str(p) for p in QRELS_CANDIDATES)}")


def resolve_run_path(data_dir: str | Path, run: str | Path) -> Path:
    """``run`` as given if it exists, else relative to ``data_dir`` (so ``runs/bm25.top100.trec`` works)."""
    candidate = Path(run).expanduser()
    if candidate.is_file():
        return candidate
    inside = Path(data_dir) / candidate
    if not candidate.is_absolute() and inside.is_file():
        return inside
    raise DataFormatError(f"run file not found: {run} (also looked in {data_dir})")


def load_run(path: str | Path, query_ids: Iterable[str] | None = None) -> Run:
    """A TREC run file as a Run dict, optionally kept to ``query_ids``."""
    run = read_trec_run(path)
    if query_ids is not None:
        keep = set(query_ids)
        run = {qid: docs for qid, docs in run.items() if qid in keep}
    return run


def bm25_run(
    corpus: Sequence[Document],
    queries: Mapping[str, str],
    depth: int = 100,
    k1: float = 0.9,
    b: float = 0.4,
) -> Run:
    """BM25 (bm25s, English stemming and stopwords) over title + text; top ``depth`` per query.

    Documents that share no term with the query (score 0) are left out, so a query can get fewer
    than ``depth`` candidates.
    """
    from ..retrieval.bm25 import BM25

    positive_int(depth, "depth")
    if not corpus:
        raise InvalidInputError("cannot run BM25 over an empty corpus")
    ids = [doc.id if doc.id is not None else str(i) for i, doc in enumerate(corpus)]
    if len(set(ids)) != len(ids):
        twice = next(d for d, n in Counter(ids).items() if n > 1)
        raise InvalidInputError(f"document id {twice!r} is given to more than one document of the corpus")
    index = BM25(k1=k1, b=b).index([doc.full_text for doc in corpus])
    qids = list(queries)
    if not qids:
        return {}
    indices, scores = index.search_many([queries[q] for q in qids], depth)
    run: Run = {}
    for row, qid in enumerate(qids):
        run[qid] = {ids[int(i)]: float(s) for i, s in zip(indices[row], scores[row]) if s > 0}
    return run


def bm25_run_for_folder(data_dir: str | Path, queries: Mapping[str, str], depth: int = 100) -> Run:
    """``bm25_run`` over ``DATA/corpus.jsonl`` for ``queries``."""
    corpus_path = Path(data_dir) / "corpus.jsonl"
    if not corpus_path.is_file():
        raise DataFormatError(f"{corpus_path} not found")
    return bm25_run(read_corpus_jsonl(corpus_path), queries, depth=depth)
