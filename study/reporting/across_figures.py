"""Figures across tasks: each compared value's interval of normalised scores, and its improvement
over the others (same style as `study.reporting.figures`)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from study.reporting.colours import CELL_COLOURS
from study.reporting.figures import NEUTRAL, palette


def interval_plot(frame: pd.DataFrame, by: str, column: str, axis_label: str) -> Figure:
    """One row per value: its point estimate (`column`) and 95% interval (`ci_low`, `ci_high`)."""
    values = list(frame[by])
    fig = Figure(figsize=(8.0, 1.2 + 0.7 * len(values)), layout="constrained")
    ax = fig.add_subplot()
    colours = palette(by, values)
    for position, row in enumerate(frame.itertuples(index=False)):
        value, point = getattr(row, by), getattr(row, column)
        ax.plot([row.ci_low, row.ci_high], [position, position], color=colours[value], lw=6, alpha=0.45,
                solid_capstyle="butt")
        ax.plot([point], [position], "o", color=colours[value], ms=9, mec="white", mew=1.2)
        ax.annotate(f"{point:.3f} ({row.ci_low:.3f} to {row.ci_high:.3f})", (row.ci_high, position),
                    xytext=(8, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(range(len(values)), [str(v) for v in values])
    ax.invert_yaxis()
    ax.margins(x=0.25, y=0.3)
    ax.set(xlabel=axis_label + " (zoomed axis)", title="Across tasks: point estimate and 95% bootstrap interval")
    return fig


def improvement_plot(improvement: pd.DataFrame) -> Figure:
    """P(X > Y) per ordered pair with its 95% interval, against the line of no preference (0.5)."""
    labels = [f"P({row.x} > {row.y})" for row in improvement.itertuples(index=False)]
    fig = Figure(figsize=(8.0, 1.2 + 0.55 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    for position, row in enumerate(improvement.itertuples(index=False)):
        colour = CELL_COLOURS.get(row.x, NEUTRAL)
        ax.plot([row.ci_low, row.ci_high], [position, position], color=colour, lw=6, alpha=0.45, solid_capstyle="butt")
        ax.plot([row.probability], [position], "o", color=colour, ms=8, mec="white", mew=1.2)
    ax.axvline(0.5, color=NEUTRAL, ls=":", lw=1.2)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set(xlabel="probability of improvement (0.5 = no preference)",
           title="Across tasks: probability that a run of X beats a run of Y")
    return fig
