"""A PNG summary of a ``Report``: metric bars (before/after) and the sorted per-query nDCG@10 change."""

from __future__ import annotations

import io
from pathlib import Path

from ..io import atomic_write_bytes
from .report import Report


def render_png(report: Report, dpi: int = 100) -> bytes:
    """Render the two-panel figure to PNG bytes (matplotlib, Agg canvas; pyplot's global state untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    metrics = list(report.measures)
    xs = list(range(len(metrics)))
    if report.after is not None:
        width = 0.4
        left.bar([x - width / 2 for x in xs], [report.before[m] for m in metrics], width, label="before")
        left.bar([x + width / 2 for x in xs], [report.after[m] for m in metrics], width, label="after")
        left.legend(loc="upper right")
    else:
        left.bar(xs, [report.before[m] for m in metrics], 0.6, label="first stage")
    left.set_xticks(xs)
    left.set_xticklabels(metrics, rotation=30, ha="right")
    left.set_ylim(0, 1)
    left.set_title(f"{report.dataset} ({report.num_queries} queries)")

    before = report.per_query_ndcg10_before
    if report.per_query_ndcg10_after is not None:
        after = report.per_query_ndcg10_after
        deltas = sorted(after[q] - before.get(q, 0.0) for q in after)
        colors = ["tab:green" if d > 0 else "tab:red" if d < 0 else "tab:gray" for d in deltas]
        right.bar(range(len(deltas)), deltas, color=colors, width=1.0)
        right.axhline(0.0, color="black", linewidth=0.8)
        right.set_title("per-query nDCG@10 change (after - before), sorted")
        right.set_ylabel("delta nDCG@10")
    else:
        values = sorted(before.values())
        right.bar(range(len(values)), values, width=1.0)
        right.set_ylim(0, 1)
        right.set_title("per-query nDCG@10, sorted")
    right.set_xlabel("queries")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_plot(report: Report, path: str | Path, dpi: int = 100) -> None:
    """Render and write the PNG atomically."""
    atomic_write_bytes(path, render_png(report, dpi=dpi))
