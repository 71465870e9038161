"""A report's figures: for each, gather its data from what `study.reporting.build` built (tables, the
study's config) and what `study.store.tracking` reads back (per-epoch histories, the logged best-epoch
models), draw it with `study.reporting.figures`, and caption it, or say in `warnings` why it cannot.

`REPORT_FIGURES` lists them in the order the report shows them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from study.store import tracking
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig
from study.reporting.figures import _cell_first, cost, distribution, isolation, objective_vs_params, palette, two_way
from study.reporting.model_figures import actual_vs_predicted, confusion_matrices, importance, learning_curves


@dataclass
class ReportData:
    """What a report's figures draw from: the study's tables and how to read them."""

    trials: pd.DataFrame
    best: pd.DataFrame  # study.analysis.scoring.best_per_value of `primary`
    two_way: pd.DataFrame | None  # study.reporting.build.two_way_table of (primary, secondary)
    score: str  # the score column, `best_<metric>`
    score_label: str
    maximize: bool
    kind: str  # the task's kind: multiclass, binary or regression
    primary: str
    secondary: str | None
    order: list  # the primary dimension's values in reading order
    config: SweepConfig | None
    tracking_uri: str
    importances: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluator -> param -> importance
    warnings: list[str] = field(default_factory=list)  # figures append why they are missing
    replicates: pd.DataFrame | None = None  # finished replicate runs (study replicate), like `trials`

    @property
    def colours(self) -> dict:
        return palette(self.primary, self.order)

    def name(self, value) -> str:
        return str(value) if self.primary == "cell" else f"{self.primary} = {value}"

    def best_runs(self, limit: int | None = None) -> pd.DataFrame:
        """The best trial of each compared value with its run id, in the values' order; with `limit`,
        only that many of the highest-scoring ones."""
        rows = self.best.dropna(subset=["trial"]).merge(self.trials[["trial", "mlflow_run_id"]], on="trial")
        if limit is not None:
            kept = rows.sort_values(self.score, ascending=not self.maximize).head(limit)
            rows = rows[rows["trial"].isin(kept["trial"])]
        return rows


@dataclass
class Drawn:
    stem: str  # file name without extension
    title: str
    caption: str
    figure: Figure


def isolation_figure(data: ReportData, top: int = 3) -> Drawn:
    seeded = data.replicates is not None and not data.replicates.empty
    spread = ("Small dashes are the best configuration retrained with new seeds (study replicate), the bar their "
              "mean ± one standard deviation: seed-to-seed noise." if seeded else
              f"There are no replicate seeds yet, so the bar is the range of the top {top} trials of that value, "
              "not seed-to-seed noise.")
    return Drawn("isolation", f"Best trial per {data.primary}", (
        f"The best completed search trial of each {data.primary} value, with its score. {spread} n counts the "
        "completed search trials. The score axis is zoomed to the data (it does not start at zero) where the "
        "axis label says so."),
        isolation(data.trials, data.primary, data.score, data.order, data.colours, data.maximize,
                  data.score_label, top, data.replicates))


def distribution_figure(data: ReportData) -> Drawn:
    return Drawn("distribution", f"All trials per {data.primary}", (
        "Every trial: box (quartiles, whiskers at 1.5 IQR) and points for completed trials, hollow points for "
        "pruned trials at the score they had when pruned, crosses under the dotted line for failed trials (no "
        "score). A best value drawn from a wide spread or from mostly failed trials is fragile."),
        distribution(data.trials, data.primary, data.score, data.order, data.colours, data.score_label))


def two_way_figure(data: ReportData) -> Drawn | None:
    if data.two_way is None:
        return None
    first, second = data.primary, data.secondary
    table = data.two_way.dropna(subset=["best"]).astype({first: str, second: str})
    # Cells keep their colours: when cell is one of the two dimensions, it is the hue.
    hue, x = (first, second) if first == "cell" or second != "cell" else (second, first)
    orders = {d: [str(v) for v in _reading_order(data, d)] for d in (x, hue)}
    counts = table["complete"]
    equal = counts.nunique() == 1
    fairness = (f"Every combination had {counts.iloc[0]} completed trials." if equal else
                f"The combinations had unequal numbers of completed trials ({counts.min()} to {counts.max()}: "
                f"`{second}` was not given an equal budget), and a best of more trials is higher by chance alone: "
                "compare the means, and read n.")
    return Drawn("two_way", f"Best and mean per {first} and {second}", (
        f"Every {first} × {second} combination (the two-way table): the best completed trial (filled dot, value "
        f"beside it) and the mean of its completed trials (open dot), n = completed trials; one line per {hue}. "
        f"{fairness} The score axis is zoomed to the data, not from zero."),
        two_way(table, x, hue, orders[x], orders[hue], data.score_label))


def _reading_order(data: ReportData, dimension: str) -> list:
    if dimension == data.primary:
        return data.order
    hp = data.config.hyperparameters.get(dimension) if data.config else None
    present = list(data.trials[dimension].dropna().unique())
    listed = [v for v in (hp.choices or ()) if v in present] if hp else []
    return listed + sorted((v for v in present if v not in listed), key=_cell_first)


def objective_figure(data: ReportData) -> Drawn | None:
    trials = data.trials
    searched = list(data.config.searched) if data.config else list(HYPERPARAMETERS)
    params = [p for p in searched if p != data.primary and p in trials and trials[p].nunique() > 1]
    if not params:
        return None  # only the compared dimension was searched: the distribution figure shows it
    if data.config:
        log_params = {p for p, hp in data.config.searched.items() if hp.log}
    else:
        log_params = {"learning_rate"} & set(params)
    return Drawn("objective_vs_params", "Score against each searched hyperparameter", (
        "The score of every completed trial against each searched hyperparameter (colour = cell; log axes where "
        "the range was searched on a log scale); crosses at the bottom are failed trials. Look for best points "
        "at the edge of a range, and for regions where a cell fails."),
        objective_vs_params(trials, params, data.score, data.score_label, log_params))


def curves_figure(data: ReportData) -> Drawn | None:
    rows = data.best_runs()
    if rows.empty:
        return None  # no completed trial: the warnings already say so
    key = "mae" if data.kind == "regression" else "accuracy"
    histories = tracking.load_histories(data.tracking_uri, list(rows["mlflow_run_id"]), ["loss", "val_loss", key, f"val_{key}"])
    if histories.empty:
        data.warnings.append("no per-epoch metrics were logged for the best trials: no learning curves")
        return None
    runs = [(f"{data.name(r[data.primary])} (trial {r['trial']})", r["mlflow_run_id"], data.colours[r[data.primary]],
             None if pd.isna(r["best_epoch"]) else int(r["best_epoch"])) for _, r in rows.iterrows()]
    loss = "loss (MSE)" if data.kind == "regression" else "loss (cross-entropy)"
    metric = "MAE (target units)" if key == "mae" else "accuracy (fraction correct)"
    return Drawn("learning_curves", f"Learning curves of the best trial per {data.primary}", (
        f"Training (solid) and validation (dashed) loss and {key} per epoch of the best trial of each "
        f"{data.primary}; the star marks the epoch whose weights were kept, scored and tested."),
        learning_curves(histories, runs, key, loss, metric))


def cost_figure(data: ReportData) -> Drawn | None:
    if not data.trials["param_count"].notna().any():
        return None
    return Drawn("cost", "Score against model size and training time", (
        "The score of every completed trial against its parameter count and its training time (all epochs, on "
        "the machine that ran it). The dashed step line is the Pareto front of size: the best score any trial "
        "reached at or below each parameter count. Equal units are not equal size: an LSTM has about 4× and a "
        "GRU 3× the recurrent weights of a SimpleRNN."),
        cost(data.trials, data.score, data.score_label, data.maximize))


def importance_figure(data: ReportData) -> Drawn | None:
    if not any(data.importances.values()):
        return None
    return Drawn("importance", "Hyperparameter importance: fANOVA and PED-ANOVA", (
        "How much each searched hyperparameter explains the score, by two of Optuna's evaluators over the "
        "completed trials. **fANOVA** fits a random forest from hyperparameters to score and splits its variance "
        "(seeded). **PED-ANOVA**, Optuna 5's default, measures how differently the top trials' values are "
        "distributed from all trials'. They answer different questions and can rank parameters differently: "
        "read them together."),
        importance(data.importances))


MODEL_NOTE = (" The models are the logged best-epoch models (the `model.keras` artifact of each trial's run, holding "
              "the weights of its best validation epoch), not retrained.")


def task_figure(data: ReportData, max_models: int = 4) -> Drawn | None:
    """Confusion matrices (classification) or the predicted test series (regression) of the best models."""
    what = "actual-vs-predicted figure" if data.kind == "regression" else "confusion matrix"
    if data.config is None:
        data.warnings.append(f"no {what}: the parent run holds no sweep definition to load the test data from")
        return None
    from study.train.data import load_task  # the task's loader, only when a report needs test data

    try:
        test = load_task(data.config.task)
    except Exception as err:  # noqa: BLE001 - e.g. MNIST offline: the rest of the report stands
        data.warnings.append(f"no {what}: the test data of task `{data.config.task.name}` could not be loaded ({err})")
        return None
    rows = data.best_runs(limit=max_models)
    predicted = predict_best(data.tracking_uri, list(rows["mlflow_run_id"]), test.x_test)
    missing = [str(t) for t, p in zip(rows["trial"], predicted) if p is None]
    if missing:
        data.warnings.append(f"no `model.keras` logged for trial(s) {', '.join(missing)} (a sweep with "
                             f"`log_models: false`?): left out of the {what}")
    models = [(r, p) for (_, r), p in zip(rows.iterrows(), predicted) if p is not None]
    if not models:
        return None
    if data.kind == "regression":
        actual = test.y_test.ravel()
        series = [(f"{data.name(r[data.primary])} (trial {r['trial']}, test MAE "
                   f"{np.mean(np.abs(p.ravel() - actual)):.3g})", p.ravel(), data.colours[r[data.primary]])
                  for r, p in models]
        return Drawn("actual_vs_predicted", "Actual vs predicted on the test window", (
            f"The test series and the one-step-ahead predictions of the best trial of each {data.primary}."
            + MODEL_NOTE), actual_vs_predicted(actual, series))
    classes = test.num_classes or 2
    panels = []
    for r, p in models:
        predicted_classes = p.argmax(axis=-1) if p.shape[-1] > 1 else (p.ravel() > 0.5).astype(int)
        accuracy = np.mean(predicted_classes == test.y_test)
        counts = np.zeros((classes, classes), dtype=int)
        np.add.at(counts, (test.y_test.astype(int).ravel(), predicted_classes), 1)
        panels.append((f"{data.name(r[data.primary])} (trial {r['trial']})\ntest accuracy {accuracy:.3f}",
                       counts, list(range(classes))))
    return Drawn("confusion_matrix", "Confusion matrix of the best models", (
        f"Test-set confusion matrix of the best trial of each {data.primary} (at most {max_models})." + MODEL_NOTE),
        confusion_matrices(panels))


def predict_best(tracking_uri: str, run_ids: list[str], x: np.ndarray) -> list[np.ndarray | None]:
    """Each run's logged best-epoch model (`model.keras`) applied to `x`; None where none was logged."""
    if "tensorflow" not in sys.modules:
        # Loading a saved model makes TensorFlow's graph optimizer log harmless "E0000 ... failed"
        # lines that read like a crash; only a report loads models, so it silences them.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from study.train.backend import keras  # TensorFlow takes seconds to load: only this figure pays for it

    predictions: list[np.ndarray | None] = []
    with tempfile.TemporaryDirectory() as folder:
        for run_id in run_ids:
            try:
                path = tracking.download_artifact(tracking_uri, run_id, "model.keras", Path(folder) / run_id)
                model = keras.saving.load_model(path, compile=False)  # raises too where none was logged
            except Exception:  # noqa: BLE001 - MLflow's missing-artifact error cannot be imported here
                predictions.append(None)  # the figure names the trials without a model
                continue
            predictions.append(np.asarray(model.predict(x, batch_size=1024, verbose=0)))
    return predictions


# In the order the report shows them, each with the step message the CLI prints.
REPORT_FIGURES = (
    ("isolation plot", isolation_figure),
    ("distribution of all trials", distribution_figure),
    ("two-way comparison", two_way_figure),
    ("score against each hyperparameter", objective_figure),
    ("learning curves", curves_figure),
    ("cost", cost_figure),
    ("hyperparameter importance", importance_figure),
    ("best models on the test set", task_figure),
)
