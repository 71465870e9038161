"""Figures: seaborn plots of a study's trials, one readable style, one colour per cell.

The style (sizes, fonts, theme, palette, labels, `save`) and the figures of the trials themselves
are here; the figures of the verdict's evidence are in `study.reporting.evidence_figures`, those of
what the models did in `study.reporting.model_figures`, those across tasks in
`study.reporting.across_figures`, and the placing of text that must not collide in
`study.reporting.labels`.

Every plotting function takes plain data (DataFrames, arrays, dicts) and returns a matplotlib
`Figure`; `save` writes it as PNG (200 dpi) and vector PDF, or whatever formats the report asks
for. Nothing here reads a store: `study.reporting.figure_data` gathers each figure's data and
writes its caption. Figures are built on `Figure` objects rather than pyplot, and the seaborn theme
is applied inside `theme()` only, so a notebook's own pyplot state and style are left alone. A cell
keeps the same colour in every figure (`CELL_COLOURS`, from seaborn's colour-blind palette); failed
trials are drawn as crosses in a strip below the data, since they have no score. Axis labels are
short ("best val. accuracy"); the unit, and whether a score axis is zoomed (`zoom_note`), go in the
caption.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
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
from study.reporting.labels import fit_ticks, legend_below, place, renderer
from study.spec.hyperparameters import CELLS, HYPERPARAMETERS

DPI = 200
# Sizes, for pasting into an A4 paper of two 8.5 cm columns: every figure is drawn at 1.9 times the
# size it prints at. A figure of one panel is COLUMN wide (6.4 in, printed one column: 8.5 cm), one
# of panels side by side (or of many groups) PAGE wide (13.4 in, printed across both columns:
# 17.8 cm); a row of panels is HEIGHT tall. The smallest text, FONT (15.5 pt), prints at 8 pt
# either way; at 200 dpi it is 43 px tall, still 21 px at 50% zoom.
COLUMN, PAGE, HEIGHT = 6.4, 13.4, 4.0
PRINT_SCALE = 8.5 / (COLUMN * 2.54)  # 0.52: what a page placing a figure at its print size scales it by
FONT, TITLE = 15.5, 17.0
GROUPS_PER_COLUMN = 4  # more compared values than this and a one-panel figure is PAGE wide
NEUTRAL = "#555555"
FAILED_STYLE = {"marker": "x", "s": 60, "linewidths": 2.0}

# Short enough for an axis at FONT (about 20 characters); what they mean is in README's search space.
LABELS = {
    "cell": "cell",
    "units": "units per layer",
    "depth": "recurrent layers",
    "activation": "activation",
    "input_dropout": "input dropout",
    "recurrent_dropout": "recurrent dropout",
    "output_dropout": "output dropout",
    "bidirectional": "bidirectional",
    "dense_units": "dense units",
    "dense_dropout": "dense dropout",
    "dropout": "input dropout",  # its name in studies made before issue 17
    "head_dropout": "head dropout",  # likewise
    "embedding_dim": "embedding size",
    "optimizer": "optimizer",
    "learning_rate": "learning rate",
    "clipnorm": "gradient clip norm",
    "param_count": "parameters",
    "train_seconds": "training time (s)",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def score_axis(score: str) -> str:
    """A score column as a short axis label: `best_val_accuracy` -> 'best val. accuracy'."""
    name = score.removeprefix("best_").replace("val_", "val. ").replace("_", " ")
    return "best " + " ".join(word.upper() if word in ("mae", "mse") else word for word in name.split(" "))


def zoom_note(axes) -> str:
    """A caption's sentence for score axes that do not start at zero, or ''."""
    zoomed = any(not (low <= 0 <= high) for low, high in (sorted(ax.get_ylim()) for ax in axes))
    return " The score axis is zoomed to the data: it does not start at 0." if zoomed else ""


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """seaborn's whitegrid style at the report's sizes (FONT, TITLE), for the figures built inside only."""
    sizes = {"font.size": FONT, "axes.labelsize": FONT, "axes.titlesize": TITLE, "figure.titlesize": TITLE,
             "xtick.labelsize": FONT, "ytick.labelsize": FONT, "legend.fontsize": FONT,
             "legend.title_fontsize": FONT,
             # Room between texts the constrained layout packs: 0.1 in, 1.3 mm printed.
             "figure.constrained_layout.h_pad": 0.1, "figure.constrained_layout.w_pad": 0.1}
    with mpl.rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("talk"), **sizes}):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure at the report's resolution, laid out by matplotlib's constrained layout, with an Agg
    canvas: what measures text (seaborn's tick checks, `study.reporting.labels`) reuses its renderer
    rather than drawing a new one each time (3 s for a confusion matrix without)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    renderer(fig)
    return fig


def width_for(groups: int) -> float:
    return COLUMN if groups <= GROUPS_PER_COLUMN else PAGE


def wrap(value, width: float, groups: int) -> str:
    """A tick label broken into lines that fit its share of a `width`-inch axis holding `groups`
    ticks, at spaces and hyphens only: a name cut into 6-letter pieces reads worse than one stood
    upright (`study.reporting.labels.fit_ticks`), which is what a name too long for its share gets."""
    characters = max(10, int((width - 1.4) / max(groups, 1) / (0.62 * FONT / 72)))
    return textwrap.fill(str(value), characters, break_long_words=False, break_on_hyphens=True)


def category_ticks(ax, values: list, width: float, notes: list[str] | None = None) -> list[str]:
    """Label an axis's categories 0, 1, ...: each name wrapped to its share of a `width`-inch axis,
    its note (a count, n) on the lines under it. Returns the same labels on one line each, which
    `study.reporting.labels.fit_ticks` stands upright where the wrapped ones would collide."""
    notes = notes or [""] * len(values)
    ax.set_xticks(range(len(values)), [f"{wrap(v, width, len(values))}\n{note}".strip()
                                       for v, note in zip(values, notes)])
    ax.set_xlim(-0.6, len(values) - 0.4)
    return [", ".join([str(v), *note.split("\n")]) if note else str(v) for v, note in zip(values, notes)]


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
    low, high = ax.get_ylim()
    line = 2 * y - low  # as far above the crosses as the axis is below
    ax.axhline(line, color="#bbbbbb", lw=1.0, ls=":")
    # No score tick in the band: a cross beside "0.80" would read as a trial that scored 0.80.
    ax.set_yticks([tick for tick in ax.get_yticks() if line <= tick <= high])
    ax.set_ylim(low, high)
    if len(positions):
        ax.scatter(positions, [y] * len(positions), c=colours, zorder=3, **FAILED_STYLE)


def _jitter(count: int, width: float = 0.25, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-width / 2, width / 2, count)


def _legend_handles(colours: dict, title_marker: str = "o") -> list[Line2D]:
    return [Line2D([], [], marker=title_marker, ls="", color=c, ms=10, label=str(v)) for v, c in colours.items()]


def _failed_handle() -> Line2D:
    return Line2D([], [], marker="x", ls="", color=NEUTRAL, ms=9, mew=2.0, label="failed (no score)")


def _is_numeric_axis(values: pd.Series, name: str) -> bool:
    """A continuous axis for searched ranges; a categorical one for choices and booleans."""
    dim = HYPERPARAMETERS.get(name)
    if dim is not None and dim.kind in ("categorical", "bool"):
        return False
    # Floats are drawn on a number line however few were drawn: 0.00105 as a category reads as noise.
    return (dim is not None and dim.kind == "float") or values.nunique() > 6


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
    score_label: str, top: int = 3,
) -> Figure:
    """Best score per compared value, labelled, and a bar over the range of its best `top` trials.

    The best of n noisy trials is the least trustworthy statistic a study has; the replicates and
    paired-draws figures (`study.reporting.evidence_figures`) carry the verdict."""
    width = width_for(len(order))
    fig = new_figure(width, HEIGHT)
    ax = fig.add_subplot()
    done = _completed(trials, score)
    counts, points, texts = [], [], []
    for x, value in enumerate(order):
        scores = done.loc[done[by] == value, score].sort_values(ascending=not maximize)
        counts.append(f"n = {len(scores)}")
        if scores.empty:
            ax.text(x, 0.5, "no completed\ntrial", ha="center", va="center", color=NEUTRAL,
                    transform=ax.get_xaxis_transform())
            continue
        best = scores.iloc[:top]
        if len(best) > 1:
            ax.vlines(x, best.min(), best.max(), color=colours[value], lw=8, alpha=0.35, zorder=2)
        ax.plot(x, best.iloc[0], "o", ms=13, color=colours[value], mec="white", mew=1.5, zorder=3)
        points.append((x, best.iloc[0]))
        texts.append(f"{best.iloc[0]:.4g}")
    upright = category_ticks(ax, order, width, counts)
    ax.margins(y=0.2)
    ax.set(xlabel=label(by), ylabel=score_label, title=f"Best trial per {by}")
    legend_below(fig, [
        Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=11, label="best search trial"),
        Line2D([], [], color=NEUTRAL, lw=8, alpha=0.35, label=f"range of the top {top}"),
    ])
    fit_ticks(fig, {ax: upright})
    place(ax, points, texts, gap=9)
    return fig


