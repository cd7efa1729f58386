"""Bi-encoder embedding speed: rerankit's ``embed`` against sentence-transformers.

``embed`` runs OpenVINO (bf16 on CPUs with bf16 units, fp32 on others), or the fused bf16 layers
where the AMX kernels are installed (the path taken is printed). Embeds the same DL19 passages with ``SentenceTransformer.encode`` in fp32
(the reference), under bf16 autocast (only where the CPU has bf16 units: elsewhere it is emulated
and slower than fp32), and through ``rerankit.encoders.embed``, alternating the order over ``--rounds``, in
one process; prints passages/s, the ratio to the reference and the lowest per-passage cosine with
the reference embeddings. Run from the repository root, nothing else busy:

    .venv/bin/python benchmarks/embed_speed.py [--model all-mpnet-base-v2] [--passages 300] [--rounds 2]
"""

from __future__ import annotations

import os

os.environ["RERANKIT_EMBED_CACHE"] = "0"  # every round embeds for real

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rerankit.datasets import read_corpus_jsonl  # noqa: E402
from rerankit.encoders import embed, embedding_path, load_bi_encoder  # noqa: E402
from rerankit.engine.hardware import has_bf16_units  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-mpnet-base-v2")
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    corpus = args.data / "trec-dl19-passage" / "corpus.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"{corpus} not found: this benchmark needs ../shared/data")
    texts = [d.full_text for d in read_corpus_jsonl(corpus)[: args.passages]]
    model = load_bi_encoder(args.model)

    def reference(bf16: bool) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)

    paths = {"sentence-transformers fp32": lambda: reference(False)}
    if has_bf16_units():
        paths["sentence-transformers bf16 autocast"] = lambda: reference(True)
    paths["rerankit embed"] = lambda: embed(texts, args.model)
    embed(texts[:8], args.model)  # load and warm up the fast path (an OpenVINO conversion happens here, once)
    taken = embedding_path(args.model)
    rates: dict[str, list[float]] = {name: [] for name in paths}
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for name in order:
            started = time.perf_counter()
            vectors[name] = paths[name]()
            rates[name].append(len(texts) / (time.perf_counter() - started))
    base = statistics.median(rates["sentence-transformers fp32"])
    print(f"{args.model}, {len(texts)} DL19 passages, {torch.get_num_threads()} threads, {args.rounds} rounds; "
          f"rerankit embed ran {taken}")
    for name, got in rates.items():
        cosine = float((vectors[name] * vectors["sentence-transformers fp32"]).sum(1).min())
        print(f"{name:38s} {statistics.median(got):7.1f} passages/s  {statistics.median(got) / base:5.2f}x  "
              f"min cosine to fp32 {cosine:.4f}")


if __name__ == "__main__":
    main()
