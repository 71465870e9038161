"""Figures of what the trained models did: learning curves, hyperparameter importance, confusion
matrices, and predictions against the truth (same style as `study.reporting.figures`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from study.reporting.figures import NEUTRAL, label


def learning_curves(
    histories: pd.DataFrame, runs: list[tuple[str, str, tuple, int | None]], metric_key: str,
    loss_label: str, metric_label: str,
) -> Figure:
    """Train (solid) and validation (dashed) curves of a few runs: loss left, metric right.

    `runs` holds (legend label, run id, colour, best epoch) for each curve pair.
    """
    fig = Figure(figsize=(12.5, 5.0), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    # Stars of runs whose best epochs coincide would hide each other: each run's sits a little apart.
    nudges = np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else np.zeros(1)
    for (name, run_id, colour, best_epoch), nudge in zip(runs, nudges):
        history = histories[histories["run_id"] == run_id]
        for ax, key in ((ax_loss, "loss"), (ax_metric, metric_key)):
            for prefix, style in (("", "-"), ("val_", "--")):
                series = history[history["key"] == prefix + key].sort_values("epoch")
                ax.plot(series["epoch"], series["value"], ls=style, color=colour, lw=2,
                        marker="o" if len(series) <= 15 else None, ms=4)
                if prefix and best_epoch is not None:
                    at = series[series["epoch"] == best_epoch]
                    ax.plot(at["epoch"] + nudge, at["value"], "*", color=colour, ms=15, mec="black", mew=0.6,
                            zorder=4)
    for ax, title, ylabel in ((ax_loss, "Loss", loss_label), (ax_metric, metric_label.capitalize(), metric_label)):
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric_key == "accuracy":
        # The first epochs' low accuracies would flatten the region where the runs differ: the axis
        # starts at the lowest validation accuracy of the second epoch on, and says so.
        later = histories[(histories["key"] == "val_accuracy") & (histories["epoch"] >= 2)]["value"]
        if not later.empty:
            low = max(0.0, float(later.min()) - 0.02)
            ax_metric.set_ylim(low, min(1.0, float(histories[histories["key"].isin(["accuracy", "val_accuracy"])]
                                                   ["value"].max()) + 0.01))
            ax_metric.set_title(f"{metric_label.capitalize()} (axis from {low:.2f}; epoch 1 may lie below)")
    handles = [Line2D([], [], color=colour, lw=3, label=name) for name, _, colour, _ in runs]
    handles += [
        Line2D([], [], color=NEUTRAL, lw=2, ls="-", label="training"),
        Line2D([], [], color=NEUTRAL, lw=2, ls="--", label="validation"),
        Line2D([], [], marker="*", ls="", color=NEUTRAL, ms=13, label="best epoch (model kept)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False)
    return fig


def importance(results: dict[str, dict[str, float]]) -> Figure:
    """One horizontal bar panel per evaluator, parameters in the same order (the first evaluator's)."""
    first = next(iter(results.values()))
    names = sorted({p for values in results.values() for p in values}, key=lambda p: -first.get(p, 0.0))
    fig = Figure(figsize=(12.0, 0.45 * len(names) + 2.3), layout="constrained")
    axes = fig.subplots(1, len(results), sharey=True, squeeze=False).ravel()
    for ax, (evaluator, values) in zip(axes, results.items()):
        if not values:
            ax.text(0.5, 0.5, "not available\n(too few completed trials\nor all scores equal)",
                    ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
        bars = ax.barh(range(len(names)), [values.get(p, 0.0) for p in names], color="#7a7a7a", height=0.6)
        ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=10)
        ax.set(title=evaluator, xlabel="importance (normalised, sums to 1)")
    top = max((v for values in results.values() for v in values.values()), default=0.0)
    axes[0].set_xlim(0, top * 1.18 or 1.0)  # shared scale, so bar lengths compare across evaluators
    for ax in axes[1:]:
        ax.set_xlim(axes[0].get_xlim())
    axes[0].set_yticks(range(len(names)), [label(p) for p in names])
    axes[0].invert_yaxis()
    fig.suptitle("Hyperparameter importance by two evaluators")
    return fig


# --------------------------------------------------------------------------- the best models on the test set


def confusion_matrices(panels: list[tuple[str, np.ndarray, list]]) -> Figure:
    """One heatmap per model: counts written in the cells, colour = fraction of the true class."""
    size = max(len(labels) for _, _, labels in panels)
    side = max(4.2, 0.5 * size + 1.6)
    fig = Figure(figsize=(side * len(panels) + 1.2, side + 0.8), layout="constrained")
    fig.get_layout_engine().set(wspace=0.08)  # room between panels for the next one's tick labels
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for index, (ax, (title, counts, labels)) in enumerate(zip(axes, panels)):
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        last = index == len(panels) - 1
        text = np.where(counts > 0, counts.astype(str), "")  # empty cells stay blank, not "0"
        sns.heatmap(fractions, annot=text, fmt="", cmap="Blues", vmin=0, vmax=1, square=True,
                    cbar=last, cbar_kws={"label": "fraction of the true class", "shrink": 0.8},
                    xticklabels=labels, yticklabels=labels, annot_kws={"fontsize": 10 if size > 6 else 12}, ax=ax)
        ax.set(title=title, xlabel="predicted class", ylabel="true class")
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle("Confusion matrix on the test set (best-epoch model of each best trial)")
    return fig


def actual_vs_predicted(actual: np.ndarray, predictions: list[tuple[str, np.ndarray, tuple]]) -> Figure:
    """The test series and each model's one-step-ahead prediction of it."""
    fig = Figure(figsize=(12.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(np.arange(len(actual)), actual, color="black", lw=2.2, label="actual (test)")
    for name, values, colour in predictions:
        ax.plot(np.arange(len(values)), values, color=colour, lw=1.8, ls="--", label=name)
    ax.set(xlabel="time step in the test window", ylabel="series value (target units)",
           title="Actual vs predicted on the test window (best-epoch model of each best trial)")
    fig.legend(loc="outside lower center", ncol=min(len(predictions) + 1, 5), frameon=False)
    return fig
