"""Evaluation library: hand-computed metrics, significance, reranking a run, reports, plots, BM25 first stage."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rerankit.datasets import read_qrels, read_trec_run
from rerankit.errors import DataFormatError, InvalidInputError, RerankitError
from rerankit.evaluation import (
    Report,
    bm25_run,
    default_measures,
    evaluate,
    evaluate_folder,
    paired_test,
    render_png,
    rerank_run,
    trec_order,
    write_plot,
)
from rerankit.evaluation.significance import compare
from rerankit.rerankers.base import Reranker
from rerankit.types import Document

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``$RERANKIT_DATA`` or ``<repo root>/../shared/data``."""
    return Path(os.environ.get("RERANKIT_DATA") or REPO_ROOT.parent / "shared" / "data")


# --------------------------------------------------------------------------- metrics, by hand

# q1: ranking d2 (0), d1 (grade 2), d3 (grade 1), d4 (unjudged), d5 (grade 0); d7 (grade 1) not retrieved.
# q2: d9 (grade 1) first.  q3: judged, absent from the run.  q4: in the run, not judged.
QRELS = {
    "q1": {"d1": 2, "d3": 1, "d5": 0, "d7": 1},
    "q2": {"d9": 1},
    "q3": {"d1": 1},
}
RUN = {
    "q1": {"d2": 0.9, "d1": 0.8, "d3": 0.7, "d4": 0.6, "d5": 0.5},
    "q2": {"d9": 1.0, "d8": 0.5},
    "q4": {"d1": 1.0},
}
L2 = math.log2
Q1_NDCG10 = (2 / L2(3) + 1 / L2(4)) / (2 / L2(2) + 1 / L2(3) + 1 / L2(4))
Q1 = {"nDCG@10": Q1_NDCG10, "P@1": 0.0, "P@3": 2 / 3, "P@5": 2 / 5, "R@100": 2 / 3, "RR@10": 1 / 2,
      "AP": (1 / 2 + 2 / 3) / 3}
Q2 = {"nDCG@10": 1.0, "P@1": 1.0, "P@3": 1 / 3, "P@5": 1 / 5, "R@100": 1.0, "RR@10": 1.0, "AP": 1.0}


def test_hand_computed_per_query_values() -> None:
    assert Q1_NDCG10 == pytest.approx(1.761860 / 3.130930, abs=1e-6)  # DCG / IDCG by hand
    result = evaluate(RUN, QRELS)
    assert result.measures == default_measures(100)
    for metric in result.measures:
        assert result.per_query[metric]["q1"] == pytest.approx(Q1[metric], abs=1e-9), metric
        assert result.per_query[metric]["q2"] == pytest.approx(Q2[metric], abs=1e-9), metric
        assert result.aggregate[metric] == pytest.approx((Q1[metric] + Q2[metric]) / 2, abs=1e-9), metric


def test_query_convention_trec_eval_default_and_missing_as_zero() -> None:
    result = evaluate(RUN, QRELS)
    assert result.query_ids == ["q1", "q2"]  # q3 (not in run) and q4 (not judged) are left out
    assert result.missing_queries == ["q3"]
    assert result.num_judged == 3
    padded = evaluate(RUN, QRELS, missing_as_zero=True)
    assert padded.query_ids == ["q1", "q2", "q3"]
    assert padded.per_query["nDCG@10"]["q3"] == 0.0
    assert padded.aggregate["P@1"] == pytest.approx(1 / 3)


def test_rel_threshold_applies_to_binary_measures_only() -> None:
    result = evaluate(RUN, QRELS, rel_threshold=2)
    q1 = {m: result.per_query[m]["q1"] for m in result.measures}
    # Only d1 (grade 2, rank 2) counts as relevant now; nDCG keeps graded gains.
    assert q1 == pytest.approx({"nDCG@10": Q1_NDCG10, "P@1": 0.0, "P@3": 1 / 3, "P@5": 1 / 5, "R@100": 1.0,
                                "RR@10": 1 / 2, "AP": 1 / 2})
    # q2's only judged doc has grade 1: below the threshold, so every binary measure is 0.
    assert result.per_query["P@1"]["q2"] == 0.0 and result.per_query["AP"]["q2"] == 0.0


