"""The sweet spot: quality and rerank latency against candidate depth on judged data.

``evaluate_depths`` reranks the first-stage top ``d`` for each depth ``d`` (one ``evaluate_folder``
run per depth, the reranker loaded once) and records nDCG@10 and the mean milliseconds per query.
The sweet spot is the smallest depth whose nDCG@10 is within ``tolerance`` of the best depth's
and not significantly below it (paired t-test, two-sided, alpha 0.05): going deeper costs
latency without a gain that this data can show.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..io import atomic_write_bytes, atomic_write_json
from ..validation import positive_int
from ..rerankers.base import Reranker
from .report import Report
from .significance import ALPHA, paired_test

NDCG10 = "nDCG@10"
DEFAULT_TOLERANCE = 0.005


@dataclass
class DepthPoint:
    depth: int
    ndcg10_before: float
    ndcg10_after: float
    ms_per_query: float
    p_value_vs_best: float | None = None  # paired t-test of this depth's nDCG@10 against the best depth's


@dataclass
class DepthSweep:
    dataset: str
    reranker: str
    num_queries: int
    tolerance: float
    points: list[DepthPoint]
    sweet_spot: int
    best_depth: int
    reports: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "reports"}, "reports": self.reports}

    def write_json(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    def table(self):
        from rich.table import Table

        table = Table(title=f"{self.dataset}: {self.reranker} by candidate depth ({self.num_queries} queries)")
        for column in ("depth", "nDCG@10 first stage", "nDCG@10 reranked", "ms / query", "p vs best"):
            table.add_column(column, justify="right")
        for p in self.points:
            mark = " ← sweet spot" if p.depth == self.sweet_spot else ""
            table.add_row(str(p.depth), f"{p.ndcg10_before:.4f}", f"{p.ndcg10_after:.4f}{mark}",
                          f"{p.ms_per_query:.1f}", "-" if p.p_value_vs_best is None else f"{p.p_value_vs_best:.3f}")
        return table

    def print(self, console=None) -> None:
        from rich.console import Console

        console = console or Console()
        console.print(self.table())
        best = next(p for p in self.points if p.depth == self.best_depth)
        spot = next(p for p in self.points if p.depth == self.sweet_spot)
        console.print(f"sweet spot: rerank the top {spot.depth} (nDCG@10 {spot.ndcg10_after:.4f}, "
                      f"{spot.ms_per_query:.1f} ms/query); the best depth {best.depth} gives "
                      f"{best.ndcg10_after:.4f} at {best.ms_per_query:.1f} ms/query")


def choose_sweet_spot(points: Sequence[DepthPoint], tolerance: float = DEFAULT_TOLERANCE,
                      alpha: float = ALPHA) -> tuple[int, int]:
    """``(sweet_spot, best_depth)``: the smallest depth within ``tolerance`` of the best and not
    significantly worse than it."""
    best = max(points, key=lambda p: (p.ndcg10_after, -p.depth))
    for p in sorted(points, key=lambda p: p.depth):
        close = best.ndcg10_after - p.ndcg10_after <= tolerance
        not_worse = p.p_value_vs_best is None or p.p_value_vs_best >= alpha
        if p.depth == best.depth or (close and not_worse):
            return p.depth, best.depth
    return best.depth, best.depth  # pragma: no cover - the best depth always qualifies


def parse_depths(text: str | Sequence[int]) -> list[int]:
    """``"10,20,50"`` (or a list) as sorted distinct positive ints."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        depths = sorted({int(str(x).strip()) for x in items if str(x).strip()})
    except ValueError as exc:
        raise InvalidInputError(f"depths must be comma-separated positive integers, got {text!r}") from exc
    if not depths:
        raise InvalidInputError(f"depths must be comma-separated positive integers, got {text!r}")
    positive_int(depths[0], "each depth")
    return depths


def evaluate_depths(data_dir: str | Path, depths: str | Sequence[int], rerank: str | Reranker,
                    tolerance: float = DEFAULT_TOLERANCE, log: Callable[[str], None] | None = None,
                    **kwargs: Any) -> DepthSweep:
    """Rerank the top ``d`` for every depth ``d`` and find the sweet spot (``kwargs`` go to ``evaluate_folder``)."""
    from . import evaluate_folder
    from ..rerankers.registry import load_reranker

    say = log or (lambda _msg: None)
    depth_list = parse_depths(depths)
    reranker = load_reranker(rerank) if isinstance(rerank, str) else rerank
    name = rerank if isinstance(rerank, str) else getattr(reranker, "name", type(reranker).__name__)
    reports: list[Report] = []
    for depth in depth_list:
        say(f"depth {depth}")
        report = evaluate_folder(data_dir, rerank=reranker, depth=depth, log=log, **kwargs)
        reports.append(report)
    after = [r.per_query_ndcg10_after or {} for r in reports]
    best_index = max(range(len(reports)), key=lambda i: (reports[i].after[NDCG10], -depth_list[i]))
    points = []
    for i, (depth, report) in enumerate(zip(depth_list, reports)):
        p_value = None
        if i != best_index:
            p_value = paired_test(after[best_index], after[i], NDCG10).p_value
        points.append(DepthPoint(depth, report.before[NDCG10], report.after[NDCG10],
                                 report.timing.get("mean_query_ms", 0.0), p_value))
    spot, best = choose_sweet_spot(points, tolerance)
    return DepthSweep(reports[0].dataset, str(name), reports[0].num_queries, tolerance, points, spot, best,
                      [r.to_dict() for r in reports])


def render_depth_png(sweep: DepthSweep, dpi: int = 100) -> bytes:
    """nDCG@10 (left axis) and ms per query (right axis) against depth, the sweet spot marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    depths = [p.depth for p in sweep.points]
    ax.plot(depths, [p.ndcg10_after for p in sweep.points], "o-", color="tab:blue", label="nDCG@10 reranked")
    ax.plot(depths, [p.ndcg10_before for p in sweep.points], "o--", color="tab:gray", label="nDCG@10 first stage")
    ax.axvline(sweep.sweet_spot, color="tab:green", linestyle=":", label=f"sweet spot ({sweep.sweet_spot})")
    ax.set_xlabel("candidates reranked (depth)")
    ax.set_ylabel("nDCG@10")
    ax.set_xscale("log")
    ax.set_xticks(depths)
    ax.set_xticklabels([str(d) for d in depths])
    right = ax.twinx()
    right.plot(depths, [p.ms_per_query for p in sweep.points], "s-", color="tab:red", label="ms / query")
    right.set_ylabel("ms per query")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower right")
    ax.set_title(f"{sweep.dataset}: {sweep.reranker}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_depth_plot(sweep: DepthSweep, path: str | Path, dpi: int = 100) -> None:
    atomic_write_bytes(path, render_depth_png(sweep, dpi=dpi))
