"""Ablation of the default model's training ideas: DL21 (development) and DL19 (report) nDCG@10, kept or dropped.

The default's cross-encoder is ``recipes/default-cross-encoder.json`` (SQuAD/WikiQA/SciFact groups, a
residual over the all-MiniLM-L6-v2 cosine); ``experiments/distill-mpnet.json`` is a second stage tried on top
of it (distillation from all-mpnet-base-v2 on unlabelled MS MARCO dev queries). ``recipes/default.json``
(the shipped default) adds a lexical score to that cross-encoder's fusion; ``experiments/distill-bi-encoder.json``
also swaps in a bi-encoder distilled from all-mpnet-base-v2, trained on the DL21 passages of query half 1,
so its rows are judged on half 0 (the held-out half, column "DL21 half 0"), and so is the row they change. Each first-stage idea is
one change to the default recipe, trained for the same short CPU budget
(``--minutes``) so that the rows compare ideas, not training time, then fused with the bi-encoder
by the recipe (weights fitted on DL21). The ``teacher`` row runs the second stage from the
``stage1`` row's model. Rows without training (BM25, the bi-encoders, the shipped model alone and fused) are
measured the same way. The verdict reads DL21 only: an idea is kept when its DL21 nDCG@10 beats
the row it changes by more than ``--margin``; DL19 is printed beside it and decides nothing.
Results are cached per row in ``--work`` (a stopped run resumes; a trained row's model folder in
``--work`` is reused), and the table is written to ``benchmarks/quality.md``. The rows train through
``experiments/run_experiment.py`` (the package's ``run_recipe`` plus the stages tried and not shipped:
``experiments/``). Run from the repository root, nothing else busy:

    .venv/bin/python benchmarks/quality_ablation.py [--minutes 8] [--rows listwise,residual,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rerankit import load_reranker
from rerankit.evaluation import evaluate_folder
from rerankit.io import atomic_write_json, atomic_write_text
from rerankit.rerankers.registry import default_model_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))  # the stages tried and not shipped (not part of the package)

from bi_encoder_distill import query_half  # noqa: E402
from run_experiment import run_experiment  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DEV, REPORT = "trec-dl21-passage", "trec-dl19-passage"
RUN = "runs/bm25.top100.trec"


@dataclass
class Row:
    """One line of the table: a reranker spec to measure, or recipe changes to train first."""

    name: str
    idea: str
    baseline: str | None = None  # the row this one changes (the verdict compares DL21 with it)
    spec: str | None = None  # measure this reranker as it is ...
    ce_alone: bool = False  # ... (a model folder: its cross-encoder without the fusion)
    recipe: dict = field(default_factory=dict)  # ... or train ``recipe_file`` with these changes
    train_overrides: dict = field(default_factory=dict)
    recipe_file: str = "default-cross-encoder.json"  # in recipes/ (shipped) or experiments/
    dev_half: int | None = None  # the verdict reads DL21's query half (its other half was trained on)
    start_row: str | None = None  # train on from this row's model (its recipe's ``start_model``)
    trained: bool = False  # train ``recipe_file`` as it is
    long_of: tuple[str, ...] = ()  # take the training changes of whichever of these rows is best on DL21
    note: str = ""  # said after the verdict, where what was done differs from what the rule alone says


# the third stage tried: k-fold fine-tuning on DL21's own judgments (no other training source; the
# fine-tuning stage never distils, whatever the recipe's "train" says)
DL21_FINETUNE = {"sources": None, "finetune": {
    "collection": "trec-dl21-passage", "folds": 3, "depth": 100,
    "train": {"max_steps": 150, "eval_every": 50, "learning_rate": 2e-05, "head_learning_rate": 2e-05,
              "max_minutes": None}}}


def rows(minutes: float, long_minutes: float) -> list[Row]:
    budget = {"max_minutes": minutes, "eval_every": 100}
    shipped = str(default_model_path())
    return [
        Row("bm25", "BM25 top 100, no reranking", spec=None),
        Row("bi-encoder", "all-MiniLM-L6-v2 cosine reranks the BM25 top 100", spec="bi-encoder"),
        Row("teacher-bi-encoder", "all-mpnet-base-v2 cosine (the second stage's teacher; 110M parameters, not the "
            "default's speed class)", spec="bi-encoder:all-mpnet-base-v2"),
        Row("stage1", "the default's recipe (recipes/default-cross-encoder.json, 52 minutes; the shipped cross-encoder)", "bi-encoder",
            trained=True, note="the default since before this table; nothing here beat it cleanly"),
        Row("listwise", "plain listwise cross-encoder (no bi-encoder prior), then fused", "bi-encoder",
            train_overrides={**budget, "bi_encoder_prior": 0.0}),
        Row("residual", "cross-encoder trained as a residual over the bi-encoder's cosine (prior 20)", "listwise",
            train_overrides={**budget, "bi_encoder_prior": 20.0}),
        Row("listwise+distill", "listwise + KL distillation to the bi-encoder's softmax over each group "
            "(weight 1, T 0.05)", "listwise",
            train_overrides={**budget, "bi_encoder_prior": 0.0, "distill_weight": 1.0}),
        Row("long", f"the one of listwise and listwise+distill whose cross-encoder alone is better on DL21, trained {long_minutes:g} minutes "
            "(a candidate default)", "stage1", long_of=("listwise", "listwise+distill"),
            train_overrides={"max_minutes": long_minutes, "eval_every": 250, "epochs": 1.0}),
        Row("teacher", "second stage (experiments/distill-mpnet.json) from the stage1 row: residual over the "
            "all-MiniLM-L6-v2 cosine, KL to all-mpnet-base-v2's softmax on 4,000 unlabelled MS MARCO dev queries "
            "(pools: BM25 over the DL21 passage pool, so DL21's candidate texts were trained on: its DL21 figure "
            "is optimistic), 40 minutes", "stage1", recipe_file="distill-mpnet.json", start_row="stage1",
            note="not shipped: the development figure is not clean (its pools are DL21's own passages)"),
        Row("dl21-finetune", "third stage from the teacher row: 3-fold fine-tuning on DL21's graded judgments, "
            "step count and fusion chosen on held-out folds (its DL21 figure is the out-of-fold fusion)",
            "teacher", recipe=DL21_FINETUNE, recipe_file="distill-mpnet.json", start_row="teacher"),
        Row("large", "the shipped cross-encoder fused with the all-mpnet-base-v2 cosine instead of "
            "all-MiniLM-L6-v2's (fusion refitted on DL21; no training; a candidate `default-large`)",
            "teacher-bi-encoder", recipe={"sources": None}, start_row="stage1",
            train_overrides={"bi_encoder": "all-mpnet-base-v2"}),
        Row("shipped-ce-alone", "the shipped cross-encoder alone (no fusion)", spec=shipped, ce_alone=True),
        Row("lexical", "the stage1 row fused with BM25 whose document frequencies come from the DL21 passage pool "
            "(rerankit.lexical; fusion refitted on DL21; no training)", "stage1",
            recipe={"sources": None, "lexical": {"corpus": "trec-dl21-passage/corpus.jsonl"}}, start_row="stage1"),
        Row("distilled-bi-encoder", "all-MiniLM-L6-v2 distilled from all-mpnet-base-v2's embeddings of 12,342 MS MARCO "
            "dev queries and DL21 passages (the distilled row's second stage, 45 minutes; best DL21 half-0 checkpoint "
            "at step 1,200 of 1,610), its cosine alone", "bi-encoder",
            spec=f"bi-encoder:{ROOT / '.bench' / 'ablation' / 'distilled' / 'bi_encoder'}", dev_half=0),
        Row("distilled", "experiments/distill-bi-encoder.json from the stage1 row: the lexical row with the distilled "
            "bi-encoder instead of all-MiniLM-L6-v2 (fusion on DL21 half 0; one 45 MB weights file for both models)",
            "lexical", recipe_file="distill-bi-encoder.json", start_row="stage1", trained=True, dev_half=0,
            note="not shipped: its DL19 figure is below the lexical row's (no gain outside the development set "
            "for a new 45 MB weights file)"),
        Row("shipped", "the shipped default (recipes/default.json = the lexical row)", "stage1", spec="default"),
        Row("default-large", "`default-large` (recipes/default-large.json): the stage1 cross-encoder fused with the "
            "all-mpnet-base-v2 cosine and the lexical score (fusion fitted on DL21; no training)", "teacher-bi-encoder",
            spec="default-large"),
    ]


def measure(spec: str | None, data: Path, ce_alone: bool = False) -> dict[str, float]:
    """nDCG@10 of ``spec`` (None: BM25 as it is; ``ce_alone``: the folder's cross-encoder only) over
    the BM25 top 100 of DL21 and DL19."""
    reranker = None
    if spec is not None and ce_alone:
        from rerankit.rerankers.cross_encoder import CrossEncoderReranker

        reranker = CrossEncoderReranker(spec, activation="none")
    elif spec is not None:
        reranker = load_reranker(spec)
    out = {}
    for key, collection in (("dl21", DEV), ("dl19", REPORT)):
        report = evaluate_folder(data / collection, run=RUN, rerank=reranker, depth=100, progress=False)
        out[key] = (report.after if reranker is not None else report.before)["nDCG@10"]
        if key == "dl21":
            per_query = report.per_query_ndcg10_after if reranker is not None else report.per_query_ndcg10_before
            half = [v for q, v in (per_query or {}).items() if query_half(q) == 0]
            out["dl21_h0"] = sum(half) / len(half)
    folder = default_model_path() if spec == "default" else Path(spec) if spec else None
    summary = folder / "recipe_summary.json" if folder is not None and not ce_alone else None
    if summary is not None and summary.exists():
        fitted = json.loads(summary.read_text())
        if fitted.get("finetune_collection") == DEV and fitted.get("finetune_best_step"):
            # trained on DL21's judgments: its DL21 figure is the out-of-fold fusion, not a re-evaluation
            out["dl21"], out["dl21_note"] = fitted["dev_ndcg10_fused"], "out-of-fold"
    return out


def train(row: Row, data: Path, work: Path) -> Path:
    """Train ``row``'s recipe into ``work/row.name`` (reused when already there)."""
    model = work / row.name
    if (model / "recipe_summary.json").exists():
        return model
    shipped = ROOT / "recipes" / row.recipe_file
    recipe = json.loads((shipped if shipped.is_file() else ROOT / "experiments" / row.recipe_file).read_text())
    recipe.update(row.recipe)
    recipe["train"] = {**recipe["train"], **row.train_overrides}
    recipe["data_root"] = str(data)
    if row.start_row:
        start = next((r for r in rows(0, 0) if r.name == row.start_row), Row(row.start_row, "", trained=True))
        recipe["start_model"] = str(train(start, data, work))
    recipe_path = work / f"{row.name}.recipe.json"
    atomic_write_json(recipe_path, recipe)
    run_experiment(recipe_path, model, data, progress=False)
    return model


def render(results: dict[str, dict], table_rows: list[Row], minutes: float, margin: float) -> str:
    lines = [
        "# Quality ablation of the default model",
        "",
        "Produced by `benchmarks/quality_ablation.py` (nothing here is typed by hand). nDCG@10 over the",
        "BM25 top 100 (`runs/bm25.top100.trec`, `qrels/test-full.tsv`). DL21 is the development set:",
        "fusion weights, early stopping and the verdict use it. DL19 is reported and decides nothing, with one",
        "exception stated where it applies: a new weights file is committed only when its model also beats the shipped",
        "one outside the development set (the distilled row was kept on DL21 and not shipped for its DL19 figure).",
        "Rows whose training read DL21 passages of query half 1 (their judgments never) are judged on half 0",
        "(`query_half` of experiments/bi_encoder_distill.py, 30 of the 53 queries), and so is the row they change.",
        f"The first-stage idea rows use the same CPU budget ({minutes:g} minutes of training each, this machine) on",
        "the default recipe's SQuAD/WikiQA/SciFact groups, so they compare ideas at equal cost; the shipped model",
        "(stage1 row) had 52 minutes, and the second stage (teacher row) 40 more. The cross-encoder-alone column is the recipe's fusion table at weight ratio 0 (fp32, "
        "DL21 top 100). An idea is kept when its DL21 figure beats the row it changes by more than "
        f"{margin:g}.",
        "",
        "| row | idea | DL21 nDCG@10 (dev) | DL21 half 0 (dev) | DL21, cross-encoder alone | DL19 nDCG@10 (report) "
        "| changes | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table_rows:
        got = results.get(row.name)
        if got is None:
            continue
        verdict = "reference"
        base = results.get(row.baseline) if row.baseline else None
        key = "dl21_h0" if row.dev_half is not None else "dl21"
        if base is not None and key in base:
            delta = got[key] - base[key]
            where = "DL21 half 0" if row.dev_half is not None else "DL21"
            verdict = f"{'kept' if delta > margin else 'dropped'} ({delta:+.4f} on {where})"
        if row.note:
            verdict += f"; {row.note}"
        idea = row.idea + (f": {got['from']}" if got.get("from") else "")
        alone = f"{got['ce_dl21']:.4f}" if "ce_dl21" in got else ""
        dev = f"{got['dl21']:.4f}" + (f" ({got['dl21_note']})" if got.get("dl21_note") else "")
        if row.dev_half is not None:
            dev += " (half 1 trained on)"
        half = f"{got['dl21_h0']:.4f}" if "dl21_h0" in got else ""
        lines.append(f"| {row.name} | {idea} | {dev} | {half} | {alone} | {got['dl19']:.4f} | "
                     f"{row.baseline or ''} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget of each trained row")
    parser.add_argument("--long-minutes", type=float, default=55.0, help="training budget of the long row")
    parser.add_argument("--margin", type=float, default=0.005)
    parser.add_argument("--rows", help="comma-separated row names (default: all)")
    parser.add_argument("--redo", default="", help="comma-separated rows to measure again (a trained row's model is reused)")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "ablation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "quality.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not (args.data / REPORT).is_dir():
        raise SystemExit(f"{args.data} has no {REPORT}: this benchmark needs ../shared/data")
    table_rows = rows(args.minutes, args.long_minutes)
    wanted = set(args.rows.split(",")) if args.rows else {r.name for r in table_rows}
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "results.json"
    results: dict[str, dict] = json.loads(cache.read_text()) if cache.exists() else {}
    for name in filter(None, args.redo.split(",")):
        results.pop(name, None)
    for name, got in results.items():  # rows cached before the cross-encoder-alone column existed
        summary_path = args.work / name / "recipe_summary.json"
        if "ce_dl21" not in got and summary_path.exists():
            got["ce_dl21"] = json.loads(summary_path.read_text())["dev_ndcg10_by_ratio"]["0.0"]
    for row in table_rows:
        if row.name not in wanted or row.name in results:
            continue
        started = time.perf_counter()
        spec = row.spec
        if row.long_of:
            if any(name not in results for name in row.long_of):
                print(f"{row.name}: skipped, it needs the rows {', '.join(row.long_of)} first")
                continue
            best = max(row.long_of, key=lambda name: results[name].get("ce_dl21", 0.0))
            changes = next(r for r in table_rows if r.name == best).train_overrides
            row.train_overrides = {**changes, **row.train_overrides}
            results_note = {"from": best}
        else:
            results_note = {}
        if spec is None and (row.trained or row.recipe or row.train_overrides):
            spec = str(train(row, args.data, args.work))
            summary = json.loads((Path(spec) / "recipe_summary.json").read_text())
            results_note["ce_dl21"] = summary["dev_ndcg10_by_ratio"]["0.0"]  # the cross-encoder alone
        results[row.name] = {**measure(spec, args.data, row.ce_alone), **results_note,
                             "minutes": round((time.perf_counter() - started) / 60, 1)}
        print(f"{row.name}: DL21 {results[row.name]['dl21']:.4f}  DL19 {results[row.name]['dl19']:.4f}", flush=True)
        atomic_write_json(cache, results)
        atomic_write_text(args.out, render(results, table_rows, args.minutes, args.margin))
    atomic_write_text(args.out, render(results, table_rows, args.minutes, args.margin))
    print(render(results, table_rows, args.minutes, args.margin))


if __name__ == "__main__":
    main()
