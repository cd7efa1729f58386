"""Evaluation: metrics (ir_measures / pytrec_eval), reranking a run, significance, reports and plots.

``evaluate_folder`` is the end-to-end pipeline behind ``rerankit eval``: load a BEIR folder, get
first-stage candidates (a TREC run file or BM25 on the fly), evaluate them, optionally rerank the
top ``depth`` with a reranker, evaluate again and compare per query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..datasets import Qrels, Run, read_corpus_jsonl, read_qrels, read_queries_jsonl
from ..errors import DataFormatError, InvalidInputError
from ..rerankers.base import Reranker
from ..validation import positive_int
from .first_stage import bm25_run, bm25_run_for_folder, load_run, resolve_data_dir, resolve_qrels_path, resolve_run_path
from .metrics import EvalResult, default_measures, evaluate, to_ir_measure, trec_order
from .plots import render_png, write_plot
from .report import Report
from .rerank_run import RerankedRun, RerankTiming, rerank_query, rerank_run
from .significance import PairedTest, compare, paired_test

__all__ = [
    "EvalResult",
    "PairedTest",
    "RerankTiming",
    "RerankedRun",
    "Report",
    "bm25_run",
    "bm25_run_for_folder",
    "compare",
    "default_measures",
    "evaluate",
    "evaluate_folder",
    "load_run",
    "paired_test",
    "render_png",
    "rerank_query",
    "rerank_run",
    "resolve_qrels_path",
    "resolve_run_path",
    "select_queries",
    "to_ir_measure",
    "trec_order",
    "write_plot",
]

NDCG10 = "nDCG@10"


def select_queries(qrels: Qrels, queries: dict[str, str] | None, max_queries: int | None) -> list[str]:
    """Judged query ids in ``queries.jsonl`` order (then the rest, sorted), cut to ``max_queries``."""
    judged = {q for q, docs in qrels.items() if docs}
    order = [q for q in (queries or {}) if q in judged]
    order += sorted(judged - set(order))
    if max_queries is not None:
        order = order[:positive_int(max_queries, "max_queries")]
    return order


def report_name(spec: str | Reranker | None, reranker: Reranker) -> str:
    """The spec string if one was given, else the reranker's name."""
    return spec if isinstance(spec, str) else getattr(reranker, "name", type(reranker).__name__)


