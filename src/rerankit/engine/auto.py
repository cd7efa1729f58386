"""``backend="auto"``: the fastest backend that keeps the fp32 ranking, decided once per machine.

Rule:

1. Candidates by machine (``candidate_order``): with a CUDA device ``cuda-fp16``, ``cuda-bf16``
   (compared with ``cuda-fp32``); else by CPU: with bf16 units (AMX or AVX512-BF16): ``torch-bf16``,
   ``openvino-bf16``, ``openvino-int8``, ``openvino-fp32``; else ``openvino-int8``,
   ``openvino-fp32``, ``onnx-fp32``. Candidates whose runtime is not installed are left out
   (``backend_available``). ``onnx-int8`` is not a candidate: on DL21 (53 queries, default
   cross-encoder) it left 13 queries below 9 of the fp32 top 10 on a VNNI CPU (min 7) and 11 on
   an AVX2 one, and ``auto``'s small check set does not catch that.
2. Each candidate scores ``CALIBRATION`` (2 queries x 12 passages); it keeps the ranking if, for
   every query, its top-10 shares at least 9 documents with ``torch-fp32``'s and its top-1 is the
   same. Each one that keeps it is timed on a probe of passages of web-passage lengths
   (``probe_pairs``, the best of two runs); backends within a few percent of each other may swap
   places from one machine state to the next.
3. The fastest that keeps the ranking wins; none: the fp32 reference.

The verdict is stored as JSON in ``<cache>/auto/`` under a key made of the model's fingerprint
(config and weights), its input settings, the CPU's flags, the thread count, whether the AMX
kernels are in use and the versions of torch, ONNX Runtime, OpenVINO and NNCF, so a second load in a new process skips steps 2-3 and
builds only the chosen runner (its export is cached too). ``RERANKIT_BACKEND`` (one of
``BACKENDS``) overrides the rule.

``torch-int8`` is not a candidate: it keeps less of the fp32 ranking than ``torch-bf16`` (on DL21,
``benchmarks/int8_ranking.py``, it moved a document out of the top 10 on 40% of queries against
15%); ask for it where throughput matters more.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import write_atomically
from .backend import BACKENDS, backend_available
from .cache import cache_root, model_fingerprint
from .hardware import cpu_flags, engine_threads, has_bf16_units

VERDICT_VERSION = "4"  # 2: probe of web-passage lengths; 3: OpenVINO on two streams; 4: int8 group 64
RUNTIMES = ("torch", "onnxruntime", "openvino", "nncf", "transformers")
log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from ..rerankers.cross_encoder import CrossEncoderReranker
    from .backend import Runner

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


def reference_backend() -> str:
    """The backend every candidate is compared with: fp32 on the GPU where there is one, else on the CPU."""
    return "cuda-fp32" if backend_available("cuda-fp32") else "torch-fp32"


def candidate_order() -> list[str]:
    """Backends to try for this machine and installation (step 1 of the rule)."""
    if backend_available("cuda-fp32"):
        order = ["cuda-fp16", "cuda-bf16"]
    elif has_bf16_units():
        order = ["torch-bf16", "openvino-bf16", "openvino-int8", "openvino-fp32"]
    else:
        order = ["openvino-int8", "openvino-fp32", "onnx-fp32"]
    return [b for b in order if backend_available(b)]


def probe_pairs() -> tuple[list[str], list[list[str]]]:
    """Timing probe: each calibration query against passages of one to four of its sentences (about
    25 to 100 tokens, as web passages run), 48 pairs in all."""
    queries, lists = [], []
    for query, docs in CALIBRATION:
        queries.append(query)
        lists.append([" ".join((docs * 2)[i : i + 1 + i % 4]) for i in range(len(docs))] * 2)
    return queries, lists


def _scores(reranker: CrossEncoderReranker, runner: Runner, pairs=None) -> list[np.ndarray]:
    saved = getattr(reranker, "runner", None)
    reranker.runner = runner
    try:
        queries, lists = pairs or ([q for q, _ in CALIBRATION], [docs for _, docs in CALIBRATION])
        return reranker.score_many(queries, lists)
    finally:
        reranker.runner = saved


def _probe_ms(reranker: CrossEncoderReranker, runner: Runner) -> float:
    pairs = probe_pairs()
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        _scores(reranker, runner, pairs)
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def keeps_ranking(reference: list[np.ndarray], candidate: list[np.ndarray], k: int = 10, min_overlap: int = 9) -> bool:
    """Same top-1 and at least ``min_overlap`` of the top-``k`` for every query."""
    for ref, cand in zip(reference, candidate):
        top_ref = list(np.argsort(-ref, kind="stable")[:k])
        top_cand = list(np.argsort(-cand, kind="stable")[:k])
        if top_ref[0] != top_cand[0] or len(set(top_ref) & set(top_cand)) < min(min_overlap, len(top_ref)):
            return False
    return True


def _versions() -> str:
    found = []
    for name in RUNTIMES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=-")
    return ",".join(found)


def verdict_path(reranker: CrossEncoderReranker) -> Path:
    """Where the verdict for this model, its settings, this CPU and these runtimes is kept."""
    from .native import kernels_in_use

    builder = reranker.builder
    extra = "|".join([
        f"amx-kernels={kernels_in_use()}",
        f"v{VERDICT_VERSION}", reranker.info.kind, str(reranker.info.yes_no_ids), str(reranker.max_length),
        builder.long_docs, str(reranker.activation), str(reranker.num_threads or engine_threads()), platform.machine(),
        " ".join(sorted(cpu_flags())), _versions(),  # the candidates follow from these (no runtime imported)
        str(reranker.requested_batching),
    ])
    key = model_fingerprint(reranker.info.folder, extra)
    return cache_root() / "auto" / f"{reranker.info.folder.name}-{key}.json"


def _cached_choice(reranker: CrossEncoderReranker, path: Path) -> tuple[str, Runner, dict] | None:
    try:
        report = json.loads(path.read_text())
        name = report["chosen"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if name not in BACKENDS or not backend_available(name):
        return None
    try:
        runner = reranker.runner_for(name)
    except Exception as exc:  # a cached export that no longer builds: decide again
        log.info("cached auto choice %s unusable (%s); calibrating again", name, exc)
        return None
    return name, runner, {**report, "cached": True}


def _store(path: Path, report: dict) -> None:
    try:
        write_atomically(path, lambda tmp: tmp.write_text(json.dumps(report, indent=1)))
    except OSError as exc:  # a read-only cache: decide again next time
        log.info("cannot store the auto verdict in %s (%s)", path, exc)


def choose_backend(reranker: CrossEncoderReranker) -> tuple[str, Runner, dict]:
    """The backend name, its runner and a report of what was tried (see the module docstring)."""
    from ..settings import settings

    forced = settings().backend
    if forced is not None and forced not in BACKENDS:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"RERANKIT_BACKEND must be one of {', '.join(BACKENDS)}, got {forced!r}")
    if forced is not None:
        return forced, reranker.runner_for(forced), {"forced": forced}
    path = verdict_path(reranker)
    cached = _cached_choice(reranker, path)
    if cached is not None:
        return cached
    reference_name = reference_backend()
    reference_runner = reranker.runner_for(reference_name)
    reference = _scores(reranker, reference_runner)
    tried: dict[str, bool | str] = {}
    timings: dict[str, float] = {}
    best: tuple[str, Runner] | None = None
    for name in candidate_order():
        try:
            runner = reranker.runner_for(name)
            ok = keeps_ranking(reference, _scores(reranker, runner))
            if ok:
                timings[name] = round(_probe_ms(reranker, runner), 2)
        except Exception as exc:  # an export or a kernel that fails on this model or CPU: skip the backend
            tried[name] = f"failed: {type(exc).__name__}: {str(exc).strip()[:300]}"
            continue
        tried[name] = ok
        if not ok:
            continue
        if best is None or timings[name] < timings[best[0]]:
            best = (name, runner)
    name, runner = best if best is not None else (reference_name, reference_runner)
    report = {"tried": tried, "probe_ms": timings, "chosen": name}
    _store(path, report)
    return name, runner, {**report, "cached": False}
