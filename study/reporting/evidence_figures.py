"""Figures of the verdict's evidence: the paired draws, the replicates of each best configuration,
and the expected best score against the tuning budget (same style as `study.reporting.figures`).

The first two are what the verdict rests on (`study.analysis.verdict`): the scores themselves on
the left (one line per paired draw across the compared values; one point per replicate seed), and
on the right each pair's mean difference with its 95% interval beside the line of no difference
and, where the study has one, the equivalence margin. The third draws the `expected_best` table
(`study.analysis.budget.budget_curve`) as one curve per value with its bootstrap band. Each takes
plain DataFrames, already in the units shown (differences of accuracies in pp), and returns a
matplotlib `Figure`.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from study.reporting.figures import COLUMN, HEIGHT, NEUTRAL, PAGE, category_ticks, new_figure, width_for, wrap
from study.reporting.labels import fit_ticks, legend_below

DIFFERENCE_COLUMNS = ["first", "second", "difference", "ci_low", "ci_high", "margin"]  # what `differences` holds
PAIR_LABEL_CHARACTERS = 18  # a pair's name per line of the differences panel: about a third of its width
MEAN_STYLE = {"marker": "D", "ms": 12, "mec": "black", "mew": 1.2}


def paired_draws(draws: pd.DataFrame, order: list, colours: dict, differences: pd.DataFrame,
                 score_label: str, difference_label: str, interval: str, unit: str = "") -> Figure:
    """Left: each draw's score for every value, one grey line per draw across the values, and each
    value's mean; right: each pair's mean paired difference with its `interval`."""
    fig = new_figure(PAGE, _height(differences))
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    # Many draws would turn the lines into a grey block: each line fainter the more there are.
    alpha = float(np.clip(8 / max(len(draws), 1), 0.15, 0.6))
    positions = np.arange(len(order))
    for _, row in draws.iterrows():
        left.plot(positions, row[order].to_numpy(float), color=NEUTRAL, lw=1.2, alpha=alpha, zorder=1)
    for x, value in zip(positions, order):
        left.scatter(np.full(len(draws), x), draws[value], color=colours[value], s=50, edgecolor="white",
                     linewidth=0.6, zorder=2)
        left.plot(x, draws[value].mean(), color=colours[value], zorder=4, **MEAN_STYLE)
    upright = category_ticks(left, order, PAGE * 0.5)
    left.margins(y=0.1)
    left.set(ylabel=score_label, title=f"each draw's score (n = {len(draws)})")
    _differences(right, differences, colours, difference_label)
    fig.suptitle("Paired draws: every value trained on the same nuisance values")
    legend_below(fig, [
        Line2D([], [], color=NEUTRAL, lw=1.5, alpha=0.6, label="one draw"),
        Line2D([], [], ls="", color=NEUTRAL, **MEAN_STYLE, label="mean"),
        *_difference_handles(differences, interval, unit),
    ])
    fit_ticks(fig, {left: upright})
    return fig


def replicates(runs: pd.DataFrame, by: str, score: str, order: list, colours: dict, summary: pd.DataFrame,
               searched: dict, differences: pd.DataFrame | None, score_label: str, difference_label: str,
               interval: str, unit: str = "") -> Figure:
    """Left: every replicate seed's score per value, its mean with a 95% t-interval (`summary`:
    stats.summarize), and the search trial it retrains (`searched`, value -> score), hollow; right,
    when `differences` is given: each pair's difference of the means with its `interval`."""
    panels = differences is not None and not differences.empty
    width = PAGE if panels else width_for(len(order))
    fig = new_figure(width, _height(differences if panels else None))
    if panels:
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    else:
        left = fig.add_subplot()
    rows = summary.set_index(by)
    rng = np.random.default_rng(0)
    for x, value in enumerate(order):
        scores = runs.loc[runs[by] == value, score].dropna()
        left.scatter(x - 0.12 + rng.uniform(-0.06, 0.06, len(scores)), scores, color=colours[value], s=60,
                     edgecolor="white", linewidth=0.6, zorder=3)
        if value in rows.index and pd.notna(rows.loc[value, "ci_low"]):
            left.vlines(x + 0.05, rows.loc[value, "ci_low"], rows.loc[value, "ci_high"], color=colours[value], lw=7,
                        alpha=0.4, zorder=2)
        if value in rows.index:
            left.plot(x + 0.05, rows.loc[value, "mean"], color=colours[value], zorder=4, **MEAN_STYLE)
        if pd.notna(searched.get(value)):
            left.plot(x + 0.3, searched[value], "o", ms=11, mfc="white", mec=colours[value], mew=2, zorder=3)
    counts = runs.groupby(by)[score].count()
    upright = category_ticks(left, order, width * (0.5 if panels else 1),
                             [f"n = {int(counts.get(v, 0))}" for v in order])
    left.margins(y=0.12)
    left.set(ylabel=score_label, title="score of each seed" if panels else f"Replicates per {by}")
    handles = [
        Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=9, label="one seed"),
        Line2D([], [], ls="", color=NEUTRAL, **MEAN_STYLE, label="mean"),
        Line2D([], [], color=NEUTRAL, lw=7, alpha=0.4, label="95% t-interval"),
        Line2D([], [], marker="o", ls="", ms=10, mfc="white", mec=NEUTRAL, mew=2, label="search trial (selected)"),
    ]
    if panels:
        _differences(right, differences, colours, difference_label)
        fig.suptitle(f"Replicates: each {by}'s best configuration retrained with new seeds")
        handles += _difference_handles(differences, interval, unit)
    legend_below(fig, handles)
    fit_ticks(fig, {left: upright})
    return fig