def distribution(
    trials: pd.DataFrame, by: str, score: str, order: list, colours: dict, score_label: str,
) -> Figure:
    """Every trial per compared value: box and points of completed trials, pruned hollow, failed crosses."""
    width = width_for(len(order))
    fig = new_figure(width, HEIGHT + 0.6)
    ax = fig.add_subplot()
    done = _completed(trials, score)
    hue = "cell" if by != "cell" and "cell" in trials and trials["cell"].nunique() > 1 else by
    hue_colours = palette(hue, _order(trials[hue])) if hue != by else colours
    positions = {value: x for x, value in enumerate(order)}
    if not done.empty:
        sns.boxplot(data=done, x=by, y=score, order=order, hue=by, palette=colours, fill=False,
                    showfliers=False, width=0.5, linewidth=1.8, legend=False, ax=ax)
        sns.stripplot(data=done, x=by, y=score, order=order, hue=hue, palette=hue_colours, jitter=0.15,
                      size=8, alpha=0.85, edgecolor="white", linewidth=0.6, legend=False, ax=ax, zorder=3)
    pruned = trials[(trials["state"] == "PRUNED") & trials[score].notna() & trials[by].isin(order)]
    if not pruned.empty:
        ax.scatter([positions[v] for v in pruned[by]] + _jitter(len(pruned)), pruned[score],
                   facecolors="none", edgecolors=[hue_colours[v] for v in pruned[hue]], s=70, lw=1.8, zorder=3)
    upright = category_ticks(ax, order, width, [_counts(trials, by, value) for value in order])
    no_score = trials[trials["state"].isin(["FAIL", "PRUNED"]) & trials[score].isna() & trials[by].isin(order)]
    if not no_score.empty:
        _draw_failed(ax, _failed_band(ax), np.array([positions[v] for v in no_score[by]]) + _jitter(len(no_score)),
                     [hue_colours[v] for v in no_score[hue]])
    ax.set(xlabel=label(by), ylabel=score_label, title=f"All trials per {by}")
    handles = [Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=10, label="completed")]
    if not pruned.empty:
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", color=NEUTRAL, ms=10, mew=1.8,
                              label="pruned (score so far)"))
    if not no_score.empty:
        handles.append(_failed_handle())
    if hue != by:
        handles += _legend_handles(hue_colours)
    if len(handles) > 1:  # "completed" alone needs no legend
        legend_below(fig, handles)
    fit_ticks(fig, {ax: upright})
    return fig


