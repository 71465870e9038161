"""Figures: seaborn plots of a study's trials, one readable style, one colour per cell.

The style (theme, palette, labels, `save`) and the figures of the trials themselves are here; the
figures of what the models did are in `study.reporting.model_figures`, those across tasks in
`study.reporting.across_figures`.

Every plotting function takes plain data (DataFrames, arrays, dicts) and returns a matplotlib
`Figure`; `save` writes it as PNG (200 dpi) and vector PDF, or whatever formats the report asks
for. Nothing here reads a store: `study.reporting.figure_data` gathers each figure's data. Figures are
built on `Figure` objects rather than pyplot, and the seaborn theme is applied inside `theme()`
only, so a notebook's own pyplot state and style are left alone. A cell keeps the same colour in every figure (`CELL_COLOURS`, from seaborn's colour-blind
palette); failed trials are drawn as crosses in a strip below the data, since they have no score.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from study.reporting.colours import CELL_COLOURS
from study.spec.hyperparameters import CELLS, HYPERPARAMETERS

DPI = 200
NEUTRAL = "#555555"
FAILED_STYLE = {"marker": "x", "s": 40, "linewidths": 1.6}

LABELS = {
    "cell": "cell",
    "units": "units per layer",
    "depth": "recurrent layers",
    "activation": "activation",
    "input_dropout": "input dropout, in the cell (fraction)",
    "recurrent_dropout": "recurrent dropout, in the cell (fraction)",
    "output_dropout": "dropout after each recurrent layer (fraction)",
    "bidirectional": "bidirectional",
    "dense_units": "dense units (0 = none)",
    "dense_dropout": "dropout after the dense layer (fraction)",
    "dropout": "input dropout, in the cell (fraction)",  # its name in studies made before issue 17
    "head_dropout": "dropout after the recurrent stack and the dense layer (fraction)",  # likewise
    "embedding_dim": "embedding size",
    "optimizer": "optimizer",
    "learning_rate": "learning rate",
    "clipnorm": "gradient clip norm (0 = none)",
    "param_count": "parameters (count, log scale)",
    "train_seconds": "training time (s)",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """seaborn's whitegrid style at notebook scale (`sns.set_theme`), for the figures built inside only."""
    with mpl.rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("notebook")}):
        yield


def palette(dimension: str, values: list) -> dict:
    """Colours of a compared dimension: the fixed cell colours, or an ordered ramp for other values."""
    if dimension == "cell":
        return {value: CELL_COLOURS.get(value, NEUTRAL) for value in values}
    # A sequential ramp reads as "more units / deeper"; it avoids the cell colours' hues.
    return dict(zip(values, sns.color_palette("flare", len(values))))


