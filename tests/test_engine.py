"""The engine: every backend keeps the fp32 ranking, batching keeps input order, exact inputs, ONNX cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine_helpers import CUDA_TOLERANCE, DOCS, QUERIES, assert_same_ranking, build_tiny_cross_encoder, reranker_or_skip
from rerankit import Document, InvalidInputError
from rerankit.engine import available_backends
from rerankit.engine.batching import collate, pack_by_tokens
from rerankit.engine.cache import model_fingerprint
from rerankit.rerankers.cross_encoder import CrossEncoderReranker

# Allowed ranking slack, as a fraction of the fp32 score range: near-ties may swap, nothing else.
TOLERANCE = {"torch-fp32": 1e-6, "onnx-fp32": 1e-4, "torch-bf16": 0.04, "torch-int8": 0.08, "onnx-int8": 0.08,
             "openvino-fp32": 1e-4, "openvino-bf16": 0.04, "openvino-int8": 0.08} | CUDA_TOLERANCE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("engine-ce"))


@pytest.fixture(scope="module")
def reference(model_dir) -> list[np.ndarray]:
    return CrossEncoderReranker(model_dir, backend="torch-fp32").score_many(QUERIES, [DOCS] * len(QUERIES))


def test_torch_fp32_matches_the_existing_cross_encoder(model_dir, reference):
    plain = CrossEncoderReranker(str(model_dir), backend="torch")
    for query, scores in zip(QUERIES, reference):
        np.testing.assert_allclose(scores, plain.score(query, DOCS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", available_backends())
def test_every_backend_keeps_the_fp32_ranking(model_dir, reference, backend):
    engine = reranker_or_skip(model_dir, backend, activation="none")
    reference_logits = [CrossEncoderReranker(model_dir, backend="torch-fp32", activation="none").score(q, DOCS) for q in QUERIES]
    for query, ref in zip(QUERIES, reference_logits):
        assert_same_ranking(ref, engine.score(query, DOCS), TOLERANCE[backend])
    assert engine.backend == backend


def test_auto_picks_a_backend_that_keeps_the_ranking(model_dir, reference):
    engine = CrossEncoderReranker(model_dir, backend="auto")
    assert engine.backend in available_backends()
    assert engine.auto_report and engine.auto_report["chosen"] == engine.backend
    for query, ref in zip(QUERIES, reference):
        assert_same_ranking(ref, engine.score(query, DOCS), TOLERANCE[engine.backend])


def test_inputs_are_exactly_the_tokenizers_pairs(model_dir):
    from transformers import AutoTokenizer

    engine = CrossEncoderReranker(model_dir, backend="torch-fp32", max_length=48, long_docs="first")
    tok = AutoTokenizer.from_pretrained(model_dir)  # transformers' own pairs, not the engine's tokenizer
    long_query = "what " * 40
    cases = [("cats", "a short document"), ("cats", "word " * 100), (long_query, "short doc"), (long_query, "doc " * 60),
             ("q " * 30, "d " * 30), ("q " * 23, "d " * 60), ("q " * 60, "d " * 23), ("q " * 60, "d " * 22)]
    windows = engine.builder.build([q for q, _ in cases], [(i, d) for i, (_, d) in enumerate(cases)])
    for (query, doc), window in zip(cases, windows):
        expected = tok(query, doc, truncation="longest_first", max_length=48)
        assert window.ids == expected["input_ids"]
        assert window.types == expected["token_type_ids"]


@pytest.mark.parametrize("backend", [b for b in ("torch-fp32", "onnx-fp32") if b in available_backends()])
def test_token_budget_batching_returns_input_order_for_mixed_lengths(model_dir, backend):
    docs = [DOCS[i % len(DOCS)] * (1 + (i * 7) % 5) for i in range(37)]
    small = CrossEncoderReranker(model_dir, backend=backend, token_budget=300, max_batch=5)
    one_by_one = np.array([small.score(QUERIES[0], [d])[0] for d in docs])
    batched = small.score(QUERIES[0], docs)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    big = CrossEncoderReranker(model_dir, backend=backend, token_budget=100_000, max_batch=1000)
    np.testing.assert_allclose(big.score(QUERIES[0], docs), one_by_one, rtol=1e-5, atol=1e-6)


def test_rerank_many_packs_across_queries_and_matches_rerank(model_dir):
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32", token_budget=400)
    lists = [DOCS, DOCS[3:7], [{"text": "Paris", "title": "France", "id": "p"}]]
    queries = [QUERIES[0], QUERIES[1], "capital of france"]
    many = engine.rerank_many(queries, lists, top_k=3)
    for query, docs, results in zip(queries, lists, many):
        single = engine.rerank(query, docs, top_k=3)
        assert [r.index for r in results] == [r.index for r in single]
        np.testing.assert_allclose([r.score for r in results], [r.score for r in single], rtol=1e-5)
        assert [r.rank for r in results] == list(range(len(results)))
        assert all(r.offsets is not None for r in results)
    assert many[2][0].document == Document(text="Paris", title="France", id="p")
    assert many[2][0].offsets == (0, len("France. Paris"))


def test_bad_inputs(model_dir):
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32")
    with pytest.raises(InvalidInputError):
        engine.rerank_many(["q"], [])
    with pytest.raises(InvalidInputError):
        engine.rerank("", ["a"])
    with pytest.raises(InvalidInputError):
        CrossEncoderReranker(model_dir, backend="tpu-int4")
    assert engine.score("q", []).shape == (0,)
    assert engine.rerank("q", ["a"], top_k=5)[0].index == 0


@pytest.mark.parametrize("lengths,budget", [([5, 50, 3, 3, 40, 7], 100), ([10] * 9, 35), ([200, 1], 50)])
def test_pack_by_tokens_covers_each_index_once_within_budget(lengths, budget):
    batches = pack_by_tokens(lengths, budget, max_batch=4)
    flat = sorted(int(i) for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
    batch = collate([[1, 2, 3], [4]], [[0, 0, 1], [0]], pad_id=9)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_max_length_defaults_to_the_fused_models_training_length(model_dir, tmp_path):
    import json
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "fused"))
    (copy / "rerankit.json").write_text(json.dumps({"format": "rerankit-fused-v1", "max_length": 32}))
    engine = CrossEncoderReranker(copy, backend="torch-fp32", long_docs="first")
    assert engine.max_length == 32
    assert all(len(w.ids) <= 32 for w in engine.builder.build(["q"], [(0, "word " * 100)]))
    assert CrossEncoderReranker(copy, backend="torch-fp32", max_length=64).max_length == 64
    assert CrossEncoderReranker(model_dir, backend="torch-fp32").max_length == 512


def test_fingerprint_follows_the_weights(model_dir, tmp_path):
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    assert model_fingerprint(copy) == model_fingerprint(model_dir)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != model_fingerprint(model_dir)


# The child pauses where the cache publishes a written export (its os.replace of the temporary file), so the
# test can SIGKILL it between writing and publishing.
PAUSED_EXPORT = """
import os, sys, time
real_replace = os.replace
def paused_replace(src, dst, *args, **kwargs):
    if str(src).endswith(".tmp") and str(dst).endswith(".onnx"):
        print("EXPORT_HOOK_READY", src, flush=True)
        time.sleep(600)
    return real_replace(src, dst, *args, **kwargs)
