"""Readers for the BEIR and TREC layouts: corpus.jsonl, queries.jsonl, qrels, run files.

Every reader raises ``DataFormatError`` naming the file and line of the first bad record: text that
is not UTF-8, a missing field, a bad number, or an id given twice (a byte-order mark is dropped).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .errors import DataFormatError, InvalidInputError
from .io import read_jsonl, read_text_lines
from .types import Document

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def _field(obj: dict, names: tuple[str, ...], path: Path, lineno: int) -> str:
    for name in names:
        if name in obj and isinstance(obj[name], (str, int)) and not isinstance(obj[name], bool):
            return str(obj[name])
    raise DataFormatError(f"{path}:{lineno}: missing string field {' or '.join(repr(n) for n in names)}")


def read_corpus_jsonl(path: str | Path) -> list[Document]:
    """BEIR ``corpus.jsonl``: ``{"_id", "title"?, "text"}`` per line."""
    path = Path(path)
    docs = []
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path):
        doc_id = _field(obj, ("_id", "id", "docid"), path, lineno)
        text = _field(obj, ("text", "contents"), path, lineno)
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise DataFormatError(f"{path}:{lineno}: 'title' must be a string")
        _check_new(first_line, doc_id, "document id", path, lineno)
        docs.append(Document(text=text, title=title, id=doc_id))
    return docs


def read_queries_jsonl(path: str | Path) -> dict[str, str]:
    """BEIR ``queries.jsonl``: ``{"_id", "text"}`` per line, as ``{query_id: text}``."""
    path = Path(path)
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path):
        query_id = _field(obj, ("_id", "id", "qid"), path, lineno)
        _check_new(first_line, query_id, "query id", path, lineno)
        queries[query_id] = _field(obj, ("text", "query"), path, lineno)
    return queries


def _check_new(first_line: dict[str, int], key: str, what: str, path: Path, lineno: int) -> None:
    """Remember that ``key`` is on line ``lineno``; ``DataFormatError`` if an earlier line had it."""
    if key in first_line:
        raise DataFormatError(f"{path}:{lineno}: {what} {key!r} again (first on line {first_line[key]})")
    first_line[key] = lineno


def read_qrels(path: str | Path) -> Qrels:
    """Relevance judgments ``{query_id: {doc_id: grade}}``.

    Accepts BEIR's ``query-id<TAB>corpus-id<TAB>score`` (a header line is skipped) and TREC's
    four-column ``qid 0 docid grade``.
    """
    path = Path(path)
    qrels: Qrels = defaultdict(dict)
    for lineno, line in read_text_lines(path):
        parts = line.split()
        if not parts:
            continue
        if lineno == 1 and parts[0] in ("query-id", "query_id", "qid"):
            continue
        if len(parts) == 3:
            qid, docid, grade = parts
        elif len(parts) == 4:
            qid, _, docid, grade = parts
        else:
            raise DataFormatError(f"{path}:{lineno}: expected 3 or 4 columns, got {len(parts)}")
        try:
            value = int(float(grade))
        except (ValueError, OverflowError) as exc:
            raise DataFormatError(f"{path}:{lineno}: relevance grade {grade!r} is not a number") from exc
        if qrels[qid].get(docid, value) != value:
            raise DataFormatError(f"{path}:{lineno}: query {qid!r} judges {docid!r} again with another grade")
        qrels[qid][docid] = value
    if not qrels:
        raise DataFormatError(f"{path}: no judgments")
    return dict(qrels)


def read_trec_run(path: str | Path) -> Run:
    """A TREC run file ``qid Q0 docid rank score tag`` as ``{query_id: {doc_id: score}}``."""
    path = Path(path)
    run: Run = defaultdict(dict)
    for lineno, line in read_text_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataFormatError(f"{path}:{lineno}: expected 6 columns (qid Q0 docid rank score tag), got {len(parts)}")
        qid, _, docid, _, score, _ = parts
        try:
            value = float(score)
        except ValueError as exc:
            raise DataFormatError(f"{path}:{lineno}: score {score!r} is not a number") from exc
        if math.isnan(value):
            raise DataFormatError(f"{path}:{lineno}: score is NaN")
        if docid in run[qid]:
            raise DataFormatError(f"{path}:{lineno}: query {qid!r} lists {docid!r} twice")
        run[qid][docid] = value
    if not run:
        raise DataFormatError(f"{path}: empty run")
    return dict(run)


def format_trec_run(run: Run, tag: str = "rerankit") -> str:
    """``run`` as TREC run lines (``qid Q0 docid rank score tag``): queries in the given order, each
    query's documents by score, best first; scores written exactly (``repr``), so reading them back
    gives the same floats."""
    if not tag or any(c.isspace() for c in tag):
        raise InvalidInputError(f"a run tag is one word, got {tag!r}")
    lines = []
    for qid, docs in run.items():
        for rank, (docid, score) in enumerate(sorted(docs.items(), key=lambda item: -item[1]), start=1):
            lines.append(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")
    return "".join(lines)


def write_trec_run(path: str | Path, run: Run, tag: str = "rerankit") -> None:
    """Write ``run`` as a TREC run file, atomically (see ``format_trec_run``)."""
    from .io import atomic_write_text

    atomic_write_text(path, format_trec_run(run, tag))
