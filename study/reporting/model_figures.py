"""Figures of what the trained models did: learning curves, hyperparameter importance, confusion
matrices, and predictions against the truth (same style and sizes as `study.reporting.figures`:
all of them PAGE wide, panels side by side)."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from study.reporting.figures import FONT, HEIGHT, NEUTRAL, PAGE, label, new_figure
from study.reporting.labels import fit_ticks, legend_below

CHARACTER = 0.62 * FONT / 72  # inches a digit takes at FONT: a confusion matrix's cell holds its count


def learning_curves(
    histories: pd.DataFrame, runs: list[tuple[str, str, tuple, int | None]], metric_key: str,
    loss_label: str, metric_label: str,
) -> Figure:
    """Train (solid) and validation (dashed) curves of a few runs: loss left, metric right.

    `runs` holds (legend label, run id, colour, best epoch) for each curve pair.
    """
    fig = new_figure(PAGE, HEIGHT + 1.0)
    ax_loss, ax_metric = fig.subplots(1, 2)
    # Stars of runs whose best epochs coincide would hide each other: each run's sits a little apart.
    nudges = np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else np.zeros(1)
    for (name, run_id, colour, best_epoch), nudge in zip(runs, nudges):
        history = histories[histories["run_id"] == run_id]
        for ax, key in ((ax_loss, "loss"), (ax_metric, metric_key)):
            for prefix, style in (("", "-"), ("val_", "--")):
                series = history[history["key"] == prefix + key].sort_values("epoch")
                ax.plot(series["epoch"], series["value"], ls=style, color=colour, lw=2.2,
                        marker="o" if len(series) <= 15 else None, ms=5)
                if prefix and best_epoch is not None:
                    at = series[series["epoch"] == best_epoch]
                    ax.plot(at["epoch"] + nudge, at["value"], "*", color=colour, ms=15, mec="black", mew=0.6,
                            zorder=4)
    for ax, ylabel in ((ax_loss, loss_label), (ax_metric, metric_label)):
        ax.set(xlabel="epoch", ylabel=ylabel, title=ylabel[0].upper() + ylabel[1:])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric_key == "accuracy":
        # The first epochs' low accuracies would flatten the region where the runs differ: the axis
        # starts at the lowest validation accuracy of the second epoch on, and says so.
        later = histories[(histories["key"] == "val_accuracy") & (histories["epoch"] >= 2)]["value"]
        if not later.empty:
            low = max(0.0, float(later.min()) - 0.02)
            ax_metric.set_ylim(low, min(1.0, float(histories[histories["key"].isin(["accuracy", "val_accuracy"])]
                                                   ["value"].max()) + 0.01))
            ax_metric.set_title(f"{metric_label[0].upper() + metric_label[1:]} (axis from {low:.2f})")
    handles = [Line2D([], [], color=colour, lw=3, label=name) for name, _, colour, _ in runs]
    handles += [
        Line2D([], [], color=NEUTRAL, lw=2, ls="-", label="training"),
        Line2D([], [], color=NEUTRAL, lw=2, ls="--", label="validation"),
        Line2D([], [], marker="*", ls="", color=NEUTRAL, ms=15, label="best epoch (model kept)"),
    ]
    legend_below(fig, handles)
    fit_ticks(fig)
    return fig


def importance(results: dict[str, dict[str, float]]) -> Figure:
    """One horizontal bar panel per evaluator, parameters in the same order (the first evaluator's)."""
    first = next(iter(results.values()))
    names = sorted({p for values in results.values() for p in values}, key=lambda p: -first.get(p, 0.0))
    fig = new_figure(PAGE, 0.55 * len(names) + 2.4)
    axes = fig.subplots(1, len(results), sharey=True, squeeze=False).ravel()
    for ax, (evaluator, values) in zip(axes, results.items()):
        if not values:
            ax.text(0.5, 0.5, "not available\n(too few completed trials\nor all scores equal)",
                    ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
        bars = ax.barh(range(len(names)), [values.get(p, 0.0) for p in names], color="#7a7a7a", height=0.6)
        ax.bar_label(bars, fmt="%.2f", padding=4)
        ax.set(title=evaluator, xlabel="importance (sums to 1)")
    top = max((v for values in results.values() for v in values.values()), default=0.0)
    axes[0].set_xlim(0, top * 1.25 or 1.0)  # shared scale, so bar lengths compare across evaluators
    # No tick at the panel's right edge, where it would sit against the next panel's 0, nor past 1.
    limit = axes[0].get_xlim()[1]
    ticks = [t for t in MaxNLocator(nbins=4).tick_values(0, limit) if 0 <= t <= min(1.0, 0.92 * limit)]
    for ax in axes:
        ax.set_xlim(axes[0].get_xlim())
        ax.set_xticks(ticks)
    axes[0].set_yticks(range(len(names)), [label(p) for p in names])
    axes[0].invert_yaxis()
    fig.suptitle("Hyperparameter importance by two evaluators")
    fit_ticks(fig)
    return fig


# --------------------------------------------------------------------------- the best models on the test set


def confusion_matrices(panels: list[tuple[str, np.ndarray, list]]) -> Figure:
    """One heatmap per model, as many side by side as fit the page: colour = fraction of the true
    class, and in each cell its count, or its percentage of the true class where counts reach four
    digits (a cell holds three at FONT)."""
    size = max(len(labels) for _, _, labels in panels)
    largest = max(int(counts.max()) for _, counts, _ in panels)
    percent = largest >= 1000
    digits = 3 if percent else len(str(largest))
    side = max(3.4, size * (max(digits, 2) * CHARACTER + 0.08))
    # Each panel needs its class labels and axis label beside it, and the colour bar its own strip.
    columns = max(1, min(len(panels), int((PAGE - 1.2) // (side + 0.9))))
    rows = math.ceil(len(panels) / columns)
    fig = new_figure(PAGE, rows * (side + 1.6) + 0.7)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    image = None
    for ax, (title, counts, labels) in zip(axes, panels):
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        shown = np.rint(100 * fractions).astype(int) if percent else counts
        image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
        for (row, column), value in np.ndenumerate(shown):
            if value > 0:  # empty cells stay blank, not "0"
                ax.text(column, row, str(value), ha="center", va="center",
                        color="white" if fractions[row, column] > 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.grid(False)
        ax.set(title="\n".join(textwrap.fill(line, int(side / CHARACTER)) for line in title.split("\n")),
               xlabel="predicted class", ylabel="true class")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[:len(panels)]), shrink=0.8, label="fraction of the true class")
    fig.suptitle("Confusion matrix on the test set" + (" (% of each true class)" if percent else " (counts)"))
    fit_ticks(fig)
    return fig


def actual_vs_predicted(actual: np.ndarray, predictions: list[tuple[str, np.ndarray, tuple]]) -> Figure:
    """The test series and each model's one-step-ahead prediction of it."""
    fig = new_figure(PAGE, HEIGHT + 1.0)
    ax = fig.add_subplot()
    ax.plot(np.arange(len(actual)), actual, color="black", lw=2.4)
    handles = [Line2D([], [], color="black", lw=2.4, label="actual (test)")]
    for name, values, colour in predictions:
        ax.plot(np.arange(len(values)), values, color=colour, lw=2, ls="--")
        handles.append(Line2D([], [], color=colour, lw=2, ls="--", label=name))
    ax.set(xlabel="time step in the test window", ylabel="series value",
           title="Actual vs predicted on the test window")
    legend_below(fig, handles)
    fit_ticks(fig)
    return fig
