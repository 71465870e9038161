"""Figures across tasks: each compared value's interval of normalised scores, and its improvement
over the others (same style and sizes as `study.reporting.figures`: one panel, COLUMN wide)."""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.figure import Figure

from study.reporting.colours import CELL_COLOURS
from study.reporting.figures import COLUMN, NEUTRAL, new_figure, palette
from study.reporting.labels import fit_ticks

NAME_CHARACTERS = 20  # a value's name per line of a tick label: the labels keep the panel at least half the width
NOTE_CHARACTERS = 44  # the title's note per line: a COLUMN-wide line at the title's size


def interval_plot(frame: pd.DataFrame, by: str, column: str, axis_label: str) -> Figure:
    """One row per value: its point estimate (`column`) and 95% interval (`ci_low`, `ci_high`), the
    numbers under the value's name. A parenthesis in `axis_label` (what its scale means) goes under
    the title, with a word where the axis is zoomed, so the axis label stays short."""
    values = list(frame[by])
    names = [f"{_name(getattr(row, by))}\n{getattr(row, column):.3f} ({row.ci_low:.2f} to {row.ci_high:.2f})"
             for row in frame.itertuples(index=False)]
    fig = new_figure(COLUMN, 2.6 + _rows(names))
    ax = fig.add_subplot()
    colours = palette(by, values)
    for position, row in enumerate(frame.itertuples(index=False)):
        value, point = getattr(row, by), getattr(row, column)
        ax.plot([row.ci_low, row.ci_high], [position, position], color=colours[value], lw=7, alpha=0.45,
                solid_capstyle="butt")
        ax.plot([point], [position], "o", color=colours[value], ms=11, mec="white", mew=1.2)
    ax.set_yticks(range(len(values)), names)
    ax.set_ylim(len(values) - 0.5, -0.5)
    ax.margins(x=0.1)
    short, _, scale = axis_label.partition(" (")
    low, high = ax.get_xlim()
    notes = [scale.removesuffix(")")] if scale else []
    notes += [] if low <= 0 <= high else ["axis zoomed, not from 0"]
    ax.set_xlabel(short)
    # Over the figure, not the axes: long names on the left would push an axes title off the canvas.
    fig.suptitle("Across tasks: estimate and 95% interval"
                 + ("\n" + textwrap.fill(f"({'; '.join(notes)})", NOTE_CHARACTERS) if notes else ""))
    fit_ticks(fig)
    return fig


def improvement_plot(improvement: pd.DataFrame) -> Figure:
    """P(X > Y) per ordered pair with its 95% interval, against the line of no preference (0.5)."""
    labels = [_name(f"P({row.x} > {row.y})") for row in improvement.itertuples(index=False)]
    fig = new_figure(COLUMN, 2.4 + _rows(labels))
    ax = fig.add_subplot()
    for position, row in enumerate(improvement.itertuples(index=False)):
        colour = CELL_COLOURS.get(row.x, NEUTRAL)
        ax.plot([row.ci_low, row.ci_high], [position, position], color=colour, lw=7, alpha=0.45, solid_capstyle="butt")
        ax.plot([row.probability], [position], "o", color=colour, ms=10, mec="white", mew=1.2)
    ax.axvline(0.5, color=NEUTRAL, ls=":", lw=1.5)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(a run of X beats one of Y)")
    fig.suptitle("Across tasks: probability of improvement")
    fit_ticks(fig)
    return fig


def _name(text) -> str:
    return textwrap.fill(str(text), NAME_CHARACTERS, break_long_words=True)


def _rows(labels: list[str]) -> float:
    """Inches for one row per label, each as tall as its lines of text at FONT."""
    return sum(0.27 * label.count("\n") + 0.47 for label in labels)
