"""Every CPU backend on the same cross-encoder weights, on TREC DL19: sentence-transformers' CrossEncoder
(torch fp32, ONNX, ONNX O3, ONNX dynamic qint8, OpenVINO, OpenVINO static int8) and rerankit's engine backends.

All systems are built offline first (a system that cannot be built is listed as skipped, with the reason),
warmed up on one query, then every system scores the BM25 top ``--depth`` of each judged DL19 query, in one
process, the order of the systems reversed every other query. Per system: load s (including any export or
quantization), mean ms per query, speed-up (reference ms / system ms) vs st-torch-fp32 and vs the fastest
sentence-transformers backend whose top 10 keeps >= 9 of st-torch-fp32's on every query, top-10 agreement
with st-torch-fp32, nDCG@10 (qrels/test-full.tsv); for rerankit backends, the achieved GFLOP/s (model FLOPs,
unpadded tokens) as a fraction of a 2048 x 2048 torch matmul rate measured in the same run (fp32 backends vs
fp32, bf16/int8 ones vs bf16). ``export_static_quantized_openvino_model`` only calibrates on a hub dataset,
so st-openvino-qint8 makes its ``OVQuantizer.quantize`` call here, on 300 (query, passage) pairs from the BM25
top candidates of TREC DL21 (development set; never DL19).

With CUDA, a GPU section follows (``gpu_section``): sentence-transformers fp32 and fp16 (its default batch of
32, and 128) against rerankit ``auto`` and each ``cuda-*`` backend, 64 DL19 queries x 100 candidates, per query
and all queries in one call; ``--sections gpu`` runs it alone.

Run from the repository root, with nothing else busy on the machine:

    .bench/venv/bin/python benchmarks/backends.py [--max-length 512] [--max-queries N] [--sections cpu,gpu]
        [--out backends.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from rerankit.datasets import read_corpus_jsonl, read_qrels, read_queries_jsonl
from rerankit.engine import available_backends
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
from rerankit.engine.bench import load_sentence_transformers
from rerankit.engine.hardware import cpu_flags, engine_threads, has_bf16_units
from rerankit.evaluation import evaluate, load_run, rerank_query, select_queries, trec_order
from rerankit.rerankers.base import Reranker
from rerankit.rerankers.registry import default_model_path
from rerankit.types import Document

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
PACKAGES = ("torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "openvino", "optimum",
            "optimum-intel", "optimum-onnx", "nncf", "numpy", "rerankit")
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt")
REFERENCE, CALIBRATION_PAIRS = "st-torch-fp32", 300
GPU_DEVICE, GPU_QUERIES, GPU_CANDIDATES, GPU_DEADLINE_S = "cuda", 64, 100, 240.0
Scorer = Callable[[str, Sequence[str]], np.ndarray]


@dataclass
class System:
    name: str
    score: Scorer
    load_s: float
    engine: CrossEncoderReranker | None = None
    note: str = ""
    score_all: Callable[[list[tuple[str, list[str]]]], object] | None = None  # every query in one call (GPU)
    ms: dict[str, float] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)


class Precomputed(Reranker):
    """Returns scores computed earlier, by query text (so ``rerank_query`` builds the reranked run)."""

    score_kind = "logit"

    def __init__(self, scores: dict[str, np.ndarray]) -> None:
        self.scores = scores

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        return self.scores[query]


def load_data(folder: Path, max_queries: int | None):
    """qrels, queries, judged query ids with a BM25 run, the run, and the corpus by id."""
    qrels = read_qrels(folder / "qrels" / "test-full.tsv")
    queries = read_queries_jsonl(folder / "queries.jsonl")
    qids = select_queries(qrels, queries, max_queries)
    run = load_run(folder / "runs" / "bm25.top100.trec", qids)
    qids = [q for q in qids if q in run]
    return qrels, queries, qids, run, {d.id: d for d in read_corpus_jsonl(folder / "corpus.jsonl")}


def texts_of(run, qid: str, corpus, depth: int) -> list[str]:
    return [corpus[d].full_text for d in trec_order(run[qid])[:depth]]


def calibration_pairs(folder: Path, count: int = CALIBRATION_PAIRS) -> list[tuple[str, str]]:
    """``count`` (query, passage) pairs from the BM25 top candidates of ``folder``'s queries, round-robin."""
    _, queries, qids, run, corpus = load_data(folder, None)
    per_query = math.ceil(count / len(qids))
    lists = [[(queries[q], t) for t in texts_of(run, q, corpus, per_query)] for q in qids]
    return [p for rank in itertools.zip_longest(*lists) for p in rank if p is not None][:count]


