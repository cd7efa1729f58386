"""``rerankit eval --depths``: quality and latency per candidate depth, and the sweet spot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from test_eval_cli import PNG_MAGIC

from rerankit.errors import InvalidInputError
from rerankit.evaluation.depths import DepthPoint, choose_sweet_spot, evaluate_depths, parse_depths
from rerankit.rerankers.base import Reranker
from rerankit.types import Document


class KeywordOracle(Reranker):
    """Scores 1 for documents containing ``word``, else 0: a perfect reranker for the folder below."""

    score_kind = "similarity"

    def __init__(self, word: str) -> None:
        self.word, self.name = word, f"oracle:{word}"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return np.array([1.0 if self.word in d.text else 0.0 for d in documents])


def make_folder(root: Path, relevant_first_stage_rank: int) -> Path:
    """One query; the only relevant passage sits at ``relevant_first_stage_rank`` (1-based) of the run."""
    root.mkdir(parents=True)
    docs = [(f"d{i}", f"passage number {i} about gardens") for i in range(1, 9)]
    relevant = f"d{relevant_first_stage_rank}"
    docs = [(i, t + (" golden" if i == relevant else "")) for i, t in docs]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in docs))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "gardens"}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq1\t{relevant}\t1\n")
    (root / "run.trec").write_text("".join(f"q1 Q0 d{i} {i} {10 - i} run\n" for i in range(1, 9)))
    return root


def test_quality_rises_until_the_relevant_passage_is_in_reach(tmp_path):
    folder = make_folder(tmp_path / "c", relevant_first_stage_rank=4)
    sweep = evaluate_depths(folder, "1,2,5,8", KeywordOracle("golden"), run="run.trec")
    by_depth = {p.depth: p for p in sweep.points}
    assert by_depth[1].ndcg10_after == pytest.approx(by_depth[1].ndcg10_before)  # nothing to reorder
    assert by_depth[2].ndcg10_after == pytest.approx(by_depth[2].ndcg10_before)  # passage still below depth
    assert by_depth[5].ndcg10_after == pytest.approx(1.0) and by_depth[8].ndcg10_after == pytest.approx(1.0)
    assert sweep.sweet_spot == 5 and sweep.best_depth == 5
    assert all(p.ms_per_query >= 0 for p in sweep.points)


def test_sweet_spot_is_the_smallest_depth_close_to_the_best():
    points = [DepthPoint(10, 0.5, 0.60, 5.0, 0.01), DepthPoint(20, 0.5, 0.688, 9.0, 0.4),
              DepthPoint(50, 0.5, 0.69, 20.0, None), DepthPoint(100, 0.5, 0.689, 40.0, 0.8)]
    assert choose_sweet_spot(points, tolerance=0.005) == (20, 50)
    assert choose_sweet_spot(points, tolerance=0.001) == (50, 50)
    # within tolerance but significantly worse: not the sweet spot
    points[1] = DepthPoint(20, 0.5, 0.688, 9.0, 0.01)
    assert choose_sweet_spot(points, tolerance=0.005) == (50, 50)


@pytest.mark.parametrize("bad", ["", "a,b", "0,10", "-5", ","])
def test_bad_depths_are_rejected(bad):
    with pytest.raises(InvalidInputError):
        parse_depths(bad)


def test_cli_sweep_prints_table_json_and_plot(tmp_path, capsys):
    folder = make_folder(tmp_path / "c", relevant_first_stage_rank=3)
    out, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    code = run_cli(["eval", str(folder), "--run", "run.trec", "--rerank", "bi-encoder", "--depths", "2,4",
                    "--out", str(out), "--plot", str(plot)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sweet spot" in printed and "ms / query" in printed
    data = json.loads(out.read_text())
    assert [p["depth"] for p in data["points"]] == [2, 4] and data["sweet_spot"] in (2, 4)
    assert plot.read_bytes().startswith(PNG_MAGIC)
    assert run_cli(["eval", str(folder), "--run", "run.trec", "--rerank", "bi-encoder", "--depths", "2,4",
                    "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["depth"] for p in printed["points"]] == [2, 4] and printed["sweet_spot"] == data["sweet_spot"]


def test_cli_depths_without_rerank_is_a_one_line_error(tmp_path, capsys):
    folder = make_folder(tmp_path / "c", relevant_first_stage_rank=3)
    assert run_cli(["eval", str(folder), "--run", "run.trec", "--depths", "5,10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--depths needs --rerank" in err[0]
