"""``backend="auto"``: the fastest backend that keeps the fp32 ranking.

Rule (candidates in order, the first that passes wins):

1. Order by CPU: with AMX (``amx_bf16``/``amx_tile``) or AVX512-BF16 in ``/proc/cpuinfo``:
   ``torch-bf16``, ``onnx-int8``, ``onnx-fp32``; else with VNNI: ``onnx-int8``, ``onnx-fp32``;
   else ``onnx-fp32``. ONNX candidates are skipped when onnxruntime is not installed.
2. Calibrate each candidate at load on ``CALIBRATION`` (2 queries x 12 passages) against
   ``torch-fp32``: it passes if, for every query, its top-10 shares at least 9 documents with the
   reference top-10 and its top-1 is the same.
3. Nothing passes: ``torch-fp32``.

``torch-int8`` is not a candidate: it is faster than ``torch-bf16`` (1.11x on DL19 queries in one
process, alternating) but keeps less of the fp32 ranking. On DL21, the development set
(``benchmarks/int8_ranking.py --collection trec-dl21-passage``, 53 queries), both kept at least 9
of the fp32 top 10 on every query, but torch-int8 moved a document out of the top 10 on 40% of
queries (mean agreement 9.60, score correlation 0.9993) and torch-bf16 on 15% (9.85, 1.0000): with
int8's margin, a collection of ~50 queries is likely to have one that loses two. Ask for
``backend="torch-int8"`` where throughput matters more. ``RERANKIT_BACKEND`` (one of ``BACKENDS``)
overrides the rule.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .backend import BACKENDS, onnx_available
from .hardware import has_amx, has_avx512_bf16, has_vnni

if TYPE_CHECKING:  # pragma: no cover
    from .backend import Runner
    from .reranker import EngineReranker

CALIBRATION: list[tuple[str, list[str]]] = [
    ("how do vaccines train the immune system", [
        "Vaccines expose the immune system to a harmless piece or weakened form of a pathogen so that it learns "
        "to make antibodies.",
        "After vaccination, memory B and T cells remain and respond quickly if the real virus appears later.",
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Some vaccines need booster doses because the immune memory they create fades over years.",
        "Bread rises because yeast ferments sugars and releases carbon dioxide.",
        "mRNA vaccines carry instructions for cells to build a spike protein, which the immune system then recognizes.",
        "The stock market closed higher on Tuesday after strong earnings reports.",
        "Herd immunity occurs when enough people are immune that a disease stops spreading.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "Adjuvants are added to some vaccines to strengthen the immune response.",
        "A marathon is 42.195 kilometres long.",
        "The immune system has innate and adaptive branches; vaccines target the adaptive one.",
    ]),
    ("what is the capital of australia", [
        "Canberra is the capital city of Australia, chosen as a compromise between Sydney and Melbourne.",
        "Sydney is the largest city in Australia and home to the Opera House.",
        "Australia's parliament sits in Parliament House in Canberra.",
        "Kangaroos are marsupials found only in Australia.",
        "Melbourne served as the temporary seat of government until 1927.",
        "Python is a popular programming language for data analysis.",
        "The Great Barrier Reef is the world's largest coral reef system.",
        "Canberra was designed by the American architects Walter Burley Griffin and Marion Mahony Griffin.",
        "Wellington is the capital of New Zealand.",
        "The Australian Capital Territory contains Canberra and surrounding land.",
        "Coffee beans are the seeds of the Coffea plant.",
        "Perth is the capital of the state of Western Australia.",
    ]),
]


def candidate_order() -> list[str]:
    """Backends to try, fastest first, for this CPU and installation (step 1 of the rule)."""
    if has_amx() or has_avx512_bf16():
        order = ["torch-bf16", "onnx-int8", "onnx-fp32"]
    elif has_vnni():
        order = ["onnx-int8", "onnx-fp32"]
    else:
        order = ["onnx-fp32"]
    return [b for b in order if not b.startswith("onnx") or onnx_available()]


def _scores(reranker: EngineReranker, runner: Runner) -> list[np.ndarray]:
    saved = reranker.runner
    reranker.runner = runner
    try:
        return reranker.score_many([q for q, _ in CALIBRATION], [docs for _, docs in CALIBRATION])
    finally:
        reranker.runner = saved


def keeps_ranking(reference: list[np.ndarray], candidate: list[np.ndarray], k: int = 10, min_overlap: int = 9) -> bool:
    """Same top-1 and at least ``min_overlap`` of the top-``k`` for every query."""
    for ref, cand in zip(reference, candidate):
        top_ref = list(np.argsort(-ref, kind="stable")[:k])
        top_cand = list(np.argsort(-cand, kind="stable")[:k])
        if top_ref[0] != top_cand[0] or len(set(top_ref) & set(top_cand)) < min(min_overlap, len(top_ref)):
            return False
    return True


def choose_backend(reranker: EngineReranker) -> tuple[str, Runner, dict]:
    """The backend name, its runner and a report of what was tried (see the module docstring)."""
    info, threads = reranker.info, reranker.num_threads
    forced = os.environ.get("RERANKIT_BACKEND", "").strip()
    if forced in BACKENDS:
        return forced, reranker.runner_for(forced), {"forced": forced}
    reference_runner = reranker.runner_for("torch-fp32")
    reranker.runner = reference_runner
    reference = _scores(reranker, reference_runner)
    tried: dict[str, bool | str] = {}
    for name in candidate_order():
        try:
            if name == "torch-bf16" and reference_runner is not None:
                # cast the reference module in place rather than load a second copy of the weights
                from .torch_backend import TorchRunner

                runner = TorchRunner(info, "bf16", threads, module=reference_runner.module)
                reference_runner = reranker.runner = None
            else:
                runner = reranker.runner_for(name)
        except Exception as exc:  # an export that fails on this model: skip the backend
            tried[name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        ok = keeps_ranking(reference, _scores(reranker, runner))
        tried[name] = ok
        if ok:
            return name, runner, {"tried": tried, "chosen": name}
    if reference_runner is None:
        reference_runner = reranker.runner_for("torch-fp32")
    return "torch-fp32", reference_runner, {"tried": tried, "chosen": "torch-fp32"}
