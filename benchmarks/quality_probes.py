"""Score-level probes on the shipped default: features added to its fusion without training, DL21 and DL19.

Each probe adds one score to the default's fused logit ``a * ce + b * cos + d * lexical`` and picks its
settings by nDCG@10 on DL21 (the development set); DL19 is then measured once, at the DL21 choice.
The verdict reads DL21 (kept when it gains more than ``--margin``); the last column says whether DL19
agreed. Probes:

- ``feedback``: pseudo-relevance feedback in embedding space: each candidate's mean cosine to the
  candidates weighted by ``softmax(z / T)`` of the default's own logit ``z`` (Rocchio on the
  all-MiniLM-L6-v2 vectors), added with weight ``w * b``;
- ``feedback-no-twins``: the same with near-duplicate neighbours (cosine > 0.95) left out, which
  separates what the feedback learns from what it copies from a passage's twins (MS MARCO v2,
  DL21's corpus, holds many);
- ``maxsim``: ColBERT-style MaxSim of all-MiniLM-L6-v2's token states (mean over the query's tokens
  of the best cosine to a passage token; no training), with the lexical share chosen again beside it;
- ``maxsim-pairwise``: weights for (MaxSim, lexical) fitted by a pairwise logistic loss on DL21's
  graded judgments instead of the nDCG grid (the feature set chosen by 5-fold cross-validation).

Candidate features are cached in ``--work``. Run from the repository root, nothing else busy:

    .venv/bin/python benchmarks/quality_probes.py
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rerankit.encoders import embed, load_bi_encoder
from rerankit.io import atomic_write_bytes, atomic_write_text
from rerankit.rerankers.fused import FusedReranker
from rerankit.rerankers.registry import default_model_path
from rerankit.training.fusion import LEXICAL_SHARES, DevPairs, ndcg10
from rerankit.training.recipe import TrecDevSet
from rerankit.types import Document

ROOT = Path(__file__).resolve().parents[1]
DEV, REPORT = "trec-dl21-passage", "trec-dl19-passage"
TEMPERATURES = (0.25, 0.5, 1.0)
FEEDBACK_WEIGHTS = (0.5, 1.0, 2.0, 3.0, 4.0)
MAXSIM_SHARES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
TWIN = 0.95


def maxsim(query_states: np.ndarray, passage_states: list[np.ndarray]) -> np.ndarray:
    """Mean over query tokens of the best cosine to any passage token ([CLS]/[SEP] already dropped)."""
    return np.array([float((query_states @ p.T).max(1).mean()) for p in passage_states], dtype=np.float32)


def features(folder: Path, model: FusedReranker) -> dict:
    """Per query: the default's three scores, the candidates' vectors and the MaxSim score."""
    import torch

    dev = TrecDevSet(folder, depth=100)
    encoder = load_bi_encoder(model.weights.bi_encoder)
    rows = []
    for query, texts in zip(dev.queries, dev.texts):
        ce, cos, lexical = model.components(query, [Document(t) for t in texts])
        states = encoder.encode([query, *texts], output_value="token_embeddings", batch_size=32)
        states = [torch.nn.functional.normalize(s.float()[1:-1], dim=-1).numpy() for s in states]
        rows.append({"ce": ce, "cos": cos, "lexical": lexical, "vectors": embed(texts, model.weights.bi_encoder),
                     "maxsim": maxsim(states[0], states[1:])})
    return {"qids": dev.qids, "doc_ids": dev.doc_ids, "qrels": dev.qrels, "rows": rows}


def ndcg(data: dict, scores: list[np.ndarray], keep: list[int] | None = None) -> float:
    keep = list(range(len(scores))) if keep is None else keep
    qids, ids, chosen = [data["qids"][i] for i in keep], [data["doc_ids"][i] for i in keep], [scores[i] for i in keep]
    return ndcg10(DevPairs(qids, ids, chosen, chosen), chosen, data["qrels"])


def feedback(row: dict, z: np.ndarray, temperature: float, drop_twins: bool) -> np.ndarray:
    """Each candidate's cosine to the others, weighted by ``softmax(z / temperature)``."""
    similarities = row["vectors"] @ row["vectors"].T
    if drop_twins:
        similarities = np.where(similarities > TWIN, 0.0, similarities)
    weights = np.exp((z - z.max()) / temperature)
    return similarities @ (weights / weights.sum())


