"""``rerankit bench``: reranking latency and docs/s per engine backend, beside sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..validation import positive_int
from .app import app


@app.command("bench")
def bench_command(
    model: str = typer.Argument(
        "default", help="A local Hugging Face reranker folder, or 'default' (the shipped model)."),
    backends: str = typer.Option("all", "--backends", help="Comma-separated backends, 'all' or 'auto'."),
    sizes: str = typer.Option("20,50,100", "--sizes", help="Candidate counts per query."),
    repeats: int = typer.Option(5, "--repeats", help="Timed calls per size (median reported), after one warm-up."),
    corpus: Optional[str] = typer.Option(
        None, "--corpus", help="BEIR corpus.jsonl (or folder) to draw passages from; default: the demo corpus."),
    query: Optional[str] = typer.Option(None, "--query", help="The query (default: the demo query)."),
    reference: bool = typer.Option(
        True, "--reference/--no-reference", help="Also time sentence-transformers CrossEncoder.predict."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", help="Tokens per pair (default: the model's rerankit.json max_length, else 512)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Latency for 20/50/100 candidates and docs/s for each backend, with CrossEncoder.predict as reference."""
    from rich.console import Console
    from rich.table import Table

    from ..engine import available_backends
    from ..engine.bench import bench_engine, bench_sentence_transformers, corpus_passages, demo_passages
    from ..engine.hardware import describe
    from ..engine.modules import detect_kind
    from ..errors import InvalidInputError
    from ..rerankers.cross_encoder import trained_max_length
    from ..rerankers.registry import default_model_path

    folder = str(default_model_path()) if model == "default" else model
    try:
        counts = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError as exc:
        raise InvalidInputError(f"--sizes must be comma-separated integers, got {sizes!r}") from exc
    if not counts:
        raise InvalidInputError(f"--sizes needs at least one number, got {sizes!r}")
    for count in counts:
        positive_int(count, "each of --sizes")
    positive_int(repeats, "--repeats")
    names = available_backends() if backends == "all" else [b.strip() for b in backends.split(",") if b.strip()]
    demo_query, passages = demo_passages()
    if corpus:
        passages = corpus_passages(corpus)
    query = query or demo_query
    max_length = max_length or trained_max_length(Path(folder)) or 512
    err = Console(stderr=True, highlight=False)
    rows = []
    if reference and detect_kind(folder) == "encoder":
        err.print(f"timing sentence-transformers CrossEncoder.predict on {folder}", markup=False)
        rows.append(bench_sentence_transformers(folder, query, passages, counts, repeats, max_length=max_length))
    for name in names:
        err.print(f"timing {name}", markup=False)
        rows.append(bench_engine(folder, name, query, passages, counts, repeats, max_length=max_length, long_docs="first"))
    base = rows[0] if reference and rows and rows[0].backend == "sentence-transformers" and not rows[0].error else None
    largest = max(counts)
    if as_json:
        typer.echo(json.dumps({"model": folder, "cpu": describe(), "rows": [
            {"backend": r.backend, "load_s": r.load_s, "latency_ms": r.latency_ms, "docs_per_s": r.docs_per_s,
             "error": r.error} for r in rows]}, indent=2))
        return
    title = f"rerankit bench: {folder}  (median of {repeats}, one query, max_length {max_length}; cpu {describe()})"
    table = Table(title=title)
    table.add_column("backend")
    table.add_column("load s", justify="right")
    for n in counts:
        table.add_column(f"{n} docs ms", justify="right")
    table.add_column(f"docs/s @{largest}", justify="right")
    table.add_column(f"speed-up @{largest}", justify="right")
    for r in rows:
        if r.error:
            table.add_row(r.backend, "-", *["-"] * len(counts), "-", r.error[:60])
            continue
        speed = f"{base.latency_ms[largest] / r.latency_ms[largest]:.2f}x" if base else "-"
        table.add_row(r.backend, f"{r.load_s:.2f}", *[f"{r.latency_ms[n]:.1f}" for n in counts], f"{r.docs_per_s:.0f}", speed)
    Console(highlight=False).print(table)
