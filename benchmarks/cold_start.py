"""Cold start: wall time of a new process that loads ``default``, and of ``rerankit search --rerank default``.

Builds (once) a 5,000-passage index (BM25 + all-MiniLM-L6-v2 embeddings) from the first passages of a
BEIR ``corpus.jsonl`` (DL19's by default) in a temporary folder, with a fresh rerankit cache, then
runs, each in a new process and twice in a row (the first run fills the export cache and ``auto``'s
verdict; the second is what a user sees from then on):

- ``python -c "import rerankit; rerankit.load_reranker('default')"`` (also the time to import rerankit),
- ``rerankit search INDEX QUERY --rerank default`` (hybrid first stage, 20 candidates reranked).

Run from the repository root, with nothing else busy on the machine (``RERANKIT_NATIVE=0`` in
front measures a plain install where ``rerankit-amx`` is installed):

    .venv/bin/python benchmarks/cold_start.py [--corpus ../shared/data/trec-dl19-passage/corpus.jsonl] [--runs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl19-passage" / "corpus.jsonl"
LOAD = ("import time; start = time.perf_counter(); import rerankit; imported = time.perf_counter(); "
        "r = rerankit.load_reranker('default'); "
        "print(f'import {imported - start:.2f} s, load {time.perf_counter() - imported:.2f} s, "
        "backend {r.cross_encoder.backend}')")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA)
    parser.add_argument("--passages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--query", default="how do vaccines train the immune system")
    args = parser.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"{args.corpus} not found: this benchmark needs a BEIR corpus.jsonl (../shared/data)")
    cli = str(Path(sys.executable).with_name("rerankit"))
    with tempfile.TemporaryDirectory(prefix="rerankit-cold-") as tmp:
        env = {**os.environ, "RERANKIT_CACHE": str(Path(tmp) / "cache"), "HF_HUB_OFFLINE": "1"}
        corpus = Path(tmp) / "corpus.jsonl"
        with args.corpus.open(encoding="utf-8") as source, corpus.open("w", encoding="utf-8") as out:
            out.writelines(itertools.islice(source, args.passages))
        index = Path(tmp) / "index"
        wall, _ = timed([cli, "index", "build", str(corpus), "--out", str(index)], env)
        print(f"index of {args.passages} passages built in {wall:.1f} s")
        for run in range(1, args.runs + 1):
            wall, said = timed([sys.executable, "-c", LOAD], env)
            print(f"load_reranker('default') in a new process, run {run}: {wall:.2f} s wall ({said})")
        for run in range(1, args.runs + 1):
            wall, _ = timed([cli, "search", str(index), args.query, "--rerank", "default", "--json"], env)
            print(f"rerankit search --rerank default, run {run}: {wall:.2f} s wall")
        verdicts = list((Path(tmp) / "cache" / "auto").glob("*.json"))
        if verdicts:
            print("auto verdict:", json.loads(verdicts[0].read_text()))


if __name__ == "__main__":
    main()