def test_relevance_is_judged_by_doc_id_not_list_position() -> None:
    # The run lists "3" last in the dict but with the best score; doc "0" (list position 0) is not relevant.
    qrels = {"q": {"3": 1, "0": 0}}
    run = {"q": {"0": 0.5, "1": 0.4, "2": 0.3, "3": 0.9}}
    result = evaluate(run, qrels, measures=["P@1", "RR@10", "nDCG@10"])
    assert result.aggregate == {"P@1": 1.0, "RR@10": 1.0, "nDCG@10": 1.0}
    # And a relevant doc whose id equals a list position but that is ranked last scores low.
    result = evaluate({"q": {"0": 0.1, "1": 0.9, "2": 0.8}}, {"q": {"0": 1}}, measures=["P@1", "RR@10"])
    assert result.aggregate == {"P@1": 0.0, "RR@10": pytest.approx(1 / 3)}


def test_rr_cutoff_is_applied() -> None:
    # pytrec_eval has no cutoff for recip_rank; RR@10 must still be 0 for a first hit at rank 11.
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(1, 12)}}
    result = evaluate(run, {"q": {"d11": 1}}, measures=["RR@10", "RR"])
    assert result.aggregate["RR@10"] == 0.0
    assert result.aggregate["RR"] == pytest.approx(1 / 11)


