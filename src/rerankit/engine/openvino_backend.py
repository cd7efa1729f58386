"""OpenVINO backends: ``openvino-fp32``, ``openvino-bf16`` and ``openvino-int8``.

The torch scoring module (``modules.build_module``) is converted once with ``openvino.convert_model``
(dynamic batch and sequence axes) and saved as OpenVINO IR (``model.xml`` + ``model.bin``) in the
cache folder, in a folder named by the model's fingerprint, written beside it and published whole
(``io.publish_directory``), so a killed conversion is simply redone next time.

- ``openvino-fp32`` compiles the IR with ``INFERENCE_PRECISION_HINT=f32`` (exact up to summation order).
- ``openvino-bf16`` compiles it with ``INFERENCE_PRECISION_HINT=bf16``; OpenVINO runs the matmuls on
  AMX tiles or AVX512-BF16 itself. Offered only where the CPU plugin lists ``BF16`` among its
  optimization capabilities (elsewhere the hint would silently mean fp32).
- ``openvino-int8``: int8 weights (symmetric, per output channel, by ``nncf.compress_weights``:
  no calibration data) and activations quantized at run time per group of ``DYNAMIC_GROUP``
  values (OpenVINO's ``DYNAMIC_QUANTIZATION_GROUP_SIZE``), so the matmuls run in int8 wherever
  the CPU plugin has int8 kernels, with the rest in fp32. Needs ``nncf`` (``pip install
  rerankit[int8]``). Chosen on DL21 (the development set; default cross-encoder, 53 queries x
  100 BM25 passages) against ``torch-fp32``'s top 10: on a 2-core Sapphire Rapids at 128 tokens,
  group 32 min 9, mean 9.75 (group 128: min 9, mean 9.60); NNCF's static quantization calibrated
  on rerankit's own pairs min 8 (9 queries below 9), with SmoothQuant on the built-in pairs min 5;
  ``onnx-int8`` (ONNX Runtime dynamic) min 7 (13 queries below 9). On a 2-core AMD EPYC (Zen 4:
  VNNI, no AMX) at 512 tokens, two streams: group 64 min 9, mean 9.77, 503 ms/query against 574
  for group 32 (1.14x; min 9, mean 9.79 at 128 tokens); group 128 min 8. The bf16 hint is not used
  with int8 weights: OpenVINO 2026.4.1 computes that wrongly on two streams there (logits near
  -1,700; ``benchmarks/openvino_int8_streams.py`` checks a runtime), and two int8 models of one IR
  with different groups in one process gave wrong scores too, so the group is one constant.

Compiled models use ``INFERENCE_NUM_THREADS = engine_threads()``. With two threads or more they run
``STREAMS`` streams (``PERFORMANCE_HINT=THROUGHPUT``), each with its share of the threads, and a call's
batches go to them several at once: on a 2-core Sapphire Rapids (``openvino-bf16``, default
cross-encoder at 512 tokens, 16 DL19 queries x 100 BM25 passages, the same batches alternating in one
process) two streams took 264 ms per query against 304 ms for one stream of two threads
(``PERFORMANCE_HINT=LATENCY``), with identical scores: no thread waits for the other at each layer,
and the slower of the VM's two cores takes fewer batches. Smaller batches (``TOKEN_BUDGET``) keep both
streams busy on one query's passages. Each stream is fed by its own Python thread calling ``infer``
(which releases the GIL) on its own request: on the same machine, 24 DL19 queries alternating, 289.5
ms per query against 302.7 through OpenVINO's ``AsyncInferQueue`` (on fixed 10 x 100 batches: 43,000
against 36,500 tokens/s), identical scores. With one thread: one stream, the
LATENCY hint. OpenVINO's own compiled-blob cache (``CACHE_DIR``, a ``compiled`` folder inside each IR's
folder) makes a second load cheap.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from .cache import cache_root, model_fingerprint, remove_stale_temporaries
from .hardware import engine_threads
from .modules import ModelInfo, build_module, input_names
from .runtimes import nncf_available, openvino_available, openvino_core, openvino_runs_bf16

CONVERT_VERSION = "1"
PRECISIONS = ("fp32", "bf16", "int8")
# smaller batches than the torch/ONNX default suit OpenVINO's CPU plugin, and its streams (measured on a
# 2-core Sapphire Rapids, 100 DL19 passages at 512 tokens: one stream 2,048 tokens 307 ms, 8,192 368 ms;
# two streams 1,024 tokens 264 ms, 512 300 ms, 2,048 282 ms, 4,096 324 ms)
TOKEN_BUDGET = 1024
MAX_BATCH = 16
STREAMS = 2
DYNAMIC_GROUP = 64  # see the module docstring; one value per process
BLOB_FOLDER = "compiled"
log = logging.getLogger(__name__)


def ir_folder(info: ModelInfo, precision: str, cache_dir: Path | None = None) -> Path:
    """Where the IR of this model is cached: one fp32 IR serves fp32 and bf16; int8 has its own."""
    import openvino as ov

    stored = "int8" if precision == "int8" else "fp32"
    key = model_fingerprint(info.folder, f"ov{CONVERT_VERSION}|{ov.__version__}|{info.kind}|{info.yes_no_ids}|"
                                         f"{info.uses_token_types}")
    return (cache_dir or cache_root() / "openvino") / f"{info.folder.name}-{key}-{stored}"


def _convert(info: ModelInfo):
    import openvino as ov
    import torch

    module = build_module(info, attn="sdpa")
    names = input_names(info)
    example = {name: torch.ones((2, 8), dtype=torch.long) for name in names}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every batch
        return ov.convert_model(module, example_input=example, input=[(name, [-1, -1]) for name in names])


def _save(model, folder: Path) -> None:
    import openvino as ov

    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)


def _compress_weights(model):
    """int8 weights by NNCF, without its statistics table and progress bar in the user's output."""
    import contextlib
    import io

    import nncf

    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
    finally:
        nncf_log.setLevel(level)