def _counts(trials: pd.DataFrame, by: str, value) -> str:
    states = trials.loc[trials[by] == value, "state"]
    others = [f"{n} {word}" for state, word in (("PRUNED", "pruned"), ("FAIL", "failed"))
              if (n := int((states == state).sum()))]
    # One count per line keeps neighbouring labels apart when there are many values.
    return "\n".join([f"{(states == 'COMPLETE').sum()} complete", *others])


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
    width = width_for(len(x_order) * len(hue_order) / 1.5)
    fig = new_figure(width, HEIGHT + 0.6)
    ax = fig.add_subplot()
    colours = palette(hue, hue_order)
    offsets = np.linspace(-0.22, 0.22, len(hue_order)) if len(hue_order) > 1 else np.zeros(1)
    points, texts, text_colours = [], [], []
    for offset, value in zip(offsets, hue_order):
        rows = table[table[hue] == value].set_index(x).reindex(x_order)
        positions = np.arange(len(x_order)) + offset
        ax.plot(positions, rows["best"], "-o", color=colours[value], ms=11, lw=1.8, mec="white", mew=1.2)
        ax.plot(positions, rows["mean"], "o", color=colours[value], ms=9, mfc="white", mew=1.8)
        for position, best, n in zip(positions, rows["best"], rows["complete"]):
            if pd.notna(best):
                points.append((position, best))
                texts.append(f"{best:.3g} (n={int(n)})")
                text_colours.append(_darker(colours[value]))
    upright = category_ticks(ax, x_order, width)
    ax.set_xlim(-0.7, len(x_order) - 0.3)
    ax.margins(y=0.25)
    ax.set(xlabel=label(x), ylabel=score_label, title=f"Best and mean per {x} and {hue}")
    legend_below(fig, [*_legend_handles(colours),
                       Line2D([], [], marker="o", ls="", color=NEUTRAL, ms=10, label="best"),
                       Line2D([], [], marker="o", ls="", color=NEUTRAL, mfc="white", mew=1.8, ms=9, label="mean")])
    fit_ticks(fig, {ax: upright})
    place(ax, points, texts, colours=text_colours)
    return fig


