"""The BEIR/TREC readers: every bad record is a ``DataFormatError`` naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerankit.datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl, read_trec_run
from rerankit.errors import DataFormatError


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_a_byte_order_mark_is_dropped(tmp_path):
    qrels = read_qrels(write(tmp_path / "q.tsv", "\ufeffquery-id\tcorpus-id\tscore\nq1\td1\t1\n"))
    run = read_trec_run(write(tmp_path / "r.trec", "\ufeffq1 Q0 d1 1 2.5 tag\n"))
    corpus = read_corpus_jsonl(write(tmp_path / "c.jsonl", '\ufeff{"_id": "d1", "text": "x"}\n'))
    assert qrels == {"q1": {"d1": 1}} and run == {"q1": {"d1": 2.5}} and corpus[0].id == "d1"


@pytest.mark.parametrize("reader", [read_qrels, read_trec_run, read_corpus_jsonl, read_queries_jsonl])
def test_text_that_is_not_utf8_names_the_line(tmp_path, reader):
    lines = {read_qrels: "q1\t0\td1\t1\n", read_trec_run: "q1 Q0 d1 1 2.5 t\n",
             read_corpus_jsonl: '{"_id": "d1", "text": "x"}\n', read_queries_jsonl: '{"_id": "q1", "text": "x"}\n'}
    path = write(tmp_path / "f", lines[reader].encode() + "caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r":2: not UTF-8"):
        reader(path)


def test_ids_given_twice_are_errors(tmp_path):
    with pytest.raises(DataFormatError, match=r"c.jsonl:3: document id 'x' again \(first on line 1\)"):
        read_corpus_jsonl(write(tmp_path / "c.jsonl", '{"_id": "x", "text": "a"}\n{"_id": "y", "text": "b"}\n'
                                                       '{"_id": "x", "text": "c"}\n'))
    with pytest.raises(DataFormatError, match="query id 'q' again"):
        read_queries_jsonl(write(tmp_path / "q.jsonl", '{"_id": "q", "text": "a"}\n{"_id": "q", "text": "b"}\n'))
    with pytest.raises(DataFormatError, match=r"r.trec:2: query 'q1' lists 'd1' twice"):
        read_trec_run(write(tmp_path / "r.trec", "q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n"))
    with pytest.raises(DataFormatError, match="judges 'd1' again with another grade"):
        read_qrels(write(tmp_path / "a.tsv", "q1 0 d1 1\nq1 0 d1 2\n"))
    assert read_qrels(write(tmp_path / "b.tsv", "q1 0 d1 1\nq1 0 d1 1\n")) == {"q1": {"d1": 1}}


def test_numbers_that_are_not_usable(tmp_path):
    with pytest.raises(DataFormatError, match="grade 'inf' is not a number"):
        read_qrels(write(tmp_path / "q.tsv", "q1 0 d1 inf\n"))
    with pytest.raises(DataFormatError, match=":1: score is NaN"):
        read_trec_run(write(tmp_path / "r.trec", "q1 Q0 d1 1 nan t\n"))
    assert read_trec_run(write(tmp_path / "s.trec", "q1 Q0 d1 1 -inf t\n")) == {"q1": {"d1": float("-inf")}}


def test_json_that_python_cannot_hold_as_text_or_numbers(tmp_path):
    with pytest.raises(DataFormatError, match=r"c.jsonl:2: a \\uXXXX escape encodes half of a character"):
        read_corpus_jsonl(write(tmp_path / "c.jsonl", '{"_id": "a", "text": "ok \\ud83d\\ude00"}\n'
                                                       '{"_id": "b", "text": "bad \\ud800"}\n'))
    with pytest.raises(DataFormatError, match=r"d.jsonl:1: invalid JSON"):
        read_corpus_jsonl(write(tmp_path / "d.jsonl", '{"_id": ' + "1" * 5000 + ', "text": "x"}\n'))
    assert read_corpus_jsonl(write(tmp_path / "e.jsonl", '{"_id": "a", "text": "\\ud83d\\ude00"}\n'))[0].text == "\U0001F600"