def evaluate_folder(
    data_dir: str | Path,
    run: str | Path | None = None,
    qrels: str | Path | None = None,
    rerank: str | Reranker | None = None,
    depth: int = 100,
    rel_threshold: int = 1,
    max_queries: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Report:
    """Evaluate a BEIR folder's first stage and, with ``rerank`` (a spec or a ``Reranker``), its reranking.

    ``run`` is a TREC run file (as given or relative to ``data_dir``); without it, BM25 over
    ``corpus.jsonl`` (title + text) retrieves the top ``depth``. Qrels default to
    ``qrels/test-full.tsv`` when present, else ``qrels/test.tsv``. Only queries that are judged and
    in the run are averaged (trec_eval's default); ``Report.missing_queries`` lists the others.
    """
    say = log or (lambda _msg: None)
    positive_int(depth, "depth"), positive_int(rel_threshold, "rel_threshold")
    # Resolve and read every input (and load the reranker) before any work or output, so that a
    # bad input fails fast with a single error.
    folder = resolve_data_dir(data_dir)
    qrels_path = resolve_qrels_path(folder, qrels)
    run_path = resolve_run_path(folder, run) if run is not None else None
    queries_path, corpus_path = folder / "queries.jsonl", folder / "corpus.jsonl"
    needs_text = run_path is None or rerank is not None
    for path in (queries_path, corpus_path) if needs_text else ():
        if not path.is_file():
            raise DataFormatError(f"{path} not found")
    judgments = read_qrels(qrels_path)
    queries = read_queries_jsonl(queries_path) if queries_path.is_file() else None
    selected = select_queries(judgments, queries, max_queries)
    loaded_run = load_run(run_path, selected) if run_path is not None else None
    corpus = read_corpus_jsonl(corpus_path) if needs_text else None
    reranker: Reranker | None = None
    load_ms = 0.0
    if rerank is not None:
        from ..rerankers.registry import load_reranker

        start = time.perf_counter()
        reranker = load_reranker(rerank) if isinstance(rerank, str) else rerank
        load_ms = (time.perf_counter() - start) * 1000.0
        if not isinstance(reranker, Reranker):
            raise InvalidInputError(f"rerank must be a spec string or a Reranker, got {type(rerank).__name__}")

    say(f"qrels: {qrels_path}")
    first: Run
    if loaded_run is not None:
        first, run_source = loaded_run, str(run_path)
        say(f"first stage: {run_path}")
    else:
        assert queries is not None and corpus is not None
        with_text = {q: queries[q] for q in selected if q in queries}
        say(f"first stage: BM25 on the fly over {len(corpus)} documents, top {depth}")
        first = bm25_run(corpus, with_text, depth=depth)
        run_source = f"bm25 (bm25s k1=0.9 b=0.4, title + text, top {depth})"

    measures = default_measures(depth)
    before = evaluate(first, judgments, measures, rel_threshold=rel_threshold, query_ids=selected)
    notes: list[str] = [
        "queries averaged: judged and present in the run (trec_eval default)",
    ]
    if before.missing_queries:
        notes.append(f"{len(before.missing_queries)} judged queries are absent from the run and not averaged")
    if before.num_queries == 0:
        raise DataFormatError(f"no judged query of {qrels_path} appears in the run {run_source}")

    report = Report(
        dataset=folder.resolve().name,
        qrels_path=str(qrels_path),
        run_source=run_source,
        reranker=None,
        depth=depth,
        rel_threshold=rel_threshold,
        num_queries=before.num_queries,
        num_judged=before.num_judged,
        missing_queries=before.missing_queries,
        measures=measures,
        before=before.aggregate,
        per_query_ndcg10_before=dict(before.per_query[NDCG10]),
        notes=notes,
    )
    if reranker is None:
        return report

    assert queries is not None and corpus is not None
    evaluated = set(before.query_ids)
    candidates = {q: docs for q, docs in first.items() if q in evaluated}
    corpus_by_id = {doc.id: doc for doc in corpus if doc.id is not None}
    say(f"reranking the top {depth} of {len(candidates)} queries with {report_name(rerank, reranker)}")
    reranked = rerank_run(candidates, queries, corpus_by_id, reranker, depth=depth, progress=progress)
    after = evaluate(reranked, judgments, measures, rel_threshold=rel_threshold, query_ids=selected)

    report.reranker = report_name(rerank, reranker)
    report.after = after.aggregate
    report.per_query_ndcg10_after = dict(after.per_query[NDCG10])
    report.significance = compare(before.per_query, after.per_query)
    report.timing = {"load_ms": load_ms, **reranked.timing.to_dict()}
    report.notes.append(
        f"reranked the top {depth} candidates; candidates below depth keep their first-stage order after them"
    )
    report.depth_sweep = depth_sweep(candidates, reranked, judgments, depth, rel_threshold, selected)
    report.examples = example_queries(report, candidates, reranked, judgments, queries, corpus_by_id)
    return report


SWEEP_DEPTHS = (5, 10, 20, 30, 50, 100, 200, 500, 1000)


def depth_sweep(first: Run, reranked: Run, judgments: Qrels, depth: int, rel_threshold: int,
                query_ids: list[str]) -> list[dict]:
    """nDCG@10 with only the top ``d`` first-stage candidates reordered by their reranker scores, for
    each ``d`` up to ``depth``. A pointwise reranker scores each candidate alone, so this is what
    reranking at depth ``d`` gives (a listwise one may order a shorter list differently)."""
    points = []
    for d in [x for x in SWEEP_DEPTHS if x < depth] + [depth]:
        run: Run = {}
        for q, docs in first.items():
            order = trec_order(docs)
            head = sorted(order[:d], key=lambda doc: -reranked[q][doc])  # stable: ties keep first-stage order
            run[q] = {doc: float(len(order) - i) for i, doc in enumerate(head + order[d:])}
        value = evaluate(run, judgments, [NDCG10], rel_threshold=rel_threshold, query_ids=query_ids).aggregate[NDCG10]
        points.append({"depth": d, "ndcg10": value})
    return points


def example_queries(report: Report, first: Run, reranked: Run, judgments: Qrels, queries: dict[str, str],
                    corpus_by_id: dict, count: int = 3) -> list[dict]:
    """The ``count`` queries whose nDCG@10 rose most and the ``count`` where it fell most, with both top 10s."""
    after = report.per_query_ndcg10_after or {}
    change = sorted(after, key=lambda q: (after[q] - report.per_query_ndcg10_before.get(q, 0.0), q))
    chosen = list(dict.fromkeys(change[::-1][:count] + change[:count]))

    def listing(q: str, run: Run) -> list[dict]:
        return [{"id": d, "grade": judgments.get(q, {}).get(d), "text": corpus_by_id[d].full_text[:300]
                 if d in corpus_by_id else ""} for d in trec_order(run[q])[:10]]

    return [{"query_id": q, "query": queries.get(q, ""), "ndcg10_before": report.per_query_ndcg10_before.get(q, 0.0),
             "ndcg10_after": after[q], "before": listing(q, first), "after": listing(q, reranked)} for q in chosen]
