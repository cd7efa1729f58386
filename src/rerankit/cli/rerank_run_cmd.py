"""``rerankit rerank-run``: rerank every query of a TREC run file, in process or on Ray, resumable."""

from __future__ import annotations

from typing import Optional

import typer

from .app import app


@app.command("rerank-run")
def rerank_run_command(
    run: str = typer.Argument(..., help="TREC run file (path, or relative to --collection, e.g. runs/bm25.top100.trec)."),
    collection: str = typer.Option(..., "--collection", help="BEIR folder with corpus.jsonl and queries.jsonl."),
    rerank: str = typer.Option(..., "--rerank", help="Reranker spec (e.g. default)."),
    out: str = typer.Option(..., "--out", help="Reranked TREC run to write (atomically)."),
    depth: int = typer.Option(100, "--depth", help="Candidates per query to rerank; the rest keep their order below."),
    ray: Optional[str] = typer.Option(
        None, "--ray", help="Run on Ray: 'local' starts a local cluster, else a cluster address (e.g. ray://host:10001)."
    ),
    workers: int = typer.Option(1, "--workers", help="Ray actors, each with its own reranker (with --ray)."),
    batch_queries: int = typer.Option(8, "--batch-queries", help="Queries per shard (a shard is the unit of resume)."),
) -> None:
    """Rerank RUN's candidates with --rerank and write the reranked run; a rerun after a kill does only the missing shards."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..batch_rerank import rerank_run_file
    from ..errors import InvalidInputError

    if workers > 1 and ray is None:
        raise InvalidInputError("--workers applies to --ray; without it the run is reranked in this process")
    info = Console(stderr=True, highlight=False)
    with Progress(TextColumn("reranking shards"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=info, transient=True, disable=not info.is_terminal) as bar:
        task = bar.add_task("shards", total=None)

        def on_shard(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = rerank_run_file(run, collection, rerank, out, depth=depth, batch_queries=batch_queries,
                                 ray_address=ray, workers=workers, on_shard=on_shard)
    where = f"Ray, {result.workers} worker(s)" if result.ray else "this process"
    info.print(f"{result.queries} queries in {result.shards} shards: {result.shards_done_before} done earlier, "
               f"{result.shards_run} reranked now ({where}); wrote {result.out}", markup=False, soft_wrap=True)
