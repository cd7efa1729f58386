"""``rerankit demo``: the classic bi-encoder -> cross-encoder example, offline."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from .app import app


@app.command()
def demo(
    rerank: str = typer.Option("default", help="Reranker spec."),
    candidates: int = typer.Option(5, min=1, help="Bi-encoder candidates."),
    top_k: int = typer.Option(3, min=1, help="Kept after reranking."),
) -> None:
    """Retrieve with a bi-encoder, rerank with a cross-encoder, and show precision before/after."""
    from ..demo import run_demo
    from ..rerankers import load_reranker

    console = Console()
    result = run_demo(load_reranker(rerank), candidates, top_k)
    console.print(f"[bold]Query:[/bold] {result.query}")
    first = Table(title=f"Bi-encoder (all-MiniLM-L6-v2) top {candidates}")
    for col in ("rank", "cosine", "id", "passage"):
        first.add_column(col)
    for i, (doc, score) in enumerate(result.first_stage, 1):
        first.add_row(str(i), f"{score:.3f}", doc.id or "", doc.text)
    console.print(first)
    after = Table(title=f"Reranked by {rerank!r}: top {top_k}")
    for col in ("rank", "was", "score", "id", "passage"):
        after.add_column(col)
    for r in result.reranked:
        after.add_row(str(r.rank + 1), str(r.index + 1), f"{r.score:.3f}", r.document.id or "", r.document.text)
    console.print(after)
    prec = Table(title=f"Precision on {result.n_queries} labelled queries (judged by passage id)")
    for col in ("metric", "bi-encoder", "reranked"):
        prec.add_column(col)
    for k in sorted(result.precision_before):
        prec.add_row(f"P@{k}", f"{result.precision_before[k]:.3f}", f"{result.precision_after[k]:.3f}")
    console.print(prec)
