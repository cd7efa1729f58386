"""An evaluation ``Report`` as one self-contained HTML file: no script, no external request.

Sections: what was evaluated; the metric table before/after with paired t-test p-values; the summary
plot and the per-query nDCG@10 change (PNG images inlined as data URIs); the depth sweep (table and
plot); and, for the queries reranking helped and hurt most, the two top 10s side by side with each
passage's judged grade. Styles are inline; everything is escaped.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from ..io import atomic_write_text
from .plots import render_png
from .report import Report
from .significance import ALPHA

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1d1d1f;
padding:0 1rem}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
th{background:#f5f5f7}td.l,th.l{text-align:left}.up{color:#137333}.down{color:#b3261e}.sig{font-weight:600}
.meta{color:#555;font-size:.9rem}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.g0{background:#fff}.g1{background:#eef7ee}.g2{background:#d6efd6}.g3{background:#bfe5bf}.gn{background:#fafafa;color:#777}
ol{padding-left:1.5rem}li{margin:.2rem 0;font-size:.88rem}.grade{display:inline-block;min-width:4.5rem;font-weight:600}
img{max-width:100%}
"""


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _depth_png(points: list[dict], dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots()
    axes.plot([p["depth"] for p in points], [p["ndcg10"] for p in points], marker="o")
    axes.set_xscale("log")
    axes.set_xticks([p["depth"] for p in points])
    axes.set_xticklabels([str(p["depth"]) for p in points])
    axes.set_xlabel("candidates reranked (depth)")
    axes.set_ylabel("nDCG@10")
    axes.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _metrics_table(report: Report) -> str:
    rows = []
    for metric in report.measures:
        cells = [f'<td class="l">{escape(metric)}</td>', f"<td>{report.before[metric]:.4f}</td>"]
        if report.after is not None:
            delta = report.after[metric] - report.before[metric]
            test = report.significance.get(metric)
            p = "n/a" if test is None or test.p_value is None else f"{test.p_value:.4f}"
            sig = test is not None and test.significant(ALPHA)
            cls = "up" if delta > 0 else "down" if delta < 0 else ""
            cells += [f"<td>{report.after[metric]:.4f}</td>", f'<td class="{cls}">{delta:+.4f}</td>',
                      f'<td class="{"sig" if sig else ""}">{p}{" *" if sig else ""}</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = '<th class="l">metric</th><th>before</th>' + (
        "<th>after</th><th>change</th><th>p-value</th>" if report.after is not None else "")
    caption = (f"<p class=meta>* p &lt; {ALPHA}, two-sided paired t-test over queries</p>"
               if report.after is not None else "")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{caption}"


def _ranking(items: list[dict]) -> str:
    out = []
    for item in items:
        grade = item.get("grade")
        cls = "gn" if grade is None else f"g{min(int(grade), 3)}"
        label = "unjudged" if grade is None else f"grade {grade}"
        out.append(f'<li class="{cls}"><span class="grade">{escape(label)}</span> '
                   f'<b>{escape(str(item["id"]))}</b> {escape(item.get("text", ""))}</li>')
    return "<ol>" + "".join(out) + "</ol>"


def _examples(report: Report) -> str:
    if not report.examples:
        return ""
    parts = ["<h2>Queries reranking changed most</h2>"]
    for example in report.examples:
        before, after = example["ndcg10_before"], example["ndcg10_after"]
        cls = "up" if after > before else "down" if after < before else ""
        parts.append(f'<h3>{escape(example["query"] or example["query_id"])} '
                     f'<span class="meta">({escape(example["query_id"])}; nDCG@10 {before:.3f} &rarr; '
                     f'<span class="{cls}">{after:.3f}</span>)</span></h3>')
        parts.append(f'<div class="pair"><div><b>first stage</b>{_ranking(example["before"])}</div>'
                     f'<div><b>reranked</b>{_ranking(example["after"])}</div></div>')
    return "".join(parts)


def render_html(report: Report, dpi: int = 100) -> str:
    """The whole report as an HTML document (see the module docstring)."""
    title = f"rerankit evaluation: {report.dataset}" + (f" reranked by {report.reranker}" if report.reranker else "")
    header = "".join(f"<div>{escape(line)}</div>" for line in report.header().splitlines())
    timing = ""
    if report.timing:
        timing = (f"<p class=meta>rerank time: {report.timing.get('total_ms', 0.0) / 1000:.2f} s in all, "
                  f"{report.timing.get('mean_query_ms', 0.0):.1f} ms/query mean, "
                  f"{report.timing.get('p95_query_ms', 0.0):.1f} ms p95</p>")
    sections = [f"<h1>{escape(title)}</h1>", f"<div class=meta>{header}</div>", timing,
                "<h2>Metrics</h2>", _metrics_table(report),
                "<h2>Per metric, and per-query nDCG@10 change</h2>",
                f'<img alt="metrics before and after, and the per-query nDCG@10 change" '
                f'src="{_png_data_uri(render_png(report, dpi=dpi))}">']
    if report.depth_sweep:
        rows = "".join(f"<tr><td>{p['depth']}</td><td>{p['ndcg10']:.4f}</td></tr>" for p in report.depth_sweep)
        sections += ["<h2>Depth sweep</h2>",
                     "<p class=meta>nDCG@10 when only the top <i>depth</i> first-stage candidates are reordered by "
                     "the same reranker scores (what reranking that many gives for a pointwise reranker)</p>",
                     f"<div class=pair><table><tr><th>depth</th><th>nDCG@10</th></tr>{rows}</table>"
                     f'<img alt="nDCG@10 by depth" src="{_png_data_uri(_depth_png(report.depth_sweep, dpi))}"></div>']
    sections.append(_examples(report))
    if report.notes:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def write_html(report: Report, path: str | Path, dpi: int = 100) -> None:
    """Write ``render_html(report)`` atomically."""
    atomic_write_text(path, render_html(report, dpi=dpi))
