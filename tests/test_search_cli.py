"""``rerankit index build|info`` and ``rerankit search`` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli_captured

from rerankit import load_reranker
from rerankit.retrieval import load_index


def run_subprocess(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rerankit", *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


@pytest.fixture
def bm25_index(tmp_path: Path, tiny_corpus_jsonl: Path, capsys) -> Path:
    code, out, err = run_cli_captured(["index", "build", str(tiny_corpus_jsonl), "--out", str(tmp_path / "ix"), "--no-dense"], capsys)
    assert code == 0, err
    assert "read 6 passages" in out and "6 passages" in out and "dense: no" in out
    return tmp_path / "ix"


def test_index_build_and_info(bm25_index: Path, capsys) -> None:
    code, out, _ = run_cli_captured(["index", "info", str(bm25_index), "--json"], capsys)
    assert code == 0
    manifest = json.loads(out)
    assert manifest["num_passages"] == 6 and manifest["dense"] is False and manifest["source"].endswith("corpus.jsonl")
    code, out, _ = run_cli_captured(["index", "info", str(bm25_index)], capsys)
    assert code == 0 and manifest["version"] in out and "passages" in out


def test_search_json_bm25(bm25_index: Path, capsys) -> None:
    code, out, err = run_cli_captured(["search", str(bm25_index), "programming language", "-k", "2", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [h.id for h in load_index(bm25_index).search("programming language", 2)]
    assert {r["id"] for r in rows} == {"rust", "python"}
    assert [r["rank"] for r in rows] == [1, 2] and [r["first_stage_rank"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"rank", "first_stage_rank", "score", "id", "title", "text"}
    assert rows[0]["score"] >= rows[1]["score"] > 0
    assert rows[0]["title"] in ("Rust", "Python") and "programming language" in rows[0]["text"]


def test_search_table(bm25_index: Path, capsys) -> None:
    code, out, _ = run_cli_captured(["search", str(bm25_index), "Eiffel Tower", "-k", "1"], capsys)
    assert code == 0
    assert "paris" in out and "1st stage" in out and "Paris: Paris is the capital" in out
    code, out, _ = run_cli_captured(["search", str(bm25_index), "zzzunknownzzz"], capsys)
    assert code == 0 and "no results" in out


def test_search_dense_and_hybrid(dense_index_dir: Path, capsys) -> None:
    code, out, _ = run_cli_captured(["search", str(dense_index_dir), "a kitten chasing mice", "-k", "1", "--mode", "dense", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["id"] == "cat"
    code, out, _ = run_cli_captured(["search", str(dense_index_dir), "memory safe systems language", "-k", "3", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and rows[0]["id"] == "rust" and len(rows) == 3  # default mode: hybrid (RRF scores)
    assert rows[0]["score"] == pytest.approx(2 / 61)


def test_search_rerank_bi_encoder(dense_index_dir: Path, capsys) -> None:
    query = "which drink has caffeine"
    code, out, err = run_cli_captured(
        ["search", str(dense_index_dir), query, "-k", "3", "-n", "6", "--mode", "bm25", "--rerank", "bi-encoder", "--json"],
        capsys,
    )
    assert code == 0, err
    rows = json.loads(out)
    first_stage = load_index(dense_index_dir).search(query, 6, mode="bm25")
    assert len(rows) == min(3, len(first_stage))
    # first_stage_rank points at the BM25 position; scores are the bi-encoder's, best first.
    for row in rows:
        assert first_stage[row["first_stage_rank"] - 1].id == row["id"]
    expected = load_reranker("bi-encoder").score(query, [h.document for h in first_stage])
    best = np.argsort(-expected, kind="stable")[: len(rows)]
    assert [r["id"] for r in rows] == [first_stage[i].id for i in best]
    np.testing.assert_allclose([r["score"] for r in rows], expected[best], rtol=1e-5)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


def test_index_build_from_folder(tmp_path: Path, capsys) -> None:
    notes = tmp_path / "notes"
    (notes / "deep").mkdir(parents=True)
    (notes / "deep" / "a.md").write_text(" ".join(f"word{i}" for i in range(25)))
    code, out, err = run_cli_captured(
        ["index", "build", str(notes), "--out", str(tmp_path / "ix"), "--no-dense", "--chunk-words", "10", "--overlap-words", "5"],
        capsys,
    )
    assert code == 0, err
    assert [d.id for d in load_index(tmp_path / "ix").documents] == ["deep/a.md#0", "deep/a.md#1", "deep/a.md#2", "deep/a.md#3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{ix}", "   "], "query is empty"),
        (["search", "{tmp}/missing", "cats"], "no index at"),
        (["search", "{ix}", "cats", "-k", "0"], "-k must be a positive integer"),
        (["search", "{ix}", "cats", "-n", "0", "--rerank", "bi-encoder"], "-n must be a positive integer"),
        (["search", "{ix}", "cats", "--mode", "sparse"], "--mode must be one of"),
        (["search", "{ix}", "cats", "--mode", "dense"], "no embeddings"),
        (["search", "{ix}", "cats", "--rerank", "no-such-spec"], "unknown reranker spec"),
        (["index", "build", "{tmp}/nothing.jsonl", "--out", "{tmp}/o"], "source not found"),
        (["index", "build", "{tmp}/bad.jsonl", "--out", "{tmp}/o"], "bad.jsonl:2: invalid JSON"),
        (["index", "build", "{tmp}/bad.jsonl", "--out", "{tmp}/o", "--chunk-words", "0"], "--chunk-words must be a positive integer"),
        (["index", "info", "{tmp}"], "no CURRENT file"),
    ],
)
def test_bad_input_exits_2_with_one_line(bm25_index: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"_id": "a", "text": "fine"}\n{"_id": "b", "text"\n')
    result = run_subprocess([a.format(ix=bm25_index, tmp=tmp_path) for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "o").exists()


def test_snippets_are_one_line_and_cut_with_an_ellipsis():
    from rerankit.cli.app import snippet

    assert snippet("a  b\n\tc", 10) == "a b c"
    assert snippet("abcdefghij", 10) == "abcdefghij"
    cut = snippet("abcdefghijk", 10)
    assert cut == "abcdefghi…" and len(cut) == 10