def ensure_ir(info: ModelInfo, precision: str, cache_dir: Path | None = None) -> Path:
    """The cached ``model.xml`` for ``precision``, converting (and compressing) it first if missing."""
    def convert():
        model = _convert(info)
        return _compress_weights(model) if precision == "int8" else model

    return cached_ir(ir_folder(info, precision, cache_dir) / "model.xml", info.folder, convert)


def cached_ir(xml: Path, source: Path, convert: Callable[[], object]) -> Path:
    """``xml``, a cached IR's ``model.xml``; where it is missing, ``convert()`` (the model in ``source``)
    is saved into a temporary folder beside its place and published whole (``io.publish_directory``)."""
    import shutil
    import tempfile

    from ..io import publish_directory

    if xml.is_file():
        return xml
    folder = xml.parent
    remove_stale_temporaries(folder.parent)
    log.info("converting %s to OpenVINO IR in %s", source, folder)
    model = convert()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        _save(model, work)
        publish_directory(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return xml


def compile_cached(ensure: Callable[[], Path], config: dict[str, object], name: str) -> tuple[Path, object]:
    """``(path, compiled model)`` on the CPU plugin over the IR that ``ensure()`` returns (converting it if
    missing). An entry that does not compile (disk corruption) is converted again, once; a fresh
    conversion that does not compile means this CPU lacks a kernel: ``BackendUnavailableError``."""
    import shutil

    _remove_shared_blob_folder()
    path = ensure()
    try:
        return path, openvino_core().compile_model(str(path), "CPU", _with_blob_cache(config, path))
    except Exception:  # an unreadable cache entry: convert again, once
        shutil.rmtree(path.parent, ignore_errors=True)
    path = ensure()
    try:
        return path, openvino_core().compile_model(str(path), "CPU", _with_blob_cache(config, path))
    except Exception as exc:
        raise BackendUnavailableError(f"{name} does not run on this CPU: {str(exc).strip()[:300]}") from exc


def _with_blob_cache(config: dict[str, object], xml: Path) -> dict[str, object]:
    """``config`` with OpenVINO's compiled-blob cache (``CACHE_DIR``) in a ``compiled`` folder inside the
    IR's own folder: a second load skips compiling, and a removed IR takes its blobs with it."""
    return {**config, "CACHE_DIR": str(xml.parent / BLOB_FOLDER)}


@lru_cache(maxsize=1)
def _remove_shared_blob_folder() -> None:
    """Remove ``openvino/compiled``, the one blob folder for every model that earlier versions kept and
    never pruned (tens of GB after many models), once per process."""
    import shutil

    shutil.rmtree(cache_root() / "openvino" / BLOB_FOLDER, ignore_errors=True)


class StreamedModel:
    """A model compiled on the CPU plugin over ``STREAMS`` streams where it has two threads or more (one
    with the LATENCY hint otherwise): ``model(feed)`` runs one batch, ``run_batches`` several at once.
    ``feed`` maps input positions to arrays. One call at a time uses the requests (a lock)."""

    def __init__(self, ensure: Callable[[], Path], config: dict[str, object], threads: int, name: str) -> None:
        self.streams = min(STREAMS, threads)
        config = {**config, "INFERENCE_NUM_THREADS": threads}
        if self.streams > 1:
            config.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams})
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        self.path, self.compiled = compile_cached(ensure, config, name)
        self.output = self.compiled.output(0)
        self.request = self.compiled.create_infer_request()
        self._requests = [self.request]  # one per stream, made at the first call with several batches
        self._lock = threading.Lock()

    def __call__(self, feed: dict[int, np.ndarray]) -> np.ndarray:
        with self._lock:
            return np.array(self.request.infer(feed)[self.output], dtype=np.float32)

    def run_batches(self, jobs: Iterable[tuple[object, dict[int, np.ndarray]]], outputs) -> None:
        """``outputs[key] = result`` (a float32 copy) for every ``(key, feed)`` of ``jobs``, the batches spread
        over the streams: one thread per stream (this one and ``streams - 1`` more) takes the next job and
        runs it on its own request (``infer`` releases the GIL), so ``jobs`` is read as the streams free up."""
        if self.streams == 1:
            for key, feed in jobs:
                outputs[key] = self(feed)
            return
        with self._lock:
            while len(self._requests) < self.streams:
                self._requests.append(self.compiled.create_infer_request())
            jobs = iter(jobs)
            take = threading.Lock()
            failures: list[BaseException] = []

            def work(request) -> None:
                try:
                    while True:
                        with take:
                            job = None if failures else next(jobs, None)
                        if job is None:
                            return
                        key, feed = job
                        outputs[key] = np.array(request.infer(feed)[self.output], dtype=np.float32)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller below; the others stop
                    failures.append(exc)

            helpers = [threading.Thread(target=work, args=(request,), daemon=True) for request in self._requests[1:]]
            for helper in helpers:
                helper.start()
            try:
                work(self._requests[0])
            finally:
                for helper in helpers:
                    helper.join()
            if failures:
                raise failures[0]