def st_scorer(model) -> Scorer:
    return lambda query, texts: np.asarray(model.predict([(query, t) for t in texts], show_progress_bar=False),
                                           dtype=np.float32)


def dtype_kwarg(dtype) -> dict:
    """``{"dtype": ...}`` (transformers >= 4.56, where ``torch_dtype`` is deprecated), else ``{"torch_dtype": ...}``."""
    from packaging.version import Version

    return {"dtype" if Version(metadata.version("transformers")) >= Version("4.56") else "torch_dtype": dtype}


def st_builders(args, work: Path) -> list[tuple[str, Callable]]:
    """(name, build) per sentence-transformers system; build returns a CrossEncoder, exporting into a copy of
    the model folder (only the files sentence-transformers needs: not rerankit.json, lexical.json.gz)."""
    copy = work / "model"
    copy.mkdir()
    for name in MODEL_FILES:
        if (Path(args.model) / name).exists():
            shutil.copy(Path(args.model) / name, copy / name)
    built = {}

    def cross_encoder(backend: str, file_name: str | None = None):
        from sentence_transformers import CrossEncoder

        kwargs = {"provider": "CPUExecutionProvider"} if backend == "onnx" else {}
        kwargs.update({"file_name": file_name} if file_name else {})
        return CrossEncoder(str(copy), backend=backend, device="cpu", max_length=args.max_length, model_kwargs=kwargs)

    def onnx_model():
        if "onnx" not in built:
            raise RuntimeError("needs st-onnx, which was skipped (above)")
        return built["onnx"]

    def onnx():
        built["onnx"] = cross_encoder("onnx")  # exports to ONNX on load
        return built["onnx"]

    def onnx_o3():
        from sentence_transformers.backend import export_optimized_onnx_model

        export_optimized_onnx_model(onnx_model(), "O3", str(copy))
        return cross_encoder("onnx", "onnx/model_O3.onnx")

    def onnx_qint8():
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        config = "avx512_vnni" if "avx512_vnni" in cpu_flags() else "avx2"
        export_dynamic_quantized_onnx_model(onnx_model(), config, str(copy))
        # the file is named by the config's weight type: qint8 for avx512_vnni, quint8 for avx2
        written = next((copy / "onnx").glob(f"model_*int8_{config}.onnx"))
        return cross_encoder("onnx", f"onnx/{written.name}")

    def openvino_qint8():
        import nncf
        from optimum.intel.openvino import OVConfig, OVQuantizationConfig, OVQuantizer

        model = cross_encoder("openvino")  # a fresh export: quantization rewrites this model in place
        samples = [dict(model.tokenizer(q, p, truncation=True, max_length=args.max_length, return_tensors="np"))
                   for q, p in calibration_pairs(args.calibration_data)]
        config = OVConfig(quantization_config=OVQuantizationConfig(num_samples=len(samples)))
        OVQuantizer.from_pretrained(model.transformers_model).quantize(
            nncf.Dataset(samples), save_directory=str(work / "ov-int8"), ov_config=config)
        xml = next((work / "ov-int8").rglob("openvino_model.xml"))
        (copy / "openvino").mkdir(exist_ok=True)
        for suffix in (".xml", ".bin"):
            shutil.copy(xml.with_suffix(suffix), copy / "openvino" / f"openvino_model_qint8_quantized{suffix}")
        return cross_encoder("openvino", "openvino/openvino_model_qint8_quantized.xml")

    return [(REFERENCE, lambda: load_sentence_transformers(args.model, args.max_length)), ("st-onnx", onnx),
            ("st-onnx-O3", onnx_o3), ("st-onnx-qint8", onnx_qint8),
            ("st-openvino", lambda: cross_encoder("openvino")), ("st-openvino-qint8", openvino_qint8)]