def save(fig: Figure, folder: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- helpers


def _completed(trials: pd.DataFrame, score: str) -> pd.DataFrame:
    return trials[(trials["state"] == "COMPLETE") & trials[score].notna()]


def _failed_band(ax) -> float:
    """Extend the y axis down by a band for trials without a score; return the band's centre.

    Failed trials have no score, so they are drawn as crosses in this band, below a dotted line.
    """
    low, high = ax.get_ylim()
    span = (high - low) or 1.0
    ax.set_ylim(low - 0.14 * span, high)
    return low - 0.08 * span


def _draw_failed(ax, y: float, positions, colours: list) -> None:
    low = ax.get_ylim()[0]
    ax.axhline(2 * y - low, color="#bbbbbb", lw=0.8, ls=":")  # as far above the crosses as the axis is below
    if len(positions):
        ax.scatter(positions, [y] * len(positions), c=colours, zorder=3, **FAILED_STYLE)


def _jitter(count: int, width: float = 0.25, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-width / 2, width / 2, count)


def _legend_handles(colours: dict, title_marker: str = "o") -> list[Line2D]:
    return [Line2D([], [], marker=title_marker, ls="", color=c, ms=8, label=str(v)) for v, c in colours.items()]


def _failed_handle() -> Line2D:
    return Line2D([], [], marker="x", ls="", color=NEUTRAL, ms=7, mew=1.6, label="failed (no score)")


def _is_numeric_axis(values: pd.Series, name: str) -> bool:
    """A continuous axis for searched ranges; a categorical one for choices and booleans."""
    dim = HYPERPARAMETERS.get(name)
    if dim is not None and dim.kind in ("categorical", "bool"):
        return False
    return values.nunique() > 6


def _log_x(ax, counts: bool = False) -> None:
    """A log x axis labelled 1-2-5 in plain numbers (0.002, 5k), not overlapping 2x10^-3 minor labels."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    decades = math.log10(high / low) if low > 0 else 1.0
    # About five labels whatever the span: a panel is only ~4 inches wide.
    subs = (1.0,) if decades > 3.5 else (1.0, 3.0) if decades > 2 else (1.0, 2.0, 5.0) if decades > 0.5 \
        else tuple(range(1, 10))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count_text(value) if counts else _short(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _short(value: float) -> str:
    """0.03, 0.01, 3e-3, 1e-4: learning rates as ML papers write them, short enough not to collide."""
    if value == 0 or 0.01 <= abs(value) < 1e4:
        return f"{value:g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _count_text(value: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


# --------------------------------------------------------------------------- comparisons


def isolation(
    trials: pd.DataFrame, by: str, score: str, order: list, colours: dict, maximize: bool,
    score_label: str, top: int = 3, replicates: pd.DataFrame | None = None,
) -> Figure:
    """Best score per compared value. With replicate seeds, each replicate is a small point and the
    bar spans their mean ± one standard deviation; without, the bar spans the best `top` trials."""
    seeded = replicates is not None and not replicates.empty and score in replicates
    fig = Figure(figsize=(max(6.0, 1.7 * len(order) + 3), 4.8), layout="constrained")
    ax = fig.add_subplot()
    done = _completed(trials, score)
    ticks = []
    for x, value in enumerate(order):
        scores = done.loc[done[by] == value, score].sort_values(ascending=not maximize)
        ticks.append(f"{value}\n(n = {len(scores)})")
        if scores.empty:
            ax.text(x, 0.5, "no completed\ntrial", ha="center", va="center", color=NEUTRAL,
                    transform=ax.get_xaxis_transform())
            continue
        best = scores.iloc[:top]
        colour = colours[value]
        again = replicates.loc[replicates[by] == value, score].dropna() if seeded else pd.Series(dtype=float)
        if len(again) > 1:
            # Beside the best trial rather than on it, so the dot hides no replicate.
            mean, sd = again.mean(), again.std(ddof=1)
            ax.vlines(x + 0.18, mean - sd, mean + sd, color=colour, lw=6, alpha=0.35, zorder=2)
            ax.plot([x + 0.18] * len(again), again, "_", ms=14, mew=2, color=colour, zorder=3)
        elif len(best) > 1 and not seeded:
            ax.vlines(x, best.min(), best.max(), color=colour, lw=6, alpha=0.35, zorder=2)
        ax.plot(x, best.iloc[0], "o", ms=11, color=colour, mec="white", mew=1.5, zorder=3)
        ax.annotate(f"{best.iloc[0]:.4g}", (x, best.iloc[0]), xytext=(-12 if seeded else 12, 0),
                    textcoords="offset points", va="center", ha="right" if seeded else "left", fontsize=11)
    ax.set_xticks(range(len(order)), ticks)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.margins(y=0.15)
    ax.set(xlabel=label(by), ylabel=score_label + _zoomed(ax), title=f"Best trial per {by}")
    fig.legend(
        handles=[
            Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=9, label="best search trial"),
            *([Line2D([], [], marker="_", ls="", color=NEUTRAL, ms=14, mew=2, label="replicate seeds"),
               Line2D([], [], color=NEUTRAL, lw=6, alpha=0.35, label="replicates: mean ± sd")] if seeded else
              [Line2D([], [], color=NEUTRAL, lw=6, alpha=0.35, label=f"range of the top {top} trials")]),
        ],
        loc="outside lower center", ncol=3, frameon=False,
    )
    return fig


def _zoomed(ax) -> str:
    """The words an axis label needs when its scores do not start at zero."""
    low, high = ax.get_ylim()
    return "" if low <= 0 <= high else " (zoomed axis: not from 0)"


def distribution(
    trials: pd.DataFrame, by: str, score: str, order: list, colours: dict, score_label: str,
) -> Figure:
    """Every trial per compared value: box and points of completed trials, pruned hollow, failed crosses."""
    fig = Figure(figsize=(max(7.0, 2.3 * len(order) + 4), 5.2), layout="constrained")
    ax = fig.add_subplot()
    done = _completed(trials, score)
    hue = "cell" if by != "cell" and "cell" in trials and trials["cell"].nunique() > 1 else by
    hue_colours = palette(hue, _order(trials[hue])) if hue != by else colours
    positions = {value: x for x, value in enumerate(order)}
    if not done.empty:
        sns.boxplot(data=done, x=by, y=score, order=order, hue=by, palette=colours, fill=False,
                    showfliers=False, width=0.5, linewidth=1.5, legend=False, ax=ax)
        sns.stripplot(data=done, x=by, y=score, order=order, hue=hue, palette=hue_colours, jitter=0.15,
                      size=7, alpha=0.85, edgecolor="white", linewidth=0.6, legend=False, ax=ax, zorder=3)
    pruned = trials[(trials["state"] == "PRUNED") & trials[score].notna() & trials[by].isin(order)]
    if not pruned.empty:
        ax.scatter([positions[v] for v in pruned[by]] + _jitter(len(pruned)), pruned[score],
                   facecolors="none", edgecolors=[hue_colours[v] for v in pruned[hue]], s=55, lw=1.5, zorder=3)
    ax.set_xticks(range(len(order)), [_count_label(trials, by, value) for value in order])
    ax.set_xlim(-0.6, len(order) - 0.4)
    no_score = trials[trials["state"].isin(["FAIL", "PRUNED"]) & trials[score].isna() & trials[by].isin(order)]
    if not no_score.empty:
        _draw_failed(ax, _failed_band(ax), np.array([positions[v] for v in no_score[by]]) + _jitter(len(no_score)),
                     [hue_colours[v] for v in no_score[hue]])
    ax.set(xlabel=label(by), ylabel=score_label + _zoomed(ax), title=f"All trials per {by}")
    handles = [Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=8, label="completed")]
    if not pruned.empty:
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", color=NEUTRAL, ms=8, mew=1.5,
                              label="pruned (score so far)"))
    if not no_score.empty:
        handles.append(_failed_handle())
    if hue != by:
        handles += _legend_handles(hue_colours)
    if len(handles) > 1:  # "completed" alone needs no legend
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig


def _count_label(trials: pd.DataFrame, by: str, value) -> str:
    states = trials.loc[trials[by] == value, "state"]
    others = [f"{n} {word}" for state, word in (("PRUNED", "pruned"), ("FAIL", "failed"))
              if (n := int((states == state).sum()))]
    # One count per line keeps neighbouring labels apart when there are many values.
    return "\n".join([str(value), f"{(states == 'COMPLETE').sum()} complete", ", ".join(others)]).strip()


def _order(values: pd.Series) -> list:
    return sorted(values.dropna().unique(), key=_cell_first)


def _cell_first(value) -> tuple:
    return (CELLS.index(value), "") if value in CELLS else (len(CELLS), str(value))


def two_way(
    table: pd.DataFrame, x: str, hue: str, x_order: list, hue_order: list, score_label: str,
) -> Figure:
    """Interaction plot of a two-way table (columns x, hue, complete, mean, best): the best score of
    every combination (filled, labelled with its value and n) and the mean (open), one line per hue.

    Dots on a zoomed axis rather than bars from zero: near-1 accuracies differ in the second decimal.
    """
    fig = Figure(figsize=(max(7.5, 2.2 * len(x_order) + 4), 4.8), layout="constrained")
    ax = fig.add_subplot()
    colours = palette(hue, hue_order)
    offsets = np.linspace(-0.2, 0.2, len(hue_order)) if len(hue_order) > 1 else np.zeros(1)
    for offset, value in zip(offsets, hue_order):
        rows = table[table[hue] == value].set_index(x).reindex(x_order)
        positions = np.arange(len(x_order)) + offset
        ax.plot(positions, rows["best"], "-o", color=colours[value], ms=9, lw=1.5, mec="white", mew=1.2)
        ax.plot(positions, rows["mean"], "o", color=colours[value], ms=7, mfc="white", mew=1.5)
        for position, best, n in zip(positions, rows["best"], rows["complete"]):
            if pd.notna(best):
                ax.annotate(f"{best:.4g} (n={int(n)})", (position, best), xytext=(8, 0), textcoords="offset points",
                            va="center", fontsize=9)
    ax.set_xticks(range(len(x_order)), x_order)
    ax.set_xlim(-0.6, len(x_order) - 0.2)
    ax.margins(y=0.12)
    ax.set(xlabel=label(x), ylabel=score_label,
           title=f"Best (filled) and mean (open) per {x} and {hue}; the axis is zoomed, not from zero")
    fig.legend(handles=_legend_handles(colours), title=label(hue), loc="outside right upper", frameon=False)
    return fig


# --------------------------------------------------------------------------- search and cost


def objective_vs_params(
    trials: pd.DataFrame, params: list[str], score: str, score_label: str, log_params: set[str],
) -> Figure:
    """The score of every trial against each searched hyperparameter, one panel each, colour = cell."""
    columns = min(3, len(params))
    rows = math.ceil(len(params) / columns)
    fig = Figure(figsize=(max(4.4 * columns, 7.0) + 2.2, 3.9 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    done = _completed(trials, score)
    failed = trials[trials[score].isna() & (trials["state"] != "RUNNING")]
    colours = palette("cell", _order(trials["cell"]))
    for ax, param in zip(axes, params):
        if _is_numeric_axis(trials[param], param):
            sns.scatterplot(data=done, x=param, y=score, hue="cell", palette=colours, s=45, alpha=0.85,
                            edgecolor="white", legend=False, ax=ax)
            if param in log_params:
                _log_x(ax)
        else:
            sns.stripplot(data=done, x=param, y=score, order=_order(trials[param]), hue="cell", palette=colours,
                          jitter=0.2, size=6, alpha=0.85, legend=False, ax=ax)
        ax.set_xlabel(label(param) + (" (log scale)" if param in log_params else ""))
        ax.set_ylabel(score_label + _zoomed(ax))
    y_failed = _failed_band(axes[0]) if not failed.empty else None  # the shared y axis: one band for all panels
    for ax, param in zip(axes, params if y_failed is not None else []):
        if _is_numeric_axis(trials[param], param):
            positions = failed[param].to_numpy(dtype=float)
        else:
            order = _order(trials[param])
            positions = np.array([order.index(v) for v in failed[param]]) + _jitter(len(failed))
        _draw_failed(ax, y_failed, positions, [colours[c] for c in failed["cell"]])
    for ax in axes[len(params):]:
        ax.set_visible(False)
    fig.suptitle("Every trial's score against each searched hyperparameter")
    fig.legend(handles=_legend_handles(colours) + ([_failed_handle()] if not failed.empty else []), title="cell",
               loc="outside right upper", frameon=False)
    return fig


def cost(trials: pd.DataFrame, score: str, score_label: str, maximize: bool = True) -> Figure:
    """The score against model size and training time: what each cell's accuracy costs, with the
    Pareto front of size (the best score reached at or below each size) as a grey step line."""
    fig = Figure(figsize=(12.5, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    done = _completed(trials, score).astype({"param_count": float})
    colours = palette("cell", _order(trials["cell"]))
    for ax, x in zip(axes, ("param_count", "train_seconds")):
        sns.scatterplot(data=done, x=x, y=score, hue="cell", palette=colours, s=50, alpha=0.85,
                        edgecolor="white", legend=False, ax=ax)
        values = done[x].dropna()
        spread = values.max() / values.min() if len(values) and values.min() > 0 else 1
        if x == "param_count" or spread > 30:
            _log_x(ax, counts=x == "param_count")
        if x == "param_count" and len(done) > 1:
            ordered = done.sort_values([x, score], ascending=[True, not maximize])
            running = ordered[score].cummax() if maximize else ordered[score].cummin()
            front = ordered[ordered[score] == running].drop_duplicates(subset=[score])
            ax.step(front[x], front[score], where="post", color=NEUTRAL, lw=1.2, ls="--", zorder=1,
                    label="Pareto front (best score at or below this size)")
            ax.legend(loc="best", frameon=False, fontsize=9)
        ax.set_xlabel(label(x) if x == "param_count" or spread <= 30 else "training time (s, log scale)")
        ax.set_ylabel(score_label + _zoomed(ax))
    axes[0].set_title("against model size")
    axes[1].set_title("against training time (all epochs)")
    fig.suptitle("Cost of each trial's score")
    fig.legend(handles=_legend_handles(colours), title="cell", loc="outside right upper", frameon=False)
    return fig
