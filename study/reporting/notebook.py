"""A report shown inline in Jupyter or Colab: the verdict, the best table and every figure, as one HTML block.

`ReportResult._repr_html_` calls `report_html`, so a notebook cell ending in `rep = study.report(...);
rep` shows the report where the student works. Figures are embedded as base64 PNGs, since a
notebook served from another folder (or from Colab's runtime) cannot follow links to the report's
files; at 200 dpi they come to 0.1-0.3 MB each.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from study.reporting.build import ReportResult

BEST_COLUMNS_SHOWN = 9  # the best table's leading columns: value, trial, scores, size, speed, counts
FIGURE_WIDTH_PX = 640  # one notebook column at the default zoom


def report_html(result: "ReportResult") -> str:
    """The report as a self-contained HTML fragment (no external files)."""
    parts = [f"<h3>Report: {html.escape(result.study_name)}</h3>"]
    verdict = result.verdict
    if verdict is not None:
        parts.append(f"<p><b>Verdict.</b> {html.escape(verdict.headline)}</p>")
        others = [f"{answer.question}: {answer.text}" for answer in verdict.answers
                  if answer.text and answer.text not in verdict.headline]
        lines = [*others, *verdict.findings, *verdict.details]
        if lines:
            parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    if result.warnings:
        parts.append("<p><b>Warnings</b></p><ul>"
                     + "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings) + "</ul>")
    if result.best is not None and not result.best.empty:
        best = result.best.iloc[:, :BEST_COLUMNS_SHOWN]
        parts.append("<p><b>Best trial per value</b></p>"
                     + best.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))
    for number, path in enumerate(result.figures, 1):
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        title = html.escape(path.stem.replace("_", " "))
        parts.append(f'<figure><img src="data:image/png;base64,{encoded}" width="{FIGURE_WIDTH_PX}" '
                     f'alt="{title}"><figcaption>Figure {number}: {title}</figcaption></figure>')
    parts.append(f"<p>Files: <code>{html.escape(str(result.out))}</code> (report.html, tables, figures)</p>")
    return "\n".join(parts)
