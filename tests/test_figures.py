"""Figures and terminal tables say what a reader needs: zoomed axes named, one colour per cell."""

from __future__ import annotations

import io

import pandas as pd
import seaborn as sns
from rich.console import Console

from study.app import terminal
from study.reporting.colours import CELL_COLOURS
from study.spec.hyperparameters import CELLS
from study.reporting.figures import cost, distribution, isolation, palette


def _trials(scores: list[float]) -> pd.DataFrame:
    cells = [CELLS[i % 3] for i in range(len(scores))]
    return pd.DataFrame({
        "trial": range(len(scores)), "cell": cells, "state": "COMPLETE", "best_val_accuracy": scores,
        "param_count": [100 * (i + 1) for i in range(len(scores))], "train_seconds": [1.0 + i for i in range(len(scores))],
    })


def _score_axes_labels(trials: pd.DataFrame) -> list[str]:
    colours = palette("cell", list(CELLS))
    figures = [
        isolation(trials, "cell", "best_val_accuracy", list(CELLS), colours, True, "validation accuracy"),
        distribution(trials, "cell", "best_val_accuracy", list(CELLS), colours, "validation accuracy"),
        cost(trials, "best_val_accuracy", "validation accuracy"),
    ]
    return [ax.get_ylabel() for figure in figures for ax in figure.axes if ax.get_visible()]


def test_a_score_axis_that_does_not_start_at_zero_says_so():
    labels = _score_axes_labels(_trials([0.91, 0.95, 0.97, 0.93, 0.96, 0.94]))
    assert labels and all(label.endswith("(zoomed axis: not from 0)") for label in labels), labels


def test_a_score_axis_from_zero_says_nothing_of_zoom():
    labels = _score_axes_labels(_trials([0.0, 0.5, 0.9, 0.1, 0.6, 0.8]))
    assert labels and not any("zoomed" in label for label in labels), labels


def test_cell_colours_are_seaborns_colour_blind_palette_in_figures_and_terminal_tables(monkeypatch):
    assert list(CELL_COLOURS.values()) == sns.color_palette("colorblind").as_hex()[:3]
    assert palette("cell", list(CELLS)) == CELL_COLOURS
    out = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=out, width=120, force_terminal=True, color_system="truecolor"))
    terminal.print_table(pd.DataFrame({"trial": [0, 1, 2], "cell": list(CELLS)}), "trials")
    for cell, colour in CELL_COLOURS.items():
        red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert f"\x1b[38;2;{red};{green};{blue}m{cell}" in out.getvalue()

