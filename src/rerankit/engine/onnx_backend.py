"""ONNX Runtime backends: ``onnx-fp32`` (exported once with ``torch.onnx.export``) and
``onnx-int8`` (``onnxruntime.quantization.quantize_dynamic`` of that export: int8 weights,
activations quantized per batch, which uses VNNI instructions where the CPU has them; on a CPU
without VNNI the weights use 7 bits, ``reduce_range``, since ONNX Runtime's u8 x s8 products
there can saturate and reorder a ranking).

Cross-encoders of the BERT family are then rewritten by ONNX Runtime's transformer optimizer
(fused Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu), kept only if its
scores match the plain export on a padded probe batch. Exports live in the cache folder
(``cache.cache_root()/onnx``), named by a fingerprint of the model's config and weights, and are published atomically (``cache.write_atomically``), so a
killed export is simply redone next time. Sessions use ``intra_op_num_threads = engine_threads()``
(physical cores), one inter-op thread, sequential execution and all graph optimizations.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import write_atomically
from .cache import cache_root, model_fingerprint, remove_stale_temporaries
from .hardware import engine_threads, has_vnni
from .modules import ModelInfo, build_module, input_names

EXPORT_VERSION = "2"
FUSABLE_ENCODERS = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
OPSET = 17
log = logging.getLogger(__name__)


def export_path(info: ModelInfo, precision: str, cache_dir: Path | None = None) -> Path:
    """Where the ``precision`` (``fp32``/``int8``) export of this model is cached."""
    extra = f"v{EXPORT_VERSION}|{info.kind}|{info.yes_no_ids}|{info.uses_token_types}|opset{OPSET}"
    key = model_fingerprint(info.folder, extra)
    return (cache_dir or cache_root() / "onnx") / f"{info.folder.name}-{key}-{precision}.onnx"


def _session(path: Path, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _probe_batch(info: ModelInfo) -> dict[str, np.ndarray]:
    """Two sequences, one padded, with both token types: enough to catch a wrong fusion."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(2, 12)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    if info.uses_token_types:
        types = np.zeros_like(ids)
        types[:, 6:] = 1
        batch["token_type_ids"] = types * mask
    return batch


def _fuse_encoder(info: ModelInfo, raw: Path, out: Path) -> bool:
    """Write ORT's fused graph of ``raw`` to ``out``; False (and nothing written) if it fails or differs."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(info.folder)
    if info.kind != "encoder" or config.model_type not in FUSABLE_ENCODERS:
        return False
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size, opt_level=1)
        fused.save_model_to_file(str(out))
        probe = _probe_batch(info)
        expected = _session(raw).run(["scores"], probe)[0]
        got = _session(out).run(["scores"], probe)[0]
        scale = max(1.0, float(np.abs(expected).max()))
        if np.abs(expected - got).max() <= 1e-3 * scale:
            return True
        log.warning("fused ONNX graph of %s differs from the plain export; keeping the plain one", info.folder)
    except Exception as exc:  # optimizer patterns vary by model: the plain export always works
        log.warning("ONNX Runtime optimizer failed on %s (%s); keeping the plain export", info.folder, exc)
    out.unlink(missing_ok=True)
    return False


def trace_to_onnx(module, names: list[str], output: str, path: Path) -> None:
    """Export ``module(*token_id_tensors)`` to ``path``: ``names`` are ``[batch, sequence]`` int64 inputs,
    ``output`` a tensor whose first axis is the batch."""
    import torch

    sample = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic[output] = {0: "batch"}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample, str(path), input_names=names, output_names=[output],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def _export_fp32(info: ModelInfo, target: Path) -> None:
    module = build_module(info, attn="eager")

    def produce(tmp: Path) -> None:
        raw = tmp.with_name(tmp.name + ".raw.tmp")
        try:
            trace_to_onnx(module, input_names(info), "scores", raw)
            if not _fuse_encoder(info, raw, tmp):
                os.replace(raw, tmp)
        finally:
            raw.unlink(missing_ok=True)

    write_atomically(target, produce)


def _quantize_int8(source: Path, target: Path, reduce_range: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def produce(tmp: Path) -> None:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
        try:
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=reduce_range, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops lack type info
        finally:
            root.setLevel(level)

    write_atomically(target, produce)


def ensure_export(info: ModelInfo, precision: str, cache_dir: Path | None = None) -> Path:
    """The cached ONNX file for ``precision``, exporting (and quantizing) it first if missing."""
    fp32 = export_path(info, "fp32", cache_dir)
    remove_stale_temporaries(fp32.parent)
    if not fp32.is_file():
        log.info("exporting %s to %s", info.folder, fp32)
        _export_fp32(info, fp32)
    if precision == "fp32":
        return fp32
    reduce_range = not has_vnni()
    int8 = export_path(info, "int8-7bit" if reduce_range else "int8", cache_dir)
    if not int8.is_file():
        log.info("quantizing %s to %s", fp32, int8)
        _quantize_int8(fp32, int8, reduce_range)
    return int8


def open_cached(ensure: Callable[[], Path], num_threads: int | None = None):
    """``(path, session)`` over the cached file that ``ensure()`` returns (exporting it if missing): one
    thread pool of ``num_threads`` (default ``engine_threads()``), sequential, all graph optimizations.
    An unreadable entry (disk corruption) is dropped and exported again, once."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads or engine_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    path = ensure()
    try:
        return path, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:
        path.unlink(missing_ok=True)
        path = ensure()
        return path, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """An ONNX Runtime CPU session over the cached export."""

    def __init__(self, info: ModelInfo, precision: str = "fp32", num_threads: int | None = None,
                 cache_dir: Path | None = None) -> None:
        self.name = f"onnx-{precision}"
        self.path, self.session = open_cached(lambda: ensure_export(info, precision, cache_dir), num_threads)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: batch[name] for name in self.inputs}
        return np.asarray(self.session.run(["scores"], feed)[0], dtype=np.float32)
