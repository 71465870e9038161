"""Figures and terminal tables say what a reader needs: short axis labels with the unit and any
zoom said in the caption, one colour per cell, and the report opening with the verdict's evidence."""

from __future__ import annotations

import io

import pandas as pd
import seaborn as sns
from rich.console import Console

from study.analysis.scoring import best_per_value
from study.app import terminal
from study.reporting import figure_data
from study.reporting.colours import CELL_COLOURS
from study.reporting.figures import palette, score_axis, theme
from study.spec.hyperparameters import CELLS


def _data(scores: list[float]) -> figure_data.ReportData:
    cells = [CELLS[i % 3] for i in range(len(scores))]
    trials = pd.DataFrame({
        "trial": range(len(scores)), "cell": cells, "state": "COMPLETE", "best_val_accuracy": scores,
        "param_count": [100 * (i + 1) for i in range(len(scores))], "train_seconds": [1.0 + i for i in range(len(scores))],
    })
    return figure_data.ReportData(
        trials=trials, best=best_per_value(trials, "cell", "best_val_accuracy", "maximize"), two_way=None,
        score="best_val_accuracy", score_label="best validation accuracy (fraction correct)", maximize=True,
        kind="multiclass", primary="cell", secondary=None, order=list(CELLS), config=None, tracking_uri="")


def _score_figures(data: figure_data.ReportData) -> list[figure_data.Drawn]:
    with theme():
        return [step(data) for step in (figure_data.isolation_figure, figure_data.distribution_figure,
                                        figure_data.cost_figure)]


def test_a_score_axis_that_does_not_start_at_zero_says_so_in_the_caption_not_the_label():
    for drawn in _score_figures(_data([0.91, 0.95, 0.97, 0.93, 0.96, 0.94])):
        assert "zoomed to the data: it does not start at 0" in drawn.caption, drawn.stem
        assert "(fraction correct)" in drawn.caption, drawn.stem  # the unit, which the axis leaves out
        labels = [ax.get_ylabel() for ax in drawn.figure.axes if ax.get_ylabel()]
        assert labels == ["best val. accuracy"], (drawn.stem, labels)


def test_a_score_axis_from_zero_says_nothing_of_zoom():
    for drawn in _score_figures(_data([0.0, 0.5, 0.9, 0.1, 0.6, 0.8])):
        assert "zoomed" not in drawn.caption, drawn.stem


def test_score_axis_labels_are_short():
    assert score_axis("best_val_accuracy") == "best val. accuracy"
    assert score_axis("best_val_loss") == "best val. loss"
    assert score_axis("best_val_mae") == "best val. MAE"


def test_the_page_opens_with_the_figure_the_verdict_rests_on():
    drawn = [figure_data.Drawn(stem, stem, "", None) for stem in
             ("replicates", "paired_draws", "expected_best", "isolation", "distribution")]
    stems = {basis: [d.stem for d in figure_data.page_order(drawn, basis)]
             for basis in ("replicates", "paired draws", "best trial", "none")}
    assert stems["replicates"] == ["replicates", "paired_draws", "expected_best", "isolation", "distribution"]
    assert stems["paired draws"] == ["paired_draws", "replicates", "expected_best", "isolation", "distribution"]
    assert stems["best trial"] == stems["none"] == ["isolation", "replicates", "paired_draws", "expected_best",
                                                    "distribution"]
    without = [d for d in drawn if d.stem != "replicates"]
    assert figure_data.page_order(without, "replicates")[0].stem == "isolation"  # nothing to lead with: no crash


def test_cell_colours_are_seaborns_colour_blind_palette_in_figures_and_terminal_tables(monkeypatch):
    assert list(CELL_COLOURS.values()) == sns.color_palette("colorblind").as_hex()[:3]
    assert palette("cell", list(CELLS)) == CELL_COLOURS
    out = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=out, width=120, force_terminal=True, color_system="truecolor"))
    terminal.print_table(pd.DataFrame({"trial": [0, 1, 2], "cell": list(CELLS)}), "trials")
    for cell, colour in CELL_COLOURS.items():
        red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert f"\x1b[38;2;{red};{green};{blue}m{cell}" in out.getvalue()



def test_a_reports_figures_are_listed_and_numbered_in_the_pages_order(tiny_sweep, stores, scripted_training, tmp_path):
    import re

    from study.reporting.build import build_report
    from study.search.sweep import run_sweep
    from study.spec.sweep_file import load_sweep

    scripted_training()  # an equal-budget random search: every cell on the same 2 draws, so paired draws lead
    result = run_sweep(load_sweep(tiny_sweep(trials=6)), **stores)
    report = build_report(result.study_name, out=tmp_path / "report", formats=("png",), **stores)
    assert report.verdict.basis == "paired draws"
    page = (tmp_path / "report" / "report.md").read_text()
    shown = re.findall(r"!\[[^]]*\]\(figures/([a-z_]+)\.png\)", page)
    assert [path.stem for path in report.figures] == shown
    assert shown[:2] == ["paired_draws", "expected_best"] and "isolation" in shown
    assert "### Figure 1. Paired draws" in page
