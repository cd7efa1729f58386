"""Paired significance tests between two runs' per-query values (two-sided paired t-test)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

ALPHA = 0.05


@dataclass
class PairedTest:
    """Paired comparison of run B against run A on one metric (``delta = B - A``).

    ``p_value`` is ``None`` when the test cannot be run (fewer than 2 paired queries); identical
    per-query values give ``p_value = 1.0``; constant non-zero differences give ``0.0`` (t is
    infinite there and stored as ``None`` so that the report stays valid JSON).
    """

    metric: str
    n: int
    mean_a: float
    mean_b: float
    mean_delta: float
    t_statistic: float | None
    p_value: float | None
    wins: int
    losses: int
    ties: int
    note: str = ""

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_value is not None and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_test(
    a: Mapping[str, float], b: Mapping[str, float], metric: str = "", tie_tol: float = 1e-12
) -> PairedTest:
    """Two-sided ``scipy.stats.ttest_rel`` over the queries present in both ``a`` and ``b``.

    Wins/losses/ties count queries where B is above/below/within ``tie_tol`` of A.
    """
    from scipy import stats

    qids = sorted(set(a) & set(b))
    xs = [float(a[q]) for q in qids]
    ys = [float(b[q]) for q in qids]
    n = len(qids)
    diffs = [y - x for x, y in zip(xs, ys)]
    wins = sum(d > tie_tol for d in diffs)
    losses = sum(d < -tie_tol for d in diffs)
    ties = n - wins - losses
    mean_a = sum(xs) / n if n else 0.0
    mean_b = sum(ys) / n if n else 0.0
    mean_delta = sum(diffs) / n if n else 0.0
    base = dict(metric=metric, n=n, mean_a=mean_a, mean_b=mean_b, mean_delta=mean_delta,
                wins=wins, losses=losses, ties=ties)
    if n < 2:
        return PairedTest(**base, t_statistic=None, p_value=None, note=f"needs >= 2 paired queries, got {n}")
    if all(abs(d - diffs[0]) <= tie_tol for d in diffs):  # zero variance: ttest_rel gives nan or inf
        if abs(diffs[0]) <= tie_tol:
            return PairedTest(**base, t_statistic=0.0, p_value=1.0, note="identical per-query values")
        return PairedTest(**base, t_statistic=None, p_value=0.0, note="constant non-zero difference")
    result = stats.ttest_rel(ys, xs)
    t, p = float(result.statistic), float(result.pvalue)
    if math.isnan(p):  # pragma: no cover - guarded above, kept as a safety net
        return PairedTest(**base, t_statistic=None, p_value=None, note="test undefined")
    return PairedTest(**base, t_statistic=t, p_value=p)


def compare(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]]
) -> dict[str, PairedTest]:
    """``paired_test`` for every metric present in both per-query tables (metric -> qid -> value)."""
    return {m: paired_test(before[m], after[m], metric=m) for m in before if m in after}
