"""``rerankit eval``: evaluate a first stage and, optionally, its reranking on a judged BEIR folder."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Optional

import typer

from .app import app


@app.command("eval")
def eval_command(
    data: str = typer.Argument(..., help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    run: Optional[str] = typer.Option(
        None, "--run", help="TREC run file (path, or relative to DATA, e.g. runs/bm25.top100.trec); default: BM25 on the fly."
    ),
    qrels: Optional[str] = typer.Option(
        None, "--qrels", help="Qrels file; default DATA/qrels/test-full.tsv if present, else DATA/qrels/test.tsv."
    ),
    rerank: Optional[str] = typer.Option(None, "--rerank", help="Reranker spec (e.g. default, bi-encoder)."),
    depth: int = typer.Option(100, "--depth", help="Candidates per query to retrieve / rerank; also R@DEPTH."),
    depths: Optional[str] = typer.Option(
        None, "--depths", help="Sweep candidate depths, e.g. 10,20,50,100 (needs --rerank): nDCG@10 and ms/query "
        "per depth, and the depth where quality stops rising."
    ),
    rel_threshold: int = typer.Option(1, "--rel-threshold", help="Minimum grade counted relevant by binary measures."),
    max_queries: Optional[int] = typer.Option(None, "--max-queries", help="Evaluate only the first N judged queries."),
    out: Optional[str] = typer.Option(None, "--out", help="Write the JSON report here (atomically)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a PNG summary plot here."),
    html: Optional[str] = typer.Option(
        None, "--html", help="Write a self-contained HTML report here: metrics, plots, depth sweep, and the queries "
                             "reranking changed most with both rankings and their grades."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report on stdout instead of a table."),
) -> None:
    """Evaluate nDCG@10, P@1/3/5, R@DEPTH, MRR@10 and MAP, before and after reranking."""
    from rich.console import Console

    from ..errors import InvalidInputError
    from ..evaluation import evaluate_folder, write_plot

    info = Console(stderr=True, highlight=False)
    if depths is not None:
        from ..evaluation.depths import evaluate_depths, write_depth_plot

        if rerank is None:
            raise InvalidInputError("--depths needs --rerank (the sweep measures reranking at each depth)")
        if html is not None:
            raise InvalidInputError("--html goes without --depths (the HTML report has its own depth sweep)")
        sweep = evaluate_depths(data, depths, rerank, run=run, qrels=qrels, rel_threshold=rel_threshold,
                                max_queries=max_queries, progress=False,
                                log=lambda msg: info.print(msg, markup=False, soft_wrap=True))
        _emit(sweep, write_depth_plot, out=out, plot=plot, as_json=as_json, info=info)
        return
    report = evaluate_folder(
        data,
        run=run,
        qrels=qrels,
        rerank=rerank,
        depth=depth,
        rel_threshold=rel_threshold,
        max_queries=max_queries,
        progress=sys.stderr.isatty(),
        log=lambda msg: info.print(msg, markup=False, soft_wrap=True),
    )
    if html:
        from ..evaluation.html_report import write_html

        write_html(report, html)
        info.print(f"html report: {html}", markup=False, soft_wrap=True)
    _emit(report, write_plot, out=out, plot=plot, as_json=as_json, info=info)


def _emit(result: Any, plotter: Callable[[Any, str], None], *, out: str | None, plot: str | None, as_json: bool,
          info: Any) -> None:
    """Write ``result`` (a report or a depth sweep) to ``out`` and its plot to ``plot``, then print it
    as JSON or as a table; where the files went is said on stderr (``info``)."""
    from rich.console import Console

    if out:
        result.write_json(out)
        info.print(f"report: {out}", markup=False, soft_wrap=True)
    if plot:
        plotter(result, plot)
        info.print(f"plot: {plot}", markup=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        result.print(Console(highlight=False))
