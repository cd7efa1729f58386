"""The Typer application object that the command modules register on, and their shared text helper."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rerankit",
    help="Two-stage retrieval with reranking: index, search, evaluate, train, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

index_app = typer.Typer(help="Build and inspect on-disk first-stage indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


def snippet(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs made single spaces), cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
