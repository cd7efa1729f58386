"""``rerankit rerank-run`` / ``batch_rerank``: shards, the same run in process and on Ray, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import rerankit
from rerankit.batch_rerank import rerank_run_file
from rerankit.datasets import format_trec_run, read_trec_run, write_trec_run
from rerankit.errors import DataFormatError, InvalidInputError
from rerankit.evaluation.rerank_run import rerank_run
from rerankit.rerankers.base import Reranker
from rerankit.types import Document

WORDS = "password reset account email invoice billing login security token device phone backup".split()


def _collection(folder: Path, queries: int = 12, docs: int = 40, candidates: int = 15) -> Path:
    """A small BEIR folder with a run file whose scores leave ties (first-stage order by doc id)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choice(WORDS, size=int(rng.integers(3, 30))))}
              for i in range(docs)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": " ".join(rng.choice(WORDS, size=3))}) + "\n" for i in range(queries)))
    run = {f"q{i}": {f"d{j}": float(round(rng.random(), 1)) for j in rng.choice(docs, size=candidates, replace=False)}
           for i in range(queries)}
    write_trec_run(folder / "run.trec", run, tag="bm25")
    return folder


class OverlapReranker(Reranker):
    """Deterministic: query words found in the text, ties everywhere."""

    score_kind = "similarity"
    name = "overlap"

    def __init__(self) -> None:
        self.calls = 0

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        self.calls += 1
        words = set(query.split())
        return np.array([sum(w in words for w in d.full_text.split()) for d in documents], dtype=np.float32)


def test_trec_runs_round_trip_exactly(tmp_path):
    run = {"q1": {"a": 0.1 + 0.2, "b": float(np.float32(1 / 3)), "c": -2.5}, "q2": {"x": 1e-30}}
    write_trec_run(tmp_path / "r.trec", run)
    assert read_trec_run(tmp_path / "r.trec") == run
    assert format_trec_run(run).splitlines()[0] == f"q1 Q0 b 1 {float(np.float32(1 / 3))!r} rerankit"
    with pytest.raises(InvalidInputError):
        format_trec_run(run, tag="two words")


def test_in_process_equals_the_evaluation_reranking(tmp_path):
    data = _collection(tmp_path / "c")
    rerankit.register("overlap", lambda arg, **_: OverlapReranker())
    result = rerank_run_file("run.trec", data, "overlap:", tmp_path / "out.trec", depth=10, batch_queries=5)
    assert (result.queries, result.shards, result.shards_done_before, result.shards_run) == (12, 3, 0, 3)
    from rerankit.datasets import read_corpus_jsonl, read_queries_jsonl

    expected = rerank_run(read_trec_run(data / "run.trec"), read_queries_jsonl(data / "queries.jsonl"),
                          {d.id: d for d in read_corpus_jsonl(data / "corpus.jsonl")}, OverlapReranker(), depth=10,
                          progress=False)
    got = read_trec_run(tmp_path / "out.trec")
    assert got == dict(expected)
    assert [list(got[q]) for q in sorted(got)] == [list(expected[q]) for q in sorted(expected)]
    assert not (tmp_path / "out.trec.parts").exists()  # the parts are removed once joined


def test_a_rerun_does_only_the_missing_shards(tmp_path):
    data = _collection(tmp_path / "c")
    first = OverlapReranker()

    class FailsOnThirdShard(OverlapReranker):
        def score_many(self, queries, candidate_lists):
            if self.calls >= 2 * 4:  # two shards of 4 queries scored, then a crash
                raise RuntimeError("worker lost")
            return super().score_many(queries, candidate_lists)

    rerankit.register("flaky", lambda arg, **_: FailsOnThirdShard())
    rerankit.register("overlap", lambda arg, **_: first)
    with pytest.raises(RuntimeError, match="worker lost"):
        rerank_run_file(data / "run.trec", data, "flaky:", tmp_path / "out.trec", batch_queries=4)
    parts = sorted(p.name for p in (tmp_path / "out.trec.parts").iterdir())
    assert parts == ["job.json", "shard-00000.trec", "shard-00001.trec"] and not (tmp_path / "out.trec").exists()
    # the same job (same inputs, spec, depth, shard size) resumes; "flaky:" names another job, so keep its spec
    rerankit.register("flaky", lambda arg, **_: first)
    result = rerank_run_file(data / "run.trec", data, "flaky:", tmp_path / "out.trec", batch_queries=4)
    assert (result.shards, result.shards_done_before, result.shards_run) == (3, 2, 1)
    assert first.calls == 4  # only the third shard's 4 queries were scored
    fresh = rerank_run_file(data / "run.trec", data, "overlap:", tmp_path / "fresh.trec", batch_queries=4)
    assert fresh.shards_done_before == 0
    assert (tmp_path / "out.trec").read_text() == (tmp_path / "fresh.trec").read_text()