def rerankit_backends(spec: str) -> list[str]:
    """``spec``'s comma-separated names, ``all`` expanded to ``available_backends()`` now, duplicates dropped."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        names += [n for n in (available_backends() if part == "all" else [part]) if n and n not in names]
    return names


def build(name: str, make: Callable, skipped: dict[str, str]) -> System | None:
    """Time ``make``; a failure is recorded in ``skipped`` with its reason, not raised."""
    start = time.perf_counter()
    try:
        made = make()
    except Exception as exc:  # noqa: BLE001 - any backend that cannot be built offline is reported
        skipped[name] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:240]}"
        print(f"  skipped {name}: {skipped[name]}", flush=True)
        return None
    load_s = time.perf_counter() - start
    if isinstance(made, CrossEncoderReranker):
        system = System(f"{name} ({made.backend})" if name == "rerankit-auto" else name, made.score, load_s, made)
    else:  # a sentence-transformers CrossEncoder; OpenVINO picks its own inference precision (bf16 on AMX CPUs)
        system = System(name, st_scorer(made), load_s)
        compiled = getattr(made.transformers_model, "request", None)
        if hasattr(compiled, "get_property"):
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            system.note = f"OpenVINO runs it with inference precision {getattr(hint, 'get_type_name', hint.__str__)()}"
    print(f"  built {system.name} in {load_s:.1f} s" + (f" ({system.note})" if system.note else ""), flush=True)
    return system


def warm_up(system: System, query_texts: tuple[str, list[str]], skipped: dict[str, str]) -> bool:
    """Score one query (lazy initialisation, kernel selection); a failure moves the system to ``skipped``."""
    try:
        system.score(*query_texts)
    except Exception as exc:  # noqa: BLE001
        skipped[system.name] = f"failed on warm-up: {type(exc).__name__}: {str(exc).strip()[:200]}"
        print(f"  skipped {system.name}: {skipped[system.name]}", flush=True)
        return False
    return True


def precision(system: System) -> str | None:
    """Which GEMM rate a rerankit backend is compared with (``None`` for sentence-transformers): bf16 for
    bf16 and int8 backends on CPUs with bf16 units, else fp32 (without them int8 weights are widened to
    fp32 for the matmuls, and torch's bf16 matmul is emulated)."""
    if system.engine is None:
        return None
    low = "bf16" in system.engine.backend or "int8" in system.engine.backend
    return "bf16" if low and has_bf16_units() else "fp32"


def gemm_gflops(dtype: str, size: int = 2048, seconds: float = 1.5) -> float:
    """GFLOP/s of a ``size`` x ``size`` torch matmul in ``dtype`` (fp32 or bf16), now."""
    import torch

    kind = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    a, b = torch.randn(size, size).to(kind), torch.randn(size, size).to(kind)
    torch.matmul(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def flops_counter(engine: CrossEncoderReranker) -> Callable[[str, Sequence[str]], float]:
    """Model FLOPs of scoring texts: 2 * non-embedding params * tokens + 4 * L^2 * hidden per layer, unpadded."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(engine.info.folder)
    h, layers = config.hidden_size, config.num_hidden_layers
    params = layers * (4 * h * h + 2 * h * config.intermediate_size)

    def count(query: str, texts: Sequence[str]) -> float:
        windows = engine.builder.build([query], [(0, t) for t in texts])
        return float(sum(2 * params * len(w.ids) + layers * 4 * len(w.ids) ** 2 * h for w in windows))

    return count


def environment() -> dict:
    import torch

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    versions = {p: metadata.version(p) for p in PACKAGES if any(metadata.distributions(name=p))}
    return {"cpu": model, "flags": {f: f in cpu_flags() for f in FLAGS}, "python": platform.python_version(),
            "threads": engine_threads(), "torch_threads": torch.get_num_threads(), "versions": versions}


def top10(scores: np.ndarray) -> set[int]:
    return set(np.argsort(-scores, kind="stable")[:10].tolist())


def fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    head = ("system | load s | ms/query | × fp32 | × best ST | top-10 min | top-10 mean | queries < 9 | nDCG@10 "
            "| Δ nDCG@10 | GFLOP/s | of GEMM")
    lines = [f"| {head} |", "|" + "---|" * (head.count("|") + 1)]
    for r in rows:
        cells = [r["system"], fmt(r["load_s"], ".1f"), fmt(r["ms_per_query"], ".1f"), fmt(r["speedup_vs_fp32"], ".2f"),
                 fmt(r["speedup_vs_best_st"], ".2f"), str(r["top10_min"]), fmt(r["top10_mean"], ".2f"),
                 str(r["queries_below_9"]), fmt(r["ndcg10"], ".4f"), fmt(r["ndcg10_diff"], "+.4f"),
                 fmt(r["gflops"], ".1f"),
                 "–" if r["gemm_fraction"] is None else f"{r['gemm_fraction']:.0%} of {r['precision']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement_and_ndcg(reference: System, system: System, qids: Sequence[str], data) -> dict:
    """Top-10 agreement of ``system`` with ``reference`` per query (both scored by qid) and its nDCG@10."""
    qrels, queries, _, run, corpus = data
    agree = [len(top10(reference.scores[q]) & top10(system.scores[q])) for q in qids]
    by_text = {queries[q]: system.scores[q] for q in qids}
    reranked = {q: rerank_query(queries[q], run[q], corpus, Precomputed(by_text), len(system.scores[q])) for q in qids}
    try:
        ndcg = evaluate(reranked, qrels, ["nDCG@10"], query_ids=list(qids)).aggregate["nDCG@10"]
    except ImportError:  # ir_measures missing (a bare GPU machine): agreement only
        ndcg = None
    return {"top10_min": min(agree), "top10_mean": statistics.fmean(agree), "queries_below_9": sum(a < 9 for a in agree),
            "ndcg10": ndcg, "agreement": dict(zip(qids, agree))}


def gpu_section(args) -> dict:
    """sentence-transformers vs rerankit's ``cuda-*`` backends on the GPU, same weights: 64 DL19 queries (the 43
    judged ones, cycled) x 100 BM25 candidates, alternating. Top-10 agreement and nDCG@10 against
    sentence-transformers fp32 on the GPU, over each judged query's first scoring."""
    import torch

    if not torch.cuda.is_available():
        print("\nGPU section skipped: torch.cuda.is_available() is False")
        return {"skipped": "torch.cuda.is_available() is False"}
    from sentence_transformers import CrossEncoder

    print(f"\nGPU section ({torch.cuda.get_device_name()}; torch {torch.__version__}, CUDA {torch.version.cuda}):",
          flush=True)
    start = time.perf_counter()
    data = load_data(args.data, None)
    _, queries, qids, run, corpus = data
    chosen = list(itertools.islice(itertools.cycle(qids), GPU_QUERIES))
    work = [(queries[q], texts_of(run, q, corpus, GPU_CANDIDATES)) for q in chosen]
    skipped: dict[str, str] = {}

    def st(dtype, batch_size: int = 32):
        model = CrossEncoder(args.model, device=GPU_DEVICE, max_length=args.max_length, model_kwargs=dtype_kwarg(dtype))

        def predict(pairs):
            return np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False), dtype=np.float32)

        return (lambda query, texts: predict([(query, t) for t in texts]),
                lambda items: predict([(q, t) for q, texts in items for t in texts]))

    def scorer_system(name: str, make: Callable[[], tuple[Scorer, Callable]]) -> System | None:
        built_start = time.perf_counter()
        try:
            scorer, score_all = make()
        except Exception as exc:  # noqa: BLE001
            skipped[name] = f"{type(exc).__name__}: {str(exc).strip()[:240]}"
            print(f"  skipped {name}: {skipped[name]}", flush=True)
            return None
        print(f"  built {name} in {time.perf_counter() - built_start:.1f} s", flush=True)
        return System(name, scorer, time.perf_counter() - built_start, score_all=score_all)

    systems = [scorer_system("st-cuda-fp32", lambda: st(torch.float32)),
               scorer_system("st-cuda-fp16", lambda: st(torch.float16)),
               scorer_system("st-cuda-fp16-batch128", lambda: st(torch.float16, 128))]
    for backend in ("auto", "cuda-fp16", "cuda-bf16", "cuda-fp32"):
        if backend != "auto" and backend not in available_backends():
            skipped[f"rerankit-{backend}"] = f"{backend!r} is not in rerankit.engine.available_backends()"
            continue
        systems.append(build(f"rerankit-{backend}", lambda b=backend: CrossEncoderReranker(
            args.model, backend=b, max_length=args.max_length, long_docs="first"), skipped))
    systems = [s for s in systems if s is not None and warm_up(s, work[0], skipped)]
    for s in systems:
        if s.engine is not None:
            s.score_all = lambda items, e=s.engine: e.score_many([q for q, _ in items], [t for _, t in items])
    for i, (qid, (query, texts)) in enumerate(zip(chosen, work)):
        if time.perf_counter() - start > GPU_DEADLINE_S:
            break
        for system in systems if i % 2 == 0 else systems[::-1]:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            scores = np.asarray(system.score(query, texts), dtype=np.float32)
            torch.cuda.synchronize()
            system.ms[str(i)] = (time.perf_counter() - t0) * 1000
            system.scores.setdefault(qid, scores)
    if not systems or systems[0].name != "st-cuda-fp32":
        return {"skipped": skipped, "error": "st-cuda-fp32 could not be run"}
    all_at_once: dict[str, float] = {}  # every query in one call, best of two, alternating
    for repeat in range(2):
        for system in systems if repeat % 2 == 0 else systems[::-1]:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            system.score_all(work)
            torch.cuda.synchronize()
            all_at_once[system.name] = min(all_at_once.get(system.name, math.inf), time.perf_counter() - t0)
    judged = [q for q in qids if all(q in s.scores for s in systems)]
    rows = [{"system": s.name, "backend": s.engine.backend if s.engine else None, "load_s": s.load_s,
             "ms_per_query": statistics.fmean(s.ms.values()), "median_ms": statistics.median(s.ms.values()),
             "pairs_per_s_all_at_once": len(work) * GPU_CANDIDATES / all_at_once[s.name],
             **agreement_and_ndcg(systems[0], s, judged, data)}
            for s in systems]
    faithful_st = [r for r in rows if r["system"].startswith("st-") and r["top10_min"] >= 9]
    best = min(faithful_st, key=lambda r: r["ms_per_query"])
    for r in rows:
        r["speedup_vs_st_fp16"] = next(x["ms_per_query"] for x in rows if x["system"] == "st-cuda-fp16") / r["ms_per_query"] \
            if any(x["system"] == "st-cuda-fp16" for x in rows) else None
        r["speedup_vs_best_st"] = best["ms_per_query"] / r["ms_per_query"]
    result = {"device": torch.cuda.get_device_name(), "queries_timed": min(len(s.ms) for s in systems),
              "judged_queries": len(judged), "candidates": GPU_CANDIDATES, "best_st": best["system"],
              "systems": rows, "skipped": skipped}
    print(f"  {result['queries_timed']} queries x {GPU_CANDIDATES} candidates, alternating; agreement and nDCG@10 "
          f"over {len(judged)} judged queries, against st-cuda-fp32; best faithful ST: {best['system']}")
    print("| system | load s | ms/query mean | median | × st fp16 | × best ST | pairs/s, all queries in one call "
          "| top-10 min | top-10 mean | queries < 9 | nDCG@10 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['load_s']:.1f} | {r['ms_per_query']:.2f} | {r['median_ms']:.2f} | "
              f"{fmt(r['speedup_vs_st_fp16'], '.2f')} | {r['speedup_vs_best_st']:.2f} | {r['pairs_per_s_all_at_once']:,.0f} | "
              f"{r['top10_min']} | {r['top10_mean']:.2f} | {r['queries_below_9']} | {fmt(r['ndcg10'], '.4f')} |")
    print("".join(f"\nskipped {name}: {reason}" for name, reason in skipped.items()), flush=True)
    return result


