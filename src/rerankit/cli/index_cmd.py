"""``rerankit index build`` and ``rerankit index info``: thin wrappers over ``rerankit.retrieval``."""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..encoders import DEFAULT_BI_ENCODER
from ..validation import positive_int
from .app import index_app


@index_app.command("build")
def build(
    source: str = typer.Argument(
        ..., help="A BEIR corpus.jsonl, a .txt file with one passage per line, a .md file, or a folder of .txt/.md files."
    ),
    out: str = typer.Option(..., "--out", "-o", help="Index folder (created, or rebuilt atomically)."),
    no_dense: bool = typer.Option(False, "--no-dense", help="BM25 only: skip the embeddings."),
    chunk_words: int = typer.Option(200, "--chunk-words", help="Words per passage when splitting files of a folder."),
    overlap_words: int = typer.Option(50, "--overlap-words", help="Words shared by consecutive passages."),
    embed_model: str = typer.Option(DEFAULT_BI_ENCODER, "--embed-model", help="sentence-transformers model for dense retrieval."),
) -> None:
    """Read passages from SOURCE and build a BM25 (+ dense) index in --out."""
    from ..retrieval import build_index, load_passages, read_manifest

    positive_int(chunk_words, "--chunk-words")
    positive_int(overlap_words, "--overlap-words", minimum=0)
    console, err = Console(), Console(stderr=True)
    start = time.perf_counter()
    passages = load_passages(source, chunk_words=chunk_words, overlap_words=overlap_words)
    console.print(f"read {len(passages)} passages from {source} in {time.perf_counter() - start:.1f}s")
    build_start = time.perf_counter()
    with Progress(
        TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=no_dense,
    ) as bar:
        task = bar.add_task("embedding", total=len(passages))
        path = build_index(
            passages, out, dense=not no_dense, embed_model=embed_model, source=str(source),
            progress=lambda done, total: bar.update(task, completed=done),
        )
    manifest = read_manifest(path)
    dense = f"dense: {manifest['embedding']['model']} ({manifest['embedding']['dim']} dims)" if manifest["dense"] else "dense: no"
    console.print(
        f"index written to {path} (version {manifest['version']}): {manifest['num_passages']} passages, "
        f"BM25, {dense} in {time.perf_counter() - build_start:.1f}s"
    )


@index_app.command("info")
def info(
    index_dir: str = typer.Argument(..., help="Index folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Describe the index in INDEX_DIR (its manifest)."""
    from ..retrieval import read_manifest

    manifest = read_manifest(index_dir)
    if as_json:
        print(json.dumps(manifest, indent=2))
        return
    table = Table(title=f"index {index_dir}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    embedding = manifest.get("embedding")
    rows = [
        ("version", manifest["version"]),
        ("created", manifest.get("created")),
        ("format version", manifest["format_version"]),
        ("source", manifest.get("source") or "-"),
        ("passages", manifest["num_passages"]),
        ("bm25", ", ".join(f"{k}={v}" for k, v in manifest.get("bm25", {}).items())),
        ("dense", f"{embedding['provider']}:{embedding['model']} ({embedding['dim']} dims, {embedding['dtype']})" if embedding else "no"),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    Console().print(table)