def test_another_job_in_the_same_place_starts_over(tmp_path):
    data = _collection(tmp_path / "c")
    rerankit.register("overlap", lambda arg, **_: OverlapReranker())
    parts = tmp_path / "out.trec.parts"
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps({"format": "other"}))
    (parts / "shard-00000.trec").write_text("stale")
    result = rerank_run_file(data / "run.trec", data, "overlap:", tmp_path / "out.trec", batch_queries=4)
    assert result.shards_done_before == 0 and "stale" not in (tmp_path / "out.trec").read_text()


def test_bad_input_is_a_clear_error(tmp_path):
    data = _collection(tmp_path / "c")
    with pytest.raises(InvalidInputError):
        rerank_run_file(data / "run.trec", data, "overlap:", tmp_path / "o.trec", workers=0)
    with pytest.raises(InvalidInputError):
        rerank_run_file(data / "run.trec", data, "overlap:", tmp_path / "o.trec", batch_queries=True)
    with pytest.raises(InvalidInputError):
        rerank_run_file(data / "run.trec", data, "overlap:", tmp_path)  # a folder as --out
    with pytest.raises(DataFormatError):
        rerank_run_file("no-such.trec", data, "overlap:", tmp_path / "o.trec")
    (data / "extra.trec").write_text("q999 Q0 d1 1 1.0 x\n")
    with pytest.raises(DataFormatError, match="no text"):
        rerank_run_file(data / "extra.trec", data, "overlap:", tmp_path / "o.trec")
    (data / "unknown-doc.trec").write_text("q1 Q0 nope 1 1.0 x\n")
    with pytest.raises(DataFormatError, match="nope"):
        rerank_run_file(data / "unknown-doc.trec", data, "overlap:", tmp_path / "o.trec")


SLOW_CLI = """
import sys, time
import numpy as np
import rerankit
from rerankit.rerankers.base import Reranker
from rerankit.cli import main


class Slow(Reranker):
    score_kind = "similarity"
    name = "slow"

    def _score(self, query, documents):
        time.sleep(0.2)
        words = set(query.split())
        return np.array([sum(w in words for w in d.full_text.split()) for d in documents], dtype=np.float32)


rerankit.register("slow", lambda arg, **_: Slow())
main(sys.argv[1:])
"""


def test_kill_minus_nine_then_resume_through_the_cli(tmp_path):
    data = _collection(tmp_path / "c", queries=16)
    out = tmp_path / "out.trec"
    script = tmp_path / "cli.py"
    script.write_text(SLOW_CLI)
    command = [sys.executable, str(script), "rerank-run", "run.trec", "--collection", str(data), "--rerank", "slow:",
               "--out", str(out), "--batch-queries", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "out.trec.parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(parts.glob("shard-*.trec"))) < 3:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail(f"the job ended before it could be killed: {proc.communicate()[1][-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("shard-*.trec")))
    assert 3 <= done < 16 and not out.exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"16 queries in 16 shards: {done} done earlier, {16 - done} reranked now (this process)" in again.stderr
    assert len(read_trec_run(out)) == 16 and not parts.exists()
    fresh = subprocess.run([*command[:-4], "--out", str(tmp_path / "fresh.trec"), "--batch-queries", "1"],
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert out.read_text() == (tmp_path / "fresh.trec").read_text()


ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rerankit[ray]')")


def test_ray_actor_pool_gives_the_in_process_run(tmp_path, tiny_cross_encoder_dir, monkeypatch):
    monkeypatch.setenv("RERANKIT_BACKEND", "torch-fp32")  # the Ray workers inherit it
    data = _collection(tmp_path / "c")
    spec = str(tiny_cross_encoder_dir)
    local = rerank_run_file(data / "run.trec", data, spec, tmp_path / "local.trec", batch_queries=3)
    on_ray = rerank_run_file(data / "run.trec", data, spec, tmp_path / "ray.trec", batch_queries=3,
                             ray_address="local", workers=2)
    assert (on_ray.ray, on_ray.workers, on_ray.shards_run) == (True, 2, 4) and not local.ray
    assert (tmp_path / "ray.trec").read_text() == (tmp_path / "local.trec").read_text()