def cpu_section(args, tmp: Path) -> dict:
    """Build, warm up and time every CPU system; print the table; return the figures."""
    data = load_data(args.data, args.max_queries)
    qrels, queries, qids, run, corpus = data
    print(f"data {args.data.name}: {len(qids)} queries x {args.depth} candidates; model {args.model}; "
          f"max_length {args.max_length}")
    skipped: dict[str, str] = {}
    print("building:")
    engine_builders = [(f"rerankit-{b}", lambda b=b: CrossEncoderReranker(args.model, backend=b, max_length=args.max_length,
                                                                    long_docs="first"))
                       for b in rerankit_backends(args.rerankit_backends)]
    systems = [build(name, make, skipped) for name, make in st_builders(args, tmp) + engine_builders]
    work = {qid: (queries[qid], texts_of(run, qid, corpus, args.depth)) for qid in qids}
    systems = [s for s in systems if s is not None and warm_up(s, work[qids[0]], skipped)]
    if not systems or systems[0].name != REFERENCE:
        raise SystemExit(f"error: {REFERENCE} could not be run: {skipped.get(REFERENCE)}")
    engines = [s.engine for s in systems if s.engine is not None]
    count = flops_counter(engines[0]) if engines else None
    flops = {qid: count(*work[qid]) for qid in qids} if count else {}
    for i, qid in enumerate(qids):
        for system in systems if i % 2 == 0 else systems[::-1]:
            start = time.perf_counter()
            system.scores[qid] = np.asarray(system.score(*work[qid]), dtype=np.float32)
            system.ms[qid] = (time.perf_counter() - start) * 1000
    gemm = {"fp32": gemm_gflops("fp32"), "bf16": gemm_gflops("bf16")}

    reference = systems[0]
    rows = []
    for system in systems:
        quality = agreement_and_ndcg(reference, system, qids, data)
        ms = statistics.fmean(system.ms.values())
        gflops = sum(flops.values()) / (sum(system.ms.values()) / 1000) / 1e9 if system.engine and flops else None
        rows.append({"system": system.name, "backend": system.engine.backend if system.engine else None,
                     "note": system.note, "load_s": system.load_s, "ms_per_query": ms,
                     **{k: v for k, v in quality.items() if k != "agreement"},
                     "gflops": gflops, "precision": precision(system),
                     "gemm_fraction": gflops / gemm[precision(system)] if gflops else None,
                     "per_query": {q: {"ms": system.ms[q], "top10_agreement": a}
                                   for q, a in quality["agreement"].items()}})
    ref_ms = rows[0]["ms_per_query"]
    faithful = [r for r in rows if r["system"].startswith("st-") and r["top10_min"] >= 9]  # holds the reference
    best = min(faithful, key=lambda r: r["ms_per_query"])
    for r in rows:
        r.update(speedup_vs_fp32=ref_ms / r["ms_per_query"], ndcg10_diff=r["ndcg10"] - rows[0]["ndcg10"],
                 speedup_vs_best_st=best["ms_per_query"] / r["ms_per_query"])
    bm25 = evaluate(run, qrels, ["nDCG@10"], query_ids=qids).aggregate["nDCG@10"]

    print(f"\nGEMM 2048x2048 (torch): fp32 {gemm['fp32']:.1f} GFLOP/s, bf16 {gemm['bf16']:.1f} GFLOP/s")
    print(f"BM25 nDCG@10 {bm25:.4f}; best sentence-transformers backend with top-10 >= 9/10 on every query: "
          f"{best['system']}\n")
    print(markdown(rows))
    print("".join([f"\nnote {r['system']}: {r['note']}" for r in rows if r["note"]]
                  + [f"\nskipped {name}: {reason}" for name, reason in skipped.items()]))
    return {"queries": len(qids), "gemm_gflops": gemm, "ndcg10_bm25": bm25, "best_st": best["system"],
            "systems": rows, "skipped": skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--data", type=Path, default=DATA / "trec-dl19-passage")
    parser.add_argument("--calibration-data", type=Path, default=DATA / "trec-dl21-passage",
                        help="static int8 calibration pairs come from here (development data, never DL19)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--rerankit-backends", default="auto,all", help="comma-separated; all = available_backends()")
    parser.add_argument("--sections", default="cpu,gpu", help="comma-separated: cpu, gpu (gpu runs only with CUDA)")
    parser.add_argument("--out", type=Path, help="also write everything as JSON here")
    args = parser.parse_args()

    import torch

    from rerankit.encoders import quiet_hf_logging

    warnings.filterwarnings("ignore")
    quiet_hf_logging()
    for name in ("sentence_transformers", "optimum", "nncf"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(engine_threads())  # as rerankit's torch backends do, so every torch system gets the same
    env = environment()
    print(f"cpu: {env['cpu']}; {env['threads']} threads; python {env['python']}")
    print("flags: " + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in env["flags"].items()))
    print("versions: " + ", ".join(f"{p} {v}" for p, v in env["versions"].items()))
    sections = {part.strip() for part in args.sections.split(",")}
    if not sections <= {"cpu", "gpu"}:
        parser.error(f"--sections takes cpu and/or gpu, not {args.sections!r}")
    cpu: dict = {}
    if "cpu" in sections:
        with tempfile.TemporaryDirectory(prefix="rerankit-backends-") as tmp:  # exports live until the end
            cpu = cpu_section(args, Path(tmp))
    gpu = gpu_section(args) if "gpu" in sections else {"skipped": "not asked for (--sections)"}
    if args.out:
        args.out.write_text(json.dumps({"environment": env, "args": {k: str(v) for k, v in vars(args).items()},
                                        **cpu, "gpu": gpu}, indent=2))


if __name__ == "__main__":
    main()