os.replace = paused_replace
from rerankit.rerankers.cross_encoder import CrossEncoderReranker
CrossEncoderReranker(sys.argv[1], backend="onnx-fp32")
"""


@pytest.mark.skipif("onnx-fp32" not in available_backends(), reason="onnxruntime is not installed")
def test_killed_export_leaves_no_loadable_file(model_dir, tmp_path, reference, monkeypatch):
    cache = tmp_path / "cache"
    env = {**os.environ, "RERANKIT_CACHE": str(cache)}
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_EXPORT, str(model_dir)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the temporary file is written and synced
        assert line.startswith("EXPORT_HOOK_READY"), line
        tmp = Path(line.split(" ", 1)[1].strip())
        assert tmp.is_file() and tmp.stat().st_size > 0 and tmp.parent == cache / "onnx"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert list((cache / "onnx").glob("*.onnx")) == []  # only the .tmp remains, under a name never loaded

    monkeypatch.setenv("RERANKIT_CACHE", str(cache))
    engine = CrossEncoderReranker(model_dir, backend="onnx-fp32")
    assert engine.runner.path.is_file() and engine.runner.path.parent == cache / "onnx"
    np.testing.assert_allclose(engine.score(QUERIES[0], DOCS), reference[0], rtol=1e-4, atol=1e-5)

    engine.runner.path.write_bytes(b"corrupt")  # a damaged entry is exported again, not trusted
    again = CrossEncoderReranker(model_dir, backend="onnx-fp32")
    np.testing.assert_allclose(again.score(QUERIES[0], DOCS), reference[0], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif("onnx-int8" not in available_backends(), reason="onnxruntime is not installed")
def test_int8_weights_use_seven_bits_on_cpus_without_vnni(model_dir, tmp_path, monkeypatch):
    # without VNNI, ONNX Runtime's u8 x s8 products can saturate: quantize_dynamic's reduce_range avoids it
    from rerankit.engine import onnx_backend
    from rerankit.engine.modules import read_info

    calls = []
    real = onnx_backend._quantize_int8
    monkeypatch.setattr(onnx_backend, "_quantize_int8", lambda *args: calls.append(args[-1]) or real(*args))
    info = read_info(model_dir)
    for vnni in (False, True):
        monkeypatch.setattr(onnx_backend, "has_vnni", lambda: vnni)
        path = onnx_backend.ensure_export(info, "int8", tmp_path)
        assert path.is_file() and path.name.endswith("-int8-7bit.onnx" if not vnni else "-int8.onnx")
    assert calls == [True, False]  # one cached file per kind, so a cache moved to another CPU stays right


def test_auto_falls_back_to_fp32_when_no_candidate_keeps_the_ranking(model_dir, monkeypatch, reference, tmp_path):
    from rerankit.engine import auto

    monkeypatch.delenv("RERANKIT_BACKEND", raising=False)
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path))  # no verdict stored by an earlier test
    monkeypatch.setattr(auto, "keeps_ranking", lambda reference, candidate, **kw: False)
    engine = CrossEncoderReranker(model_dir, backend="auto")
    fp32 = auto.reference_backend()  # cuda-fp32 where there is a CUDA device
    assert engine.backend == fp32 and engine.auto_report["chosen"] == fp32
    assert all(v is False or str(v).startswith("failed") for v in engine.auto_report["tried"].values())
    for query, scores in zip(QUERIES, reference):  # the fp32 reference, rebuilt after the in-place bf16 try
        np.testing.assert_allclose(engine.score(query, DOCS), scores, rtol=1e-5, atol=1e-6)


def test_auto_tries_bf16_first_and_never_int8(monkeypatch):
    from rerankit.engine import auto

    available = auto.backend_available
    monkeypatch.setattr(auto, "backend_available", lambda name: not name.startswith("cuda") and available(name))
    monkeypatch.setattr(auto, "has_bf16_units", lambda: True)
    order = auto.candidate_order()
    assert order[0] == "torch-bf16" and "torch-int8" not in order  # int8 is opt-in (see auto's docstring)
    monkeypatch.setattr(auto, "has_bf16_units", lambda: False)
    assert "torch-bf16" not in auto.candidate_order()
    monkeypatch.setattr(auto, "backend_available", lambda name: True)  # a CUDA device: half precision on it
    assert auto.candidate_order() == ["cuda-fp16", "cuda-bf16"] and auto.reference_backend() == "cuda-fp32"


def test_auto_stores_its_verdict_and_a_second_load_reuses_it(model_dir, monkeypatch, tmp_path):
    from rerankit.engine import auto

    monkeypatch.delenv("RERANKIT_BACKEND", raising=False)
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path))
    first = CrossEncoderReranker(model_dir, backend="auto")
    assert first.auto_report["cached"] is False
    verdicts = list((tmp_path / "auto").glob("*.json"))
    assert len(verdicts) == 1 and first.backend in verdicts[0].read_text()
    calls = []
    monkeypatch.setattr(auto, "keeps_ranking", lambda *a, **k: calls.append(1) or True)
    second = CrossEncoderReranker(model_dir, backend="auto")
    assert second.backend == first.backend and second.auto_report["cached"] is True and not calls
    np.testing.assert_allclose(second.score(QUERIES[0], DOCS), first.score(QUERIES[0], DOCS), rtol=1e-6)
    other = CrossEncoderReranker(model_dir, backend="auto", max_length=64)  # other settings: their own verdict
    assert other.auto_report["cached"] is False and len(list((tmp_path / "auto").glob("*.json"))) == 2


def test_a_broken_verdict_file_means_deciding_again(model_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("RERANKIT_BACKEND", raising=False)
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path))
    CrossEncoderReranker(model_dir, backend="auto")
    for path in (tmp_path / "auto").glob("*.json"):
        path.write_text('{"chosen": "no-such-backend"')
    engine = CrossEncoderReranker(model_dir, backend="auto")
    assert engine.auto_report["cached"] is False and engine.backend in available_backends()


def test_batch_limits_are_checked_and_default_to_the_backends_preference(model_dir):
    with pytest.raises(InvalidInputError):
        CrossEncoderReranker(model_dir, backend="torch-fp32", token_budget=0)
    with pytest.raises(InvalidInputError):
        CrossEncoderReranker(model_dir, backend="torch-fp32", max_batch=-3)
    engine = CrossEncoderReranker(model_dir, backend="torch-fp32", token_budget=100, max_batch=2)
    assert (engine.token_budget, engine.max_batch) == (100, 2)
    assert CrossEncoderReranker(model_dir, backend="torch-fp32").token_budget == 8192


def test_openvino_bf16_is_refused_where_openvino_runs_no_bf16(model_dir, monkeypatch):
    from rerankit.engine import openvino_backend
    from rerankit.errors import BackendUnavailableError

    if not openvino_backend.openvino_available():
        pytest.skip("openvino is not installed")
    from rerankit.engine import backend

    monkeypatch.setattr(openvino_backend, "openvino_runs_bf16", lambda: False)
    monkeypatch.setattr(backend, "openvino_runs_bf16", lambda: False)
    with pytest.raises(BackendUnavailableError):
        CrossEncoderReranker(model_dir, backend="openvino-bf16")
    assert "openvino-bf16" not in available_backends()


def test_openvino_conversion_is_published_as_a_whole_folder(model_dir, tmp_path):
    from rerankit.engine import openvino_backend
    from rerankit.engine.modules import read_info

    if not openvino_backend.openvino_available():
        pytest.skip("openvino is not installed")
    xml = openvino_backend.ensure_ir(read_info(model_dir), "fp32", tmp_path)
    assert xml.is_file() and (xml.parent / "model.bin").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [xml.parent.name]  # no temporary folder left
    assert openvino_backend.ensure_ir(read_info(model_dir), "bf16", tmp_path) == xml  # one IR for fp32 and bf16


def test_a_killed_openvino_conversion_leaves_nothing_to_load(model_dir, tmp_path, monkeypatch):
    from rerankit.engine import openvino_backend
    from rerankit.engine.modules import read_info

    if not openvino_backend.openvino_available():
        pytest.skip("openvino is not installed")

    def killed(model, folder):
        (folder / "model.xml").write_text("<half")
        raise KeyboardInterrupt

    monkeypatch.setattr(openvino_backend, "_save", killed)
    with pytest.raises(KeyboardInterrupt):
        openvino_backend.ensure_ir(read_info(model_dir), "fp32", tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    engine = CrossEncoderReranker(model_dir, backend="openvino-fp32", cache_dir=tmp_path)
    assert engine.score(QUERIES[0], DOCS).shape == (len(DOCS),)



def test_openvino_blobs_go_beside_their_ir_in_the_cache_of_the_moment(model_dir, tmp_path, monkeypatch):
    """The one ``openvino.Core`` is made early (at collection, under another cache); the compiled blobs still
    follow ``RERANKIT_CACHE`` as it is at compile time, inside the IR's folder, and the old shared blob
    folder of earlier versions is removed."""
    from rerankit.engine import openvino_backend, runtimes

    if not openvino_backend.openvino_available():
        pytest.skip("openvino is not installed")
    runtimes.openvino_core()
    cache = tmp_path / "cache"
    monkeypatch.setenv("RERANKIT_CACHE", str(cache))
    shared = cache / "openvino" / "compiled"
    shared.mkdir(parents=True)
    (shared / "1.blob").write_bytes(b"a blob of an earlier version")
    openvino_backend._remove_shared_blob_folder.cache_clear()
    try:
        engine = CrossEncoderReranker(model_dir, backend="openvino-fp32")
    finally:
        openvino_backend._remove_shared_blob_folder.cache_clear()
    assert engine.score(QUERIES[0], DOCS).shape == (len(DOCS),)
    blobs = list(cache.rglob("*.blob"))
    assert blobs and {blob.parent for blob in blobs} == {engine.runner.model.path.parent / "compiled"}
    assert not shared.exists()


def test_auto_skips_a_candidate_that_fails_when_it_runs(model_dir, monkeypatch, tmp_path):
    from rerankit.engine import auto
    from rerankit.rerankers import cross_encoder

    monkeypatch.delenv("RERANKIT_BACKEND", raising=False)
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(auto, "candidate_order", lambda: ["onnx-fp32", "torch-fp32"])
    real = cross_encoder.make_runner

    class Broken:
        name = "onnx-fp32"

        def __call__(self, batch):
            raise RuntimeError("could not create a primitive descriptor")  # as a kernel missing on this CPU

    monkeypatch.setattr(cross_encoder, "make_runner",
                        lambda info, backend, *a, **k: Broken() if backend == "onnx-fp32" else real(info, backend, *a, **k))
    engine = CrossEncoderReranker(model_dir, backend="auto")
    assert engine.backend == "torch-fp32" and engine.auto_report["tried"]["onnx-fp32"].startswith("failed: RuntimeError")


def test_an_openvino_runner_that_cannot_run_here_is_an_unavailable_backend(model_dir, monkeypatch):
    from rerankit.engine import openvino_backend
    from rerankit.errors import BackendUnavailableError

    if not openvino_backend.openvino_available():
        pytest.skip("openvino is not installed")

    def no_kernel(self, batch):
        raise RuntimeError("[CPU] FullyConnectedCompressed node could not create a primitive descriptor")

    monkeypatch.setattr(openvino_backend.OpenVinoRunner, "__call__", no_kernel)
    with pytest.raises(BackendUnavailableError, match="does not run on this CPU"):
        CrossEncoderReranker(model_dir, backend="openvino-fp32")


@pytest.mark.parametrize("backend", [b for b in ("openvino-fp32", "openvino-bf16") if b in available_backends()])
def test_openvino_streams_score_as_one_batch_at_a_time(model_dir, backend):
    engine = reranker_or_skip(model_dir, backend, activation="none", num_threads=2, token_budget=64)
    assert engine.runner.model.streams == 2
    docs = DOCS * 6  # many small batches, spread over both streams
    together = engine.score(QUERIES[0], docs)
    engine.runner.model.streams = 1  # the same compiled model, one batch after another
    np.testing.assert_array_equal(together, engine.score(QUERIES[0], docs))
    np.testing.assert_array_equal(together[: len(DOCS)], together[len(DOCS): 2 * len(DOCS)])  # each row its own


def test_a_failing_batch_on_the_streams_raises_and_the_model_runs_again(model_dir):
    engine = reranker_or_skip(model_dir, "openvino-fp32", activation="none", num_threads=2, token_budget=64)
    model = engine.runner.model
    assert model.streams == 2
    good = {i: np.ones((2, 8), dtype=np.int64) for i in range(len(engine.runner.inputs))}
    bad = {i: np.ones((2, 8, 3), dtype=np.int64) for i in range(len(engine.runner.inputs))}  # rank 3: refused

    def jobs(failure):
        for key in range(6):
            yield [2 * key, 2 * key + 1], good
            if key == 3:
                if failure == "feed":
                    yield [12, 13], bad
                else:
                    raise ValueError("a batch could not be built")

    outputs = np.zeros((14, engine.info.num_outputs), dtype=np.float32)
    with pytest.raises(ValueError, match="could not be built"):
        model.run_batches(jobs("collate"), outputs)
    with pytest.raises(Exception):  # noqa: B017 - OpenVINO's own error type for a wrong input rank
        model.run_batches(jobs("feed"), outputs)
    expected = engine.score(QUERIES[0], DOCS)  # nothing left locked or half-run
    np.testing.assert_array_equal(expected, engine.score(QUERIES[0], DOCS))

