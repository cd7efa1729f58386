"""``rerankit eval``: tiny BEIR folders, reports, one-line errors, and the published TREC DL19 BM25 figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``$RERANKIT_DATA`` or ``<repo root>/../shared/data``."""
    return Path(os.environ.get("RERANKIT_DATA") or REPO_ROOT.parent / "shared" / "data")


def make_beir(root: Path, full_qrels: bool = False) -> Path:
    """Two judged queries over five passages (BEIR layout); optionally a qrels/test-full.tsv too."""
    root.mkdir(parents=True, exist_ok=True)
    docs = [
        ("d1", "Volcano", "A volcano erupts lava and ash."),
        ("d2", "", "Lava flows from an erupting volcano cool into basalt."),
        ("d3", "Pasta", "Boil pasta in salted water for ten minutes."),
        ("d4", "", "Fresh pasta cooks faster than dried pasta."),
        ("d5", "Tides", "The moon's gravity causes ocean tides."),
    ]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs)
    )
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "what comes out of a volcano"}) + "\n"
        + json.dumps({"_id": "q2", "text": "boil pasta in water"}) + "\n"
    )
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq2\td3\t1\n")
    if full_qrels:  # an extra judged passage outside the corpus lowers the ideal-DCG-normalized score
        (root / "qrels" / "test-full.tsv").write_text(
            "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\tdX\t3\nq2\td3\t1\n"
        )
    return root


def test_first_stage_only_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_beir(tmp_path / "tiny")
    assert run_cli(["eval", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["reranker"] is None and report["after"] is None
    assert report["run_source"].startswith("bm25") and report["num_queries"] == 2
    assert report["before"]["nDCG@10"] == pytest.approx(1.0)  # BM25 ranks the best passages first here
    assert set(report["before"]) == {"nDCG@10", "P@1", "P@3", "P@5", "R@100", "RR@10", "AP"}
    assert "qrels: " in captured.err and captured.err.count("test.tsv") == 1

    assert run_cli(["eval", str(data), "--depth", "20", "--max-queries", "1"]) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "R@20" in out and "1 queries evaluated" in out


def test_prefers_test_full_qrels_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_beir(tmp_path / "tiny", full_qrels=True)
    assert run_cli(["eval", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["qrels_path"].endswith("test-full.tsv") and "test-full.tsv" in captured.err
    assert report["before"]["nDCG@10"] < 1.0
    assert run_cli(["eval", str(data), "--json", "--qrels", "qrels/test.tsv"]) == 0
    assert json.loads(capsys.readouterr().out)["before"]["nDCG@10"] == pytest.approx(1.0)


def test_run_file_relative_to_data_and_rel_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_beir(tmp_path / "tiny")
    (data / "runs").mkdir()
    # d2 (grade 1) above d1 (grade 2) for q1; q2 absent from the run.
    (data / "runs" / "my.trec").write_text("q1 Q0 d2 1 2.0 t\nq1 Q0 d1 2 1.0 t\n")
    assert run_cli(["eval", str(data), "--run", "runs/my.trec", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_queries"] == 1 and report["missing_queries"] == ["q2"]
    assert report["before"]["P@1"] == 1.0
    assert run_cli(["eval", str(data), "--run", "runs/my.trec", "--json", "--rel-threshold", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["before"]["P@1"] == 0.0 and report["before"]["RR@10"] == 0.5


@pytest.mark.slow
def test_rerank_with_bi_encoder_writes_report_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_beir(tmp_path / "tiny")
    out, plot = tmp_path / "o" / "report.json", tmp_path / "o" / "plot.png"
    code = run_cli(["eval", str(data), "--rerank", "bi-encoder", "--depth", "5", "--out", str(out),
                    "--plot", str(plot), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(out.read_text())
    assert report == json.loads(captured.out)
    assert report["reranker"] == "bi-encoder" and report["depth"] == 5
    assert set(report["after"]) == set(report["before"])
    assert set(report["significance"]) == set(report["before"])
    assert report["significance"]["R@5"]["p_value"] == 1.0  # reranking within the top 5 cannot move R@5
    assert set(report["per_query_ndcg10_after"]) == {"q1", "q2"}
    assert 2 <= report["timing"]["num_docs"] <= 10  # at most depth 5 candidates for each of 2 queries
    assert set(report["timing"]["per_query_ms"]) == {"q1", "q2"}
    assert plot.read_bytes().startswith(PNG_MAGIC)


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    good = make_beir(tmp / "good")
    no_queries = make_beir(tmp / "no_queries")
    (no_queries / "queries.jsonl").unlink()
    bad_qrels = make_beir(tmp / "bad_qrels")
    (bad_qrels / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1 d2\n")
    bad_corpus = make_beir(tmp / "bad_corpus")
    with (bad_corpus / "corpus.jsonl").open("a") as f:
        f.write("{not json\n")
    return {
        "missing folder": ([str(tmp / "nope")], "data folder not found"),
        "missing queries": ([str(no_queries)], "queries.jsonl not found"),
        "malformed qrels": ([str(bad_qrels)], "test.tsv:3"),
        "malformed corpus": ([str(bad_corpus)], "corpus.jsonl:6"),
        "missing run": ([str(good), "--run", "nope.trec"], "run file not found"),
        "unknown spec": ([str(good), "--rerank", "no-such-backend"], "unknown reranker spec"),
        "bad depth": ([str(good), "--depth", "0"], "depth"),
        "bad threshold": ([str(good), "--rel-threshold", "0"], "rel_threshold"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing folder", "missing queries", "malformed qrels", "malformed corpus", "missing run", "unknown spec",
     "bad depth", "bad threshold"],
)
def test_bad_inputs_exit_2_with_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = _bad_inputs(tmp_path)[case]
    assert run_cli(["eval", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert captured.out == ""


def test_console_script_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rerankit", "eval", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: data folder not found: {tmp_path / 'missing'}"]


def test_published_bm25_figure_via_cli(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_data() / "trec-dl19-passage"
    if not (folder / "runs" / "bm25.top100.trec").is_file():
        pytest.skip(f"../shared/data not present: {folder} has no runs/bm25.top100.trec (set RERANKIT_DATA)")
    assert run_cli(["eval", str(folder), "--run", "runs/bm25.top100.trec", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["qrels_path"].endswith("test-full.tsv") and "test-full.tsv" in captured.err
    assert report["num_queries"] == 43
    assert report["before"]["nDCG@10"] == pytest.approx(0.5058, abs=1e-4)