def pairwise_fit(xs: list[np.ndarray], grades: list[np.ndarray], l2: float = 1e-3) -> np.ndarray:
    """Linear weights minimising a pairwise logistic loss over pairs of different grades (weighted by the gap)."""
    from scipy.optimize import minimize

    diffs, gaps = [], []
    for x, y in zip(xs, grades):
        i, j = np.where(y[:, None] > y[None, :])
        diffs.append(x[i] - x[j])
        gaps.append(y[i] - y[j])
    d, g = np.concatenate(diffs), np.concatenate(gaps)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = d @ w
        grad = (d * (-g / (1.0 + np.exp(z)))[:, None]).mean(0) + 2 * l2 * w
        return float(np.mean(g * np.logaddexp(0.0, -z)) + l2 * w @ w), grad

    return minimize(loss, np.zeros(d.shape[1]), jac=True, method="L-BFGS-B").x


def best(table: dict) -> tuple:
    return max(table, key=lambda k: table[k])


def probe_rows(data: dict[str, dict], model: FusedReranker) -> list[dict]:
    w = model.weights
    ratio = w.bi_encoder_weight / w.cross_encoder_weight

    def logit(row: dict) -> np.ndarray:
        return w.cross_encoder_weight * row["ce"] + w.bi_encoder_weight * row["cos"] + w.lexical_weight * row["lexical"]

    def on(name: str, score: Callable[[dict], np.ndarray]) -> float:
        return ndcg(data[name], [score(r) for r in data[name]["rows"]])

    shipped = {n: on(n, logit) for n in (DEV, REPORT)}
    out = [{"name": "shipped", "idea": "the shipped default (no probe)", "dev": shipped[DEV], "report": shipped[REPORT],
            "setting": f"ratio {ratio:g}, lexical share {w.lexical_weight / w.bi_encoder_weight:g}"}]
    for key, idea in (("cos", "all-MiniLM-L6-v2 cosine alone"), ("maxsim", "MaxSim of its token states alone")):
        out.append({"name": f"{key}-alone", "idea": idea, "dev": on(DEV, lambda r: r[key]),
                    "report": on(REPORT, lambda r: r[key]), "setting": "", "reference": True})
    for drop_twins in (False, True):
        def scored(t: float, fw: float) -> Callable[[dict], np.ndarray]:
            return lambda r: logit(r) + fw * w.bi_encoder_weight * feedback(r, logit(r), t, drop_twins)

        table = {(t, fw): on(DEV, scored(t, fw)) for t in TEMPERATURES for fw in FEEDBACK_WEIGHTS}
        t, fw = best(table)
        out.append({"name": "feedback-no-twins" if drop_twins else "feedback",
                    "idea": "pseudo-relevance feedback on the candidates' vectors"
                            + (f", neighbours at cosine > {TWIN} left out" if drop_twins else ""),
                    "dev": table[(t, fw)], "report": on(REPORT, scored(t, fw)), "setting": f"T {t:g}, w {fw:g}"})

    def mixed(share: float, ms: float) -> Callable[[dict], np.ndarray]:
        return lambda r: r["ce"] + ratio * (r["cos"] + share * r["lexical"] + ms * r["maxsim"])

    table = {(s, m): on(DEV, mixed(s, m)) for s in LEXICAL_SHARES for m in MAXSIM_SHARES}
    s, m = best(table)
    out.append({"name": "maxsim", "idea": "MaxSim of all-MiniLM-L6-v2 token states added to the cosine",
                "dev": table[(s, m)], "report": on(REPORT, mixed(s, m)), "setting": f"lexical share {s:g}, MaxSim share {m:g}"})

    dev = data[DEV]
    grades = [np.array([dev["qrels"].get(q, {}).get(d, 0) for d in ids], float) for q, ids in zip(dev["qids"], dev["doc_ids"])]
    cv = {}
    for chosen in (("cos", "lexical"), ("cos", "lexical", "maxsim"), ("maxsim", "lexical")):
        xs = [np.stack([r[c] for c in chosen], 1).astype(np.float64) for r in dev["rows"]]
        folds, scores = np.arange(len(xs)) % 5, [None] * len(xs)
        for k in range(5):
            weights = pairwise_fit([x for x, f in zip(xs, folds) if f != k], [y for y, f in zip(grades, folds) if f != k])
            for i in np.where(folds == k)[0]:
                scores[i] = xs[i] @ weights
        cv[chosen] = ndcg(dev, scores)
    chosen = best(cv)
    weights = pairwise_fit([np.stack([r[c] for c in chosen], 1).astype(np.float64) for r in dev["rows"]], grades)
    report = [np.stack([r[c] for c in chosen], 1) @ weights for r in data[REPORT]["rows"]]
    folds_text = ", ".join("+".join(k) + f" {v:.4f}" for k, v in cv.items())
    out.append({"name": "maxsim-pairwise", "idea": "pairwise logistic fit on DL21's judgments, feature set by 5-fold CV "
                f"({folds_text})", "dev": cv[chosen],
                "report": ndcg(data[REPORT], report), "setting": "+".join(chosen) + " " + ", ".join(f"{x:.3f}" for x in weights)})
    return out