def _darker(colour, by: float = 0.25) -> tuple:
    """A colour darkened towards black: text in a point's colour, legible on white."""
    return tuple((1 - by) * channel for channel in mpl.colors.to_rgb(colour))


# --------------------------------------------------------------------------- search and cost


def objective_vs_params(
    trials: pd.DataFrame, params: list[str], score: str, score_label: str, log_params: set[str],
) -> Figure:
    """The score of every trial against each searched hyperparameter, one panel each, colour = cell."""
    columns = min(3, len(params))
    rows = math.ceil(len(params) / columns)
    fig = new_figure(COLUMN if columns == 1 else PAGE, (HEIGHT - 0.6) * rows + 1.4)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    done = _completed(trials, score)
    failed = trials[trials[score].isna() & (trials["state"] != "RUNNING")]
    colours = palette("cell", _order(trials["cell"]))
    upright = {}
    for ax, param in zip(axes, params):
        if _is_numeric_axis(trials[param], param):
            sns.scatterplot(data=done, x=param, y=score, hue="cell", palette=colours, s=60, alpha=0.85,
                            edgecolor="white", legend=False, ax=ax)
            if param in log_params:
                _log_x(ax)
        else:
            values = _order(trials[param])
            sns.stripplot(data=done, x=param, y=score, order=values, hue="cell", palette=colours,
                          jitter=0.2, size=7, alpha=0.85, legend=False, ax=ax)
            upright[ax] = category_ticks(ax, values, PAGE / columns + 1.4)
        ax.set(xlabel=label(param), ylabel="")
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
    fig.supylabel(score_label, fontsize=FONT)  # once for the shared axis, not once per row
    fig.suptitle("Score against each searched hyperparameter" if columns > 1 else "Score against each hyperparameter")
    legend_below(fig, _legend_handles(colours) + ([_failed_handle()] if not failed.empty else []))
    fit_ticks(fig, upright)
    return fig


def cost(trials: pd.DataFrame, score: str, score_label: str, maximize: bool = True) -> Figure:
    """The score against model size and training time: what each cell's accuracy costs, with the
    Pareto front of size (the best score reached at or below each size) as a grey step line."""
    fig = new_figure(PAGE, HEIGHT + 0.6)
    axes = fig.subplots(1, 2, sharey=True)
    done = _completed(trials, score).astype({"param_count": float})
    colours = palette("cell", _order(trials["cell"]))
    front_drawn = False
    for ax, x in zip(axes, ("param_count", "train_seconds")):
        sns.scatterplot(data=done, x=x, y=score, hue="cell", palette=colours, s=65, alpha=0.85,
                        edgecolor="white", legend=False, ax=ax)
        values = done[x].dropna()
        spread = values.max() / values.min() if len(values) and values.min() > 0 else 1
        if x == "param_count" or spread > 30:
            _log_x(ax, counts=x == "param_count")
        if x == "param_count" and len(done) > 1:
            ordered = done.sort_values([x, score], ascending=[True, not maximize])
            running = ordered[score].cummax() if maximize else ordered[score].cummin()
            front = ordered[ordered[score] == running].drop_duplicates(subset=[score])
            ax.step(front[x], front[score], where="post", color=NEUTRAL, lw=1.5, ls="--", zorder=1)
            front_drawn = True
        ax.set(xlabel=label(x) + (" (log scale)" if x == "param_count" or spread > 30 else ""), ylabel="")
    axes[0].set_ylabel(score_label)  # once: the axis is shared
    axes[0].set_title("against model size")
    axes[1].set_title("against training time (all epochs)")
    fig.suptitle("Cost of each trial's score")
    pareto = [Line2D([], [], color=NEUTRAL, lw=1.5, ls="--", label="Pareto front of size")] if front_drawn else []
    legend_below(fig, _legend_handles(colours) + pareto)
    fit_ticks(fig)
    return fig