class OpenVinoRunner:
    """A cross-encoder on OpenVINO's CPU plugin over the cached IR (a ``StreamedModel``)."""

    token_budget = TOKEN_BUDGET
    max_batch = MAX_BATCH

    def __init__(self, info: ModelInfo, precision: str = "fp32", num_threads: int | None = None,
                 cache_dir: Path | None = None) -> None:
        if precision not in PRECISIONS:
            raise BackendUnavailableError(f"unknown OpenVINO precision {precision!r}")
        if not openvino_available():
            raise BackendUnavailableError("the openvino backends need `pip install openvino`")
        if precision == "bf16" and not openvino_runs_bf16():
            raise BackendUnavailableError("openvino-bf16 needs a CPU with AMX or AVX512-BF16")
        if precision == "int8" and not nncf_available():
            raise BackendUnavailableError("openvino-int8 needs nncf: pip install 'rerankit[int8]'")
        self.name = f"openvino-{precision}"
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if precision == "int8":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DYNAMIC_GROUP
        self.model = StreamedModel(lambda: ensure_ir(info, precision, cache_dir), config,
                                   num_threads or engine_threads(), self.name)
        self.path = self.model.path
        # inputs by position, in the order they were converted: a model read back from OpenVINO's
        # compiled-blob cache may carry other tensor names
        self.inputs = input_names(info)
        self._check_runs()

    def _check_runs(self) -> None:
        """Run one small batch now: OpenVINO builds some kernels only at the first inference, and a CPU
        without one (int8 with dynamic quantization, say) should fail here, as an unavailable backend."""
        probe = {name: np.ones((2, 8), dtype=np.int64) for name in self.inputs}
        try:
            self(probe)
        except Exception as exc:
            raise BackendUnavailableError(f"{self.name} does not run on this CPU: {str(exc).strip()[:300]}") from exc

    def _feed(self, batch: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
        return {i: batch[name] for i, name in enumerate(self.inputs)}

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.model(self._feed(batch))

    def run_batches(self, jobs: Iterable[tuple[list[int], dict[str, np.ndarray]]], outputs: np.ndarray) -> None:
        """``outputs[rows] = scores`` for every ``(rows, batch)``, the batches spread over the streams."""
        self.model.run_batches(((rows, self._feed(batch)) for rows, batch in jobs), outputs)