def twins(data: dict) -> float:
    """Share of candidates that have a near-exact duplicate (cosine > 0.98) among their query's candidates."""
    shares = []
    for row in data["rows"]:
        s = row["vectors"] @ row["vectors"].T
        np.fill_diagonal(s, 0.0)
        shares.append(float((s.max(1) > 0.98).mean()))
    return float(np.mean(shares))


def render(rows: list[dict], data: dict[str, dict], margin: float, backend: str) -> str:
    lines = [
        "# Score-level probes on the default model",
        "",
        "Produced by `benchmarks/quality_probes.py`. nDCG@10 over the BM25 top 100 (`qrels/test-full.tsv`). Each",
        "probe's settings are chosen on DL21 (development); DL19 is measured once at that choice. Kept when DL21",
        f"gains more than {margin:g} over the shipped row. Candidates with a near-duplicate (cosine > 0.98) among",
        f"their query's candidates: DL21 {twins(data[DEV]):.1%}, DL19 {twins(data[REPORT]):.1%}. Cross-encoder backend",
        f"of this run: {backend} (the shipped row can differ from `rerankit eval`'s in the third decimal on another",
        "backend); MaxSim reads sentence-transformers' fp32 token states.",
        "",
        "| probe | idea | chosen on DL21 | DL21 nDCG@10 (dev) | DL19 nDCG@10 (report) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    base = rows[0]
    for row in rows:
        verdict = "reference"
        if row is not base and not row.get("reference"):
            delta = row["dev"] - base["dev"]
            verdict = f"{'kept' if delta > margin else 'dropped'} ({delta:+.4f} on DL21)"
            if delta > margin:
                verdict += "; DL19 " + ("agrees" if row["report"] > base["report"] else
                                        f"does not ({row['report'] - base['report']:+.4f}): not shipped")
        lines.append(f"| {row['name']} | {row['idea']} | {row['setting']} | {row['dev']:.4f} | {row['report']:.4f} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--margin", type=float, default=0.005)
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "probes")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "quality_probes.md")
    args = parser.parse_args()
    if not (args.data / REPORT).is_dir():
        raise SystemExit(f"{args.data} has no {REPORT}: this benchmark needs ../shared/data")
    model = FusedReranker(default_model_path())
    data = {}
    for name in (DEV, REPORT):
        cache = args.work / f"{name}.pkl"
        if not cache.exists():
            atomic_write_bytes(cache, pickle.dumps(features(args.data / name, model)))
            print(f"{name}: features cached in {cache}", flush=True)
        data[name] = pickle.loads(cache.read_bytes())
    text = render(probe_rows(data, model), data, args.margin, model.cross_encoder.backend)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
