"""``rerankit search``: first-stage retrieval from an index, optionally reranked; a table or JSON."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import InvalidInputError
from ..types import normalize_query
from ..validation import positive_int
from .app import app, snippet

SNIPPET_CHARS = 120


@app.command("search")
def search(
    index_dir: str = typer.Argument(..., help="Index folder made by 'rerankit index build'."),
    query: str = typer.Argument(..., help="The query."),
    k: int = typer.Option(5, "-k", "--top-k", help="Results to show."),
    candidates: int = typer.Option(20, "-n", "--candidates", help="First-stage candidates to rerank (with --rerank)."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="First stage: bm25, dense or hybrid (default: hybrid if the index has embeddings, else bm25)."
    ),
    rerank: Optional[str] = typer.Option(
        None, "--rerank", help="Reranker spec for load_reranker, e.g. 'default' or 'bi-encoder'."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON list of {rank, first_stage_rank, score, id, title, text} (ranks 1-based)."
    ),
) -> None:
    """Retrieve candidates for QUERY from INDEX_DIR, optionally rerank them, and print the best -k."""
    from ..retrieval import load_index, retrieve_and_rerank
    from ..retrieval.base import MODES

    positive_int(k, "-k"), positive_int(candidates, "-n")
    if mode is not None and mode not in MODES:
        raise InvalidInputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    query = normalize_query(query)
    index = load_index(index_dir)
    retriever = index.retriever(mode)
    reranker = None
    if rerank is not None:
        from ..rerankers import load_reranker

        reranker = load_reranker(rerank)
    hits = retrieve_and_rerank(retriever, query, k, candidates, reranker)

    if as_json:
        rows = [
            {
                "rank": h.rank + 1,
                "first_stage_rank": h.index + 1,
                "score": h.score,
                "id": h.id,
                "title": h.document.title,
                "text": h.document.text,
            }
            for h in hits
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    console = Console()
    if not hits:
        console.print("no results")
        return
    stages = f"{mode or index.default_mode}" + (f" -> {rerank}" if rerank else "")
    table = Table(title=f"{len(hits)} results ({stages})")
    table.add_column("rank", justify="right")
    table.add_column("1st stage", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", overflow="fold")
    table.add_column("text")
    for h in hits:
        text = f"{h.document.title}: {h.document.text}" if h.document.title else h.document.text
        table.add_row(
            str(h.rank + 1), str(h.index + 1), f"{h.score:.4f}", Text(str(h.id)),
            Text(snippet(text, SNIPPET_CHARS)),
        )
    console.print(table)
