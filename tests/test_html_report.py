"""``rerankit eval --html``: one self-contained file, with the tables, plots, depth sweep and example queries,
that opens in headless Chromium without a single network request."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from browser import headless_chromium, requested_urls

import rerankit
from rerankit.evaluation import evaluate_folder
from rerankit.evaluation.html_report import render_html
from rerankit.rerankers.base import Reranker
from rerankit.types import Document

WORDS = "password reset account email invoice billing login security token device phone backup".split()


class OverlapReranker(Reranker):
    score_kind = "similarity"
    name = "overlap"

    def _score(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        words = set(query.split())
        return np.array([sum(w in words for w in d.full_text.split()) for d in documents], dtype=np.float32)


def _judged_collection(folder: Path) -> Path:
    rng = np.random.default_rng(11)
    folder.mkdir()
    (folder / "qrels").mkdir()
    docs = [{"_id": f"d{i}", "text": " ".join(rng.choice(WORDS, size=12)) + " <b>&amp;</b>"} for i in range(60)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = {f"q{i}": " ".join(rng.choice(WORDS, size=2)) for i in range(12)}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    lines = ["query-id\tcorpus-id\tscore"]
    for q, text in queries.items():
        for d in docs:
            hits = sum(w in text.split() for w in d["text"].split())
            if hits >= 4:
                lines.append(f"{q}\t{d['_id']}\t{min(3, hits // 3)}")
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_the_report_holds_the_sweep_and_the_examples(tmp_path):
    data = _judged_collection(tmp_path / "c")
    report = evaluate_folder(data, rerank=OverlapReranker(), depth=30, progress=False)
    assert [p["depth"] for p in report.depth_sweep] == [5, 10, 20, 30]
    assert report.depth_sweep[-1]["ndcg10"] == pytest.approx(report.after["nDCG@10"])  # full depth = the reranking
    assert 1 <= len(report.examples) <= 6 and all(len(e["after"]) <= 10 for e in report.examples)
    best = report.examples[0]
    assert best["ndcg10_after"] - best["ndcg10_before"] == max(
        report.per_query_ndcg10_after[q] - report.per_query_ndcg10_before[q] for q in report.per_query_ndcg10_after)
    page = render_html(report)
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page
    assert "<b>&amp;</b>" not in page and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page  # passage text is escaped
    again = type(report).from_dict(json.loads(report.to_json()))  # the JSON keeps the new fields
    assert again.depth_sweep == report.depth_sweep and again.examples == report.examples


def test_eval_html_opens_in_chromium_with_no_network_request(tmp_path):
    data = _judged_collection(tmp_path / "c")
    out = tmp_path / "r.html"
    script = ("import sys, rerankit; from test_html_report import OverlapReranker; "
              "rerankit.register('overlap', lambda arg, **_: OverlapReranker()); "
              "from rerankit.cli import main; main(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", script, "eval", str(data), "--rerank", "overlap:", "--depth", "30",
                           "--html", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"html report: {out}" in done.stderr
    with headless_chromium() as browser:
        browser.get(out.as_uri())
        text = browser.find_element("tag name", "body").text
        urls = requested_urls(browser)
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        browser.save_screenshot(str(tmp_path / "report.png"))
    assert "nDCG@10" in text and "Depth sweep" in text and "Queries reranking changed most" in text
    assert "grade" in text and "first stage" in text and "reranked" in text
    assert [u for u in urls if not u.startswith(("file://", "data:"))] == []  # nothing from the network
    assert len(images) == 2 and all(done and width > 300 for done, width in images)  # the inline plots render
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_html_needs_no_depths_flag(tmp_path):
    from rerankit.errors import InvalidInputError

    rerankit.register("overlap", lambda arg, **_: OverlapReranker())
    from rerankit.cli.eval_cmd import eval_command

    with pytest.raises(InvalidInputError, match="--html"):
        eval_command(data=str(tmp_path), run=None, qrels=None, rerank="overlap:", depth=10, depths="5,10",
                     rel_threshold=1, max_queries=None, out=None, plot=None, html=str(tmp_path / "x.html"),
                     as_json=False)
