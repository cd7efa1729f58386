"""``rerankit bench`` on a tiny model: every requested backend and the reference get a row (no timing asserted)."""

from __future__ import annotations

import json

from cli_helpers import run_cli
from engine_helpers import build_tiny_cross_encoder


def test_bench_json_has_a_row_per_backend_and_the_reference(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path / "cache"))
    model = build_tiny_cross_encoder(tmp_path / "model")
    code = run_cli(["bench", str(model), "--backends", "torch-fp32,onnx-int8", "--sizes", "2,5", "--repeats", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["backend"]: r for r in report["rows"]}
    assert set(rows) == {"sentence-transformers", "torch-fp32", "onnx-int8"}
    for row in rows.values():
        assert row["error"] is None and set(row["latency_ms"]) == {"2", "5"} and row["docs_per_s"] > 0
    assert report["cpu"]["threads"] >= 1


def test_bench_table_and_bad_sizes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path / "cache"))
    model = build_tiny_cross_encoder(tmp_path / "model")
    assert run_cli(["bench", str(model), "--backends", "torch-fp32", "--sizes", "3", "--repeats", "1", "--no-reference"]) == 0
    assert "torch-fp32" in capsys.readouterr().out
    assert run_cli(["bench", str(model), "--sizes", "a,b"]) == 2