def test_ties_follow_trec_eval_order() -> None:
    assert trec_order({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]
    # With tied scores trec_eval ranks the larger doc id first.
    assert evaluate({"q": {"a": 1.0, "b": 1.0}}, {"q": {"a": 1}}, measures=["P@1"]).aggregate["P@1"] == 0.0
    assert evaluate({"q": {"a": 1.0, "b": 1.0}}, {"q": {"b": 1}}, measures=["P@1"]).aggregate["P@1"] == 1.0
    # trec_eval holds scores as float32: a float64-only difference is a tie, a float32 one is not.
    assert trec_order({"a": 0.5, "z": 0.5 - 1e-9}) == ["z", "a"]
    assert evaluate({"q": {"a": 0.5, "z": 0.5 - 1e-9}}, {"q": {"a": 1}}, measures=["P@1"]).aggregate["P@1"] == 0.0
    assert trec_order({"a": 0.5, "z": 0.5 - 1e-6}) == ["a", "z"]
    assert evaluate({"q": {"a": 0.5, "z": 0.5 - 1e-6}}, {"q": {"a": 1}}, measures=["P@1"]).aggregate["P@1"] == 1.0


def test_duplicate_measure_names_and_bad_inputs() -> None:
    result = evaluate(RUN, QRELS, measures=["RR@10", "RR(rel=1)@10"])
    assert result.aggregate["RR@10"] == result.aggregate["RR(rel=1)@10"] == pytest.approx(0.75)
    with pytest.raises(InvalidInputError):
        evaluate(RUN, QRELS, measures=["NotAMeasure@3"])
    with pytest.raises(InvalidInputError):
        evaluate(RUN, QRELS, rel_threshold=0)
    assert evaluate(RUN, QRELS, measures="RR@10").measures == ["RR@10"]  # one name, not its letters


@pytest.mark.parametrize(("run", "qrels", "says"), [
    ({1: {"a": 1.0}}, {"1": {"a": 1}}, "run: query id 1 must be a string"),
    ({"q": {2: 1.0}}, {"q": {"a": 1}}, "doc id 2 must be a string"),
    ({"q": {"a": float("nan"), "b": 0.5}}, {"q": {"a": 1}}, "score nan is not a number"),
    ({"q": {"a": None}}, {"q": {"a": 1}}, "score None is not a number"),
    ({"q": {"a": 1.0}}, {"q": {"a": 1.5}}, "grade 1.5 is not an integer"),
    ({"q": {"a": 1.0}}, {"q": [("a", 1)]}, "qrels entry for query 'q' must map doc ids to grades"),
])
def test_malformed_runs_and_qrels_are_typed_errors(run, qrels, says) -> None:
    with pytest.raises(InvalidInputError, match=says):
        evaluate(run, qrels)


def test_numpy_scores_and_grades_are_numbers() -> None:
    result = evaluate({"q": {"a": np.float32(0.5), "b": np.float64(0.9)}}, {"q": {"a": np.int64(1)}}, ["P@1", "RR"])
    assert result.aggregate == {"P@1": 0.0, "RR": 0.5}


# --------------------------------------------------------------------------- significance


def test_paired_test_matches_hand_t_statistic() -> None:
    a = {"x": 1.0, "y": 2.0, "z": 0.5, "only_a": 9.0}
    b = {"x": 1.5, "y": 2.0, "z": 0.2, "only_b": 9.0}
    test = paired_test(a, b, metric="m")
    # diffs 0.5, 0, -0.3: mean 1/15, sd sqrt(0.49/3), t = mean / (sd / sqrt 3)
    diffs = [0.5, 0.0, -0.3]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert test.n == 3
    assert test.t_statistic == pytest.approx(mean / (sd / math.sqrt(3)))
    assert test.mean_delta == pytest.approx(mean)
    assert (test.wins, test.losses, test.ties) == (1, 1, 1)
    assert 0.7 < test.p_value < 0.9


def test_paired_test_edge_cases() -> None:
    same = paired_test({"a": 0.3, "b": 0.7}, {"a": 0.3, "b": 0.7})
    assert same.p_value == 1.0 and not math.isnan(same.t_statistic) and same.ties == 2
    one = paired_test({"a": 0.3}, {"a": 0.9})
    assert one.p_value is None and one.n == 1 and one.mean_delta == pytest.approx(0.6) and one.wins == 1
    none = paired_test({}, {})
    assert none.p_value is None and none.n == 0 and none.mean_delta == 0.0
    shift = paired_test({"a": 0.1, "b": 0.2, "c": 0.3}, {"a": 0.2, "b": 0.3, "c": 0.4})
    assert shift.p_value == 0.0 and shift.wins == 3 and shift.significant()
    json.dumps([t.to_dict() for t in (same, one, none, shift)], allow_nan=False)


def test_compare_covers_shared_metrics() -> None:
    tests = compare({"P@1": {"a": 0.0, "b": 1.0}, "AP": {"a": 0.5}}, {"P@1": {"a": 1.0, "b": 1.0}})
    assert list(tests) == ["P@1"] and tests["P@1"].wins == 1 and tests["P@1"].ties == 1


# --------------------------------------------------------------------------- rerank_run


class FakeReranker(Reranker):
    """Scores documents from a table keyed by document text; records what it was given."""

    score_kind = "similarity"
    name = "fake"

    def __init__(self, table: dict[str, float], default: float = 0.0) -> None:
        self.table, self.default = table, default
        self.calls: list[tuple[str, list[Document]]] = []

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        self.calls.append((query, list(documents)))
        return np.array([self.table.get(d.text, self.default) for d in documents], dtype=np.float32)


def _corpus(ids: Sequence[str]) -> dict[str, Document]:
    return {i: Document(text=f"text {i}", title=f"title {i}", id=i) for i in ids}


def test_rerank_orders_by_score_and_breaks_ties_by_first_stage_rank() -> None:
    # First stage: a > b > c > d > e. The reranker ties b and d (0.5) and puts c on top.
    run = {"q": {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}}
    reranker = FakeReranker({"text c": 0.9, "text b": 0.5, "text d": 0.5, "text a": 0.1, "text e": 0.2})
    out = rerank_run(run, {"q": "query"}, _corpus("abcde"), reranker, depth=5, progress=False)
    assert list(out["q"]) == ["c", "b", "d", "e", "a"]
    assert trec_order(out["q"]) == ["c", "b", "d", "e", "a"]  # the evaluator sees the same order
    scores = list(out["q"].values())
    assert all(x > y for x, y in zip(scores, scores[1:]))
    assert out["q"]["c"] == pytest.approx(0.9) and out["q"]["b"] == pytest.approx(0.5)
    # The reranker got Documents with title and text, in first-stage order.
    query, docs = reranker.calls[0]
    assert query == "query" and [d.id for d in docs] == list("abcde") and docs[0].title == "title a"


def test_tie_break_survives_evaluation_when_doc_ids_disagree() -> None:
    # First stage ranks "a" above "z"; the reranker ties them. trec_eval alone would put "z" first.
    run = {"q": {"a": 2.0, "z": 1.0}}
    out = rerank_run(run, {"q": "query"}, _corpus("az"), FakeReranker({}, default=0.5), depth=2, progress=False)
    assert list(out["q"]) == ["a", "z"] and out["q"]["a"] > out["q"]["z"]
    assert evaluate(out, {"q": {"a": 1}}, measures=["P@1"]).aggregate["P@1"] == 1.0


def test_first_stage_rank_uses_trec_eval_tie_order() -> None:
    # First-stage tie between "a" and "b": trec_eval ranks "b" first, so "b" wins the reranker tie.
    run = {"q": {"a": 1.0, "b": 1.0}}
    out = rerank_run(run, {"q": "query"}, _corpus("ab"), FakeReranker({}, default=0.3), depth=2, progress=False)
    assert list(out["q"]) == ["b", "a"]


def test_candidates_below_depth_keep_order_below_reranked_ones() -> None:
    run = {"q": {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}}
    reranker = FakeReranker({"text b": 0.9, "text a": -3.2})
    out = rerank_run(run, {"q": "query"}, _corpus("abcde"), reranker, depth=2, progress=False)
    assert list(out["q"]) == ["b", "a", "c", "d", "e"]
    assert trec_order(out["q"]) == ["b", "a", "c", "d", "e"]
    assert max(out["q"][d] for d in "cde") < min(out["q"][d] for d in "ab")
    assert [d.id for d in reranker.calls[0][1]] == ["a", "b"]  # only the top depth was scored
    dropped = rerank_run(run, {"q": "query"}, _corpus("abcde"), reranker, depth=2, progress=False, keep_tail=False)
    assert list(dropped["q"]) == ["b", "a"]


def test_infinite_scores_keep_the_reranked_order_above_the_tail() -> None:
    run = {"q": {d: float(6 - i) for i, d in enumerate("abcdef")}}
    reranker = FakeReranker({"text a": 1.0, "text b": float("-inf"), "text c": 0.5})
    out = rerank_run(run, {"q": "query"}, _corpus("abcdef"), reranker, depth=3, progress=False)
    assert trec_order(out["q"]) == ["a", "c", "b", "d", "e", "f"] and all(map(math.isfinite, out["q"].values()))
    with pytest.raises(RerankitError, match="fake gave NaN scores for 1 of 3 candidates"):
        rerank_run(run, {"q": "query"}, _corpus("abcdef"), FakeReranker({"text c": float("nan")}), depth=3,
                   progress=False)


def test_rerank_timing_and_errors() -> None:
    run = {"q1": {"a": 1.0, "b": 0.5}, "q2": {"b": 1.0}}
    out = rerank_run(run, {"q1": "x", "q2": "y"}, _corpus("ab"), FakeReranker({}), depth=10, progress=False)
    assert set(out.timing.per_query_ms) == {"q1", "q2"}
    assert out.timing.num_docs == 3
    assert out.timing.total_ms == pytest.approx(sum(out.timing.per_query_ms.values()))
    assert out.timing.summary()["num_queries"] == 2
    with pytest.raises(DataFormatError, match="no text in the corpus"):
        rerank_run(run, {"q1": "x", "q2": "y"}, _corpus("a"), FakeReranker({}), progress=False)
    with pytest.raises(DataFormatError, match="query id 'q2'"):
        rerank_run(run, {"q1": "x"}, _corpus("ab"), FakeReranker({}), progress=False)
    with pytest.raises(InvalidInputError):
        rerank_run(run, {"q1": "x", "q2": "y"}, _corpus("ab"), FakeReranker({}), depth=0, progress=False)


# --------------------------------------------------------------------------- BM25 first stage


def test_bm25_run_uses_title_and_drops_zero_scores() -> None:
    corpus = [
        Document(text="cooking pasta at home", title="", id="p1"),
        Document(text="a short note", title="Volcano eruptions", id="v1"),
        Document(text="volcano ash and lava", title="", id="v2"),
        Document(text="gardening tips", title="", id="g1"),
    ]
    run = bm25_run(corpus, {"q": "volcano eruptions"}, depth=10)
    assert list(run) == ["q"]
    assert trec_order(run["q"])[0] == "v1"  # "eruptions" only occurs in v1's title
    assert set(run["q"]) == {"v1", "v2"}
    assert len(bm25_run(corpus, {"q": "volcano"}, depth=1)["q"]) == 1
    with pytest.raises(InvalidInputError, match="document id 'v1' is given to more than one document"):
        bm25_run([*corpus, Document(text="volcano facts", id="v1")], {"q": "volcano"})


# --------------------------------------------------------------------------- tiny BEIR folder


def make_beir(root: Path) -> Path:
    """Three queries over six passages; q3 is judged but BM25 finds nothing for it."""
    root.mkdir(parents=True, exist_ok=True)
    docs = [
        ("d1", "Volcano", "A volcano erupts lava and ash."),
        ("d2", "", "Lava flows from an erupting volcano cool into basalt."),
        ("d3", "Pasta", "Boil pasta in salted water for ten minutes."),
        ("d4", "", "Fresh pasta cooks faster than dried pasta."),
        ("d5", "Tides", "The moon's gravity causes ocean tides."),
        ("d6", "", "Gardening in spring: plant tomatoes after frost."),
    ]
    with (root / "corpus.jsonl").open("w") as f:
        for i, title, text in docs:
            f.write(json.dumps({"_id": i, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for i, text in [("q1", "what comes out of a volcano"), ("q2", "boil pasta in water"),
                        ("q3", "quantum chromodynamics")]:
            f.write(json.dumps({"_id": i, "text": text}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq2\td3\t2\nq2\td4\t1\nq3\td5\t1\n"
    )
    return root


def test_evaluate_folder_with_fake_reranker_report_json_and_png(tmp_path: Path) -> None:
    data = make_beir(tmp_path / "tiny")
    # The fake reranker prefers the grade-1 passages, so nDCG@10 must drop.
    reranker = FakeReranker({"Lava flows from an erupting volcano cool into basalt.": 1.0,
                             "Fresh pasta cooks faster than dried pasta.": 1.0})
    report = evaluate_folder(data, rerank=reranker, depth=10, progress=False)
    assert report.qrels_path.endswith("test.tsv") and report.run_source.startswith("bm25")
    assert report.num_judged == 3 and report.missing_queries == ["q3"] and report.num_queries == 2
    assert report.reranker == "fake" and report.after is not None
    assert report.before["nDCG@10"] == pytest.approx(1.0)
    assert report.after["nDCG@10"] < report.before["nDCG@10"]
    assert report.significance["nDCG@10"].losses == 2
    assert report.significance["R@10"].p_value == 1.0
    assert set(report.per_query_ndcg10_after) == {"q1", "q2"}
    assert set(report.timing["per_query_ms"]) == {"q1", "q2"}

    out = tmp_path / "out" / "report.json"
    report.write_json(out)
    data_back = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data_back["after"]["nDCG@10"] == pytest.approx(report.after["nDCG@10"])
    assert data_back["significance"]["nDCG@10"]["losses"] == 2
    assert Report.from_dict(data_back).to_dict() == report.to_dict()
    assert not list(out.parent.glob(".*.tmp"))

    png = tmp_path / "out" / "plot.png"
    write_plot(report, png)
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000


def test_report_table_marks_significance(tmp_path: Path) -> None:
    from rich.console import Console

    from rerankit.evaluation import PairedTest

    def pt(metric: str, p: float) -> PairedTest:
        return PairedTest(metric, 10, 0.4, 0.5, 0.1, 2.0, p, 6, 2, 2)

    report = Report(dataset="toy", qrels_path="q.tsv", run_source="run.trec", reranker="fake", depth=100,
                    rel_threshold=1, num_queries=10, num_judged=10, missing_queries=[], measures=["nDCG@10", "AP"],
                    before={"nDCG@10": 0.4, "AP": 0.3}, after={"nDCG@10": 0.5, "AP": 0.31},
                    significance={"nDCG@10": pt("nDCG@10", 0.01), "AP": pt("AP", 0.5)})
    console = Console(file=io.StringIO(), width=120)
    report.print(console)
    text = console.file.getvalue()
    ndcg_line = next(line for line in text.splitlines() if "nDCG@10" in line)
    ap_line = next(line for line in text.splitlines() if "│ AP" in line)
    assert "0.0100 *" in ndcg_line and "+0.1000" in ndcg_line
    assert "0.5000" in ap_line and "*" not in ap_line
    # A first-stage-only report still renders (one value column) and plots.
    solo = Report(dataset="toy", qrels_path="q.tsv", run_source="run.trec", reranker=None, depth=100,
                  rel_threshold=1, num_queries=2, num_judged=2, missing_queries=[], measures=["nDCG@10"],
                  before={"nDCG@10": 0.4}, per_query_ndcg10_before={"a": 0.3, "b": 0.5})
    assert render_png(solo).startswith(PNG_MAGIC)


def test_evaluate_folder_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="data folder not found"):
        evaluate_folder(tmp_path / "nope")
    data = make_beir(tmp_path / "tiny")
    with pytest.raises(DataFormatError, match="run file not found"):
        evaluate_folder(data, run="missing.trec")
    (data / "bad.trec").write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2\n")
    with pytest.raises(DataFormatError, match=r"bad\.trec:2"):
        evaluate_folder(data, run="bad.trec")
    with pytest.raises(InvalidInputError):
        evaluate_folder(data, max_queries=0)


def test_max_queries_takes_first_judged_queries_in_file_order(tmp_path: Path) -> None:
    data = make_beir(tmp_path / "tiny")
    report = evaluate_folder(data, max_queries=1, progress=False)
    assert report.num_queries == 1 and list(report.per_query_ndcg10_before) == ["q1"]


# --------------------------------------------------------------------------- published figure


def test_published_bm25_ndcg10_on_trec_dl19() -> None:
    folder = shared_data() / "trec-dl19-passage"
    if not (folder / "runs" / "bm25.top100.trec").is_file():
        pytest.skip(f"../shared/data not present: {folder} has no runs/bm25.top100.trec (set RERANKIT_DATA)")
    report = evaluate_folder(folder, run="runs/bm25.top100.trec", progress=False)
    assert Path(report.qrels_path).name == "test-full.tsv"
    assert report.num_queries == 43 and report.missing_queries == []
    assert report.before["nDCG@10"] == pytest.approx(0.5058, abs=1e-4)
    # The same through the plain readers, and the pooled-only qrels give a different (wrong) figure.
    run = read_trec_run(folder / "runs" / "bm25.top100.trec")
    full = evaluate(run, read_qrels(folder / "qrels" / "test-full.tsv"), measures=["nDCG@10"])
    pooled = evaluate(run, read_qrels(folder / "qrels" / "test.tsv"), measures=["nDCG@10"])
    assert full.aggregate["nDCG@10"] == pytest.approx(0.5058, abs=1e-4)
    assert abs(pooled.aggregate["nDCG@10"] - 0.5058) > 1e-3