def expected_best(curve: pd.DataFrame, by: str, order: list, colours: dict, score_label: str) -> Figure:
    """The expected best score of k trials against k, one curve per value with its bootstrap band
    (`curve`: study.analysis.budget.budget_curve's columns)."""
    fig = new_figure(COLUMN, HEIGHT + 0.6)
    ax = fig.add_subplot()
    handles = []
    for value in order:
        rows = curve[curve[by] == value].sort_values("k")
        if rows.empty:
            continue
        ax.fill_between(rows["k"], rows["band_low"], rows["band_high"], color=colours[value], alpha=0.18, lw=0)
        ax.plot(rows["k"], rows["expected_best"], "-o", color=colours[value], lw=2, ms=8, mec="white")
        handles.append(Line2D([], [], color=colours[value], lw=2.5, marker="o", ms=8, mec="white",
                              label=wrap(value, COLUMN * 2, 3)))
    ks = sorted(curve["k"].unique())
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ks))
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel="tuning budget k (trials)", ylabel=score_label, title=f"Expected best of k trials per {by}")
    legend_below(fig, [*handles, Patch(color=NEUTRAL, alpha=0.18, lw=0, label="95% bootstrap band")])
    fit_ticks(fig)
    return fig


# --------------------------------------------------------------------------- helpers


def _height(differences: pd.DataFrame | None) -> float:
    """A row of panels, taller where the differences panel lists many pairs or long names."""
    if differences is None or differences.empty:
        return HEIGHT + 0.8
    lines = max(name.count("\n") + 1 for name in _pair_names(differences))
    return max(HEIGHT + 0.8, len(differences) * (0.27 * lines + 0.2) + 2.6)


def _pair_names(differences: pd.DataFrame) -> list[str]:
    return [textwrap.fill(f"{row.first} − {row.second}", PAIR_LABEL_CHARACTERS, break_long_words=True)
            for row in differences.itertuples(index=False)]


def _differences(ax, differences: pd.DataFrame, colours: dict, axis_label: str) -> None:
    """One row per pair, the better-ranked value first: its mean difference, its interval, the line
    of no difference and the equivalence margin (±margin, where there is one)."""
    for y, row in enumerate(differences.itertuples(index=False)):
        colour = colours.get(row.first, NEUTRAL)
        if pd.notna(row.ci_low):
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, lw=7, alpha=0.45, solid_capstyle="butt")
        ax.plot(row.difference, y, "o", color=colour, ms=12, mec="white", mew=1.5, zorder=3)
    ax.axvline(0, color=NEUTRAL, lw=1.5, ls=":", zorder=1)
    margin = differences["margin"].dropna()
    if not margin.empty:
        ax.axvspan(-margin.iloc[0], margin.iloc[0], color="#bbbbbb", alpha=0.3, lw=0, zorder=0)
    ax.set_yticks(range(len(differences)), _pair_names(differences))
    ax.set_ylim(len(differences) - 0.5, -0.5)
    ax.margins(x=0.12)
    ax.set(xlabel=axis_label, title="mean difference, first − second")


def _difference_handles(differences: pd.DataFrame, interval: str, unit: str) -> list:
    handles = [Line2D([], [], color=NEUTRAL, lw=7, alpha=0.45, label=interval)]
    margin = differences["margin"].dropna()
    if not margin.empty:
        handles.append(Patch(color="#bbbbbb", alpha=0.3, lw=0, label=f"±{margin.iloc[0]:g}{unit}: equivalence margin"))
    return handles
