"""Retrieval metrics computed by ``ir_measures`` with its pytrec_eval (trec_eval) backend.

Relevance is judged by document id: a run maps ``qid -> {docid: score}`` and qrels map
``qid -> {docid: grade}``. Documents are ranked by score, ties by doc id in *descending* order,
exactly as trec_eval does (see ``trec_order``).

Query convention (trec_eval's default, used by published figures): only queries that are both
judged and present in the run are averaged. Queries in the run without judgments are ignored;
judged queries missing from the run are listed in ``EvalResult.missing_queries`` and, with
``missing_as_zero=True`` (trec_eval ``-c``), count as zero.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..datasets import Qrels, Run
from ..errors import InvalidInputError
from ..validation import positive_int

DEFAULT_DEPTH = 100


def default_measures(depth: int = DEFAULT_DEPTH) -> list[str]:
    """nDCG@10, P@1, P@3, P@5, R@depth, RR@10 (MRR@10) and AP (MAP), in report order."""
    return ["nDCG@10", "P@1", "P@3", "P@5", f"R@{depth}", "RR@10", "AP"]


def trec_order(scores: Mapping[str, float]) -> list[str]:
    """Doc ids best first as trec_eval ranks them: score descending, ties by doc id descending.

    trec_eval (and so pytrec_eval) keeps scores as 32-bit floats, so scores equal in float32 tie.
    """
    import numpy as np

    by_id_desc = sorted(scores, reverse=True)
    return sorted(by_id_desc, key=lambda d: -np.float32(scores[d]))


def to_ir_measure(name: str, rel_threshold: int = 1) -> Any:
    """Parse ``name`` (ir_measures syntax) and give binary measures ``rel=rel_threshold``.

    Measures with graded gains (nDCG) are left as they are; a ``rel=`` written in ``name`` wins.
    """
    import ir_measures

    try:
        measure = ir_measures.parse_measure(name)
    except (ValueError, NameError, SyntaxError, TypeError) as exc:
        raise InvalidInputError(f"unknown measure {name!r}: {exc}") from exc
    if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params:
        measure = measure(rel=rel_threshold)
    return measure


def _plan(parsed: Mapping[str, Any]) -> dict[int | None, list[tuple[str, Any]]]:
    """Group measures by the run truncation they need.

    pytrec_eval has no cutoff for reciprocal rank (ir_measures' pytrec_eval provider would silently
    drop it), so ``RR@k`` is computed as ``RR`` on the run cut to its top ``k`` in trec_eval order.
    """
    import ir_measures

    groups: dict[int | None, list[tuple[str, Any]]] = {}
    for name, measure in parsed.items():
        cutoff: int | None = None
        if measure.NAME == "RR" and "cutoff" in measure.params:
            cutoff = int(measure.params["cutoff"])
            measure = ir_measures.RR(**{k: v for k, v in measure.params.items() if k != "cutoff"})
        if not ir_measures.pytrec_eval.supports(measure):
            raise InvalidInputError(f"measure {name!r} is not supported by the pytrec_eval backend")
        groups.setdefault(cutoff, []).append((name, measure))
    return groups


def _truncate(scores: Mapping[str, float], k: int) -> dict[str, float]:
    return {d: scores[d] for d in trec_order(scores)[:k]}


@dataclass
class EvalResult:
    """Aggregate (mean over evaluated queries) and per-query values of each measure."""

    measures: list[str]
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    rel_threshold: int = 1
    num_judged: int = 0
    missing_queries: list[str] = field(default_factory=list)
    missing_as_zero: bool = False

    @property
    def query_ids(self) -> list[str]:
        """The queries that were averaged (sorted)."""
        first = self.measures[0] if self.measures else None
        return sorted(self.per_query.get(first, {})) if first else []

    @property
    def num_queries(self) -> int:
        return len(self.query_ids)

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "measures": list(self.measures),
            "aggregate": dict(self.aggregate),
            "rel_threshold": self.rel_threshold,
            "num_queries": self.num_queries,
            "num_judged": self.num_judged,
            "missing_queries": list(self.missing_queries),
            "missing_as_zero": self.missing_as_zero,
        }
        if per_query:
            out["per_query"] = {m: dict(v) for m, v in self.per_query.items()}
        return out


def _validate(table: Any, what: str, value_kind: str) -> None:
    """``table`` must map string query ids to ``{string doc id: value}``, each value a real number
    (``value_kind`` "score": not NaN; "grade": an integer), else ``InvalidInputError`` (pytrec_eval
    would raise a bare ``TypeError`` or misorder the documents)."""
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"{what} must be a mapping qid -> {{docid: {value_kind}}}")
    wanted = numbers.Integral if value_kind == "grade" else numbers.Real
    for qid, docs in table.items():
        if not isinstance(qid, str):
            raise InvalidInputError(f"{what}: query id {qid!r} must be a string")
        if not isinstance(docs, Mapping):
            raise InvalidInputError(f"{what} entry for query {qid!r} must map doc ids to {value_kind}s")
        for docid, value in docs.items():
            if not isinstance(docid, str):
                raise InvalidInputError(f"{what}: query {qid!r}: doc id {docid!r} must be a string")
            if isinstance(value, bool) or not isinstance(value, wanted) or value != value:  # NaN != NaN
                raise InvalidInputError(f"{what}: query {qid!r}, doc {docid!r}: {value_kind} {value!r} is not "
                                        f"{'an integer' if value_kind == 'grade' else 'a number'}")


def evaluate(
    run: Run,
    qrels: Qrels,
    measures: Sequence[str] | None = None,
    rel_threshold: int = 1,
    missing_as_zero: bool = False,
    query_ids: Iterable[str] | None = None,
) -> EvalResult:
    """Evaluate ``run`` against ``qrels`` with ir_measures (pytrec_eval backend).

    ``measures`` default to ``default_measures()``; binary ones use ``rel=rel_threshold``.
    ``query_ids`` restricts evaluation to those queries (e.g. a ``--max-queries`` subset).
    """
    import ir_measures

    positive_int(rel_threshold, "rel_threshold")
    _validate(run, "run", "score")
    _validate(qrels, "qrels", "grade")
    if isinstance(measures, str):
        measures = [measures]
    names = list(measures) if measures is not None else default_measures()
    if not names:
        raise InvalidInputError("no measures to compute")
    parsed = {name: to_ir_measure(name, rel_threshold) for name in names}

    judged = {qid: {d: int(g) for d, g in docs.items()} for qid, docs in qrels.items() if docs}
    if query_ids is not None:
        keep = set(query_ids)
        judged = {qid: docs for qid, docs in judged.items() if qid in keep}
    in_run = {qid for qid, docs in run.items() if docs}
    missing = sorted(qid for qid in judged if qid not in in_run)
    evaluated = sorted(judged) if missing_as_zero else sorted(qid for qid in judged if qid in in_run)

    per_query: dict[str, dict[str, float]] = {name: {} for name in names}
    if judged:
        str_run = {
            str(qid): {str(d): float(s) for d, s in docs.items()} for qid, docs in run.items() if qid in judged
        }
        wanted = set(evaluated)
        for cutoff, group in _plan(parsed).items():
            group_run = str_run if cutoff is None else {q: _truncate(d, cutoff) for q, d in str_run.items()}
            by_measure: dict[Any, list[str]] = {}
            for name, measure in group:  # two names may parse to one measure
                by_measure.setdefault(measure, []).append(name)
            evaluator = ir_measures.pytrec_eval.evaluator(list(by_measure), judged)
            for metric in evaluator.iter_calc(group_run):
                if metric.query_id in wanted:
                    for name in by_measure[metric.measure]:
                        per_query[name][metric.query_id] = float(metric.value)
    for name in names:  # measures pytrec_eval leaves out for a query count as zero
        for qid in evaluated:
            per_query[name].setdefault(qid, 0.0)
    aggregate = {
        name: (sum(per_query[name].values()) / len(evaluated) if evaluated else 0.0) for name in names
    }
    return EvalResult(
        measures=names,
        aggregate=aggregate,
        per_query=per_query,
        rel_threshold=rel_threshold,
        num_judged=len(judged),
        missing_queries=missing,
        missing_as_zero=missing_as_zero,
    )
