"""The evaluation ``Report``: what was measured, before/after values, significance, timing; JSON and a table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_write_json
from .significance import ALPHA, PairedTest

REPORT_VERSION = 1


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by ``None`` so the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


@dataclass
class Report:
    """One evaluation: first stage ("before") and, when a reranker was given, reranked ("after")."""

    dataset: str
    qrels_path: str
    run_source: str
    reranker: str | None
    depth: int
    rel_threshold: int
    num_queries: int
    num_judged: int
    missing_queries: list[str]
    measures: list[str]
    before: dict[str, float]
    after: dict[str, float] | None = None
    significance: dict[str, PairedTest] = field(default_factory=dict)
    per_query_ndcg10_before: dict[str, float] = field(default_factory=dict)
    per_query_ndcg10_after: dict[str, float] | None = None
    timing: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # nDCG@10 when only the top d candidates are reordered by the same reranker scores: [{"depth", "ndcg10"}]
    depth_sweep: list[dict[str, Any]] | None = None
    # the queries reranking helped and hurt most: {"query_id", "query", "ndcg10_before", "ndcg10_after",
    # "before": [{"id", "grade", "text"}], "after": [...]} (top 10 of each ranking)
    examples: list[dict[str, Any]] | None = None

    def delta(self, metric: str) -> float | None:
        if self.after is None or metric not in self.after:
            return None
        return self.after[metric] - self.before[metric]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["significance"] = {m: t.to_dict() for m, t in self.significance.items()}
        return _clean({"version": REPORT_VERSION, **data})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def write_json(self, path: str | Path) -> None:
        """Write the report atomically (temporary file, fsync, rename)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        data = {k: v for k, v in data.items() if k != "version"}
        data["significance"] = {m: PairedTest(**t) for m, t in data.get("significance", {}).items()}
        return cls(**data)

    def header(self) -> str:
        """Dataset, query counts, qrels, first stage and reranker, one per line."""
        lines = [
            f"dataset: {self.dataset} ({self.num_queries} queries evaluated of {self.num_judged} judged"
            + (f"; {len(self.missing_queries)} judged queries not in the run" if self.missing_queries else "")
            + ")",
            f"qrels: {self.qrels_path} (binary measures: grade >= {self.rel_threshold})",
            f"first stage: {self.run_source}",
        ]
        if self.reranker:
            lines.append(f"reranker: {self.reranker} (top {self.depth})")
        return "\n".join(lines)

    def table(self, alpha: float = ALPHA):
        """A ``rich`` table: metric | before | after | delta | p-value (``*`` marks p < alpha)."""
        from rich.table import Table

        table = Table()
        table.add_column("metric")
        table.add_column("before" if self.after is not None else "value", justify="right")
        if self.after is not None:
            for name in ("after", "delta", "p-value"):
                table.add_column(name, justify="right")
        for metric in self.measures:
            row = [metric, f"{self.before[metric]:.4f}"]
            if self.after is not None:
                test = self.significance.get(metric)
                delta = self.delta(metric) or 0.0
                p = "n/a" if test is None or test.p_value is None else f"{test.p_value:.4f}"
                if test is not None and test.significant(alpha):
                    p += " *"
                row += [f"{self.after[metric]:.4f}", f"{delta:+.4f}", p]
            table.add_row(*row)
        if self.after is not None:
            table.caption = f"* p < {alpha} (two-sided paired t-test over queries)"
        return table

    def print(self, console=None) -> None:
        """Print the table (and timing) with ``rich``."""
        from rich.console import Console

        console = console or Console()
        console.print(self.header(), markup=False, soft_wrap=True)
        console.print(self.table())
        if self.timing:
            console.print(
                f"rerank time: {self.timing.get('total_ms', 0.0) / 1000:.2f} s total, "
                f"{self.timing.get('mean_query_ms', 0.0):.1f} ms/query mean, "
                f"{self.timing.get('p95_query_ms', 0.0):.1f} ms p95"
            )
