"""Two rerankers on the same judged collections: nDCG@10 of each over the same BM25 top 100, the
difference, and a paired t-test over the queries (is the difference more than noise?).

Used to check that a retrained model reproduces the shipped one, e.g. after
``rerankit train --recipe recipes/default.json --out /tmp/default``:

    .venv/bin/python benchmarks/compare_models.py default /tmp/default \\
        --collections trec-dl21-passage,trec-dl19-passage

Each collection's first stage is its ``runs/bm25.top100.trec``. DL21 is the development set (the recipe
tunes on it); DL19 is for reporting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rerankit.evaluation import evaluate_folder
from rerankit.evaluation.significance import paired_test
from rerankit.io import atomic_write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="reranker spec or model folder (e.g. default)")
    parser.add_argument("b", help="reranker spec or model folder to compare with it")
    parser.add_argument("--collections", default="trec-dl21-passage,trec-dl19-passage")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    rows = []
    print("| collection | queries | nDCG@10 A | nDCG@10 B | B − A | paired t-test p | B wins / losses / ties |")
    print("|---|---|---|---|---|---|---|")
    for name in args.collections.split(","):
        folder = args.data / name
        reports = [evaluate_folder(folder, run="runs/bm25.top100.trec", rerank=spec, progress=False)
                   for spec in (args.a, args.b)]
        a, b = (r.per_query_ndcg10_after for r in reports)
        test = paired_test(a, b, metric="nDCG@10")
        row = {"collection": name, "queries": test.n, "a": test.mean_a, "b": test.mean_b,
               "delta": test.mean_delta, "p_value": test.p_value, "wins": test.wins, "losses": test.losses,
               "ties": test.ties}
        rows.append(row)
        p = "-" if test.p_value is None else f"{test.p_value:.3f}"
        print(f"| {name} | {test.n} | {test.mean_a:.4f} | {test.mean_b:.4f} | {test.mean_delta:+.4f} | {p} "
              f"| {test.wins} / {test.losses} / {test.ties} |", flush=True)
    if args.out:
        atomic_write_json(args.out, {"a": args.a, "b": args.b, "rows": rows})
        print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
