"""A report's figures: for each, gather its data from what `study.reporting.build` built (tables, the
verdict and its evidence, the study's config) and what `study.store.tracking` reads back (per-epoch
histories, the logged best-epoch models), draw it with `study.reporting.figures` (or its siblings),
and caption it: what it shows, its n, the score's unit and whether an axis is zoomed; or say in
`warnings` why it cannot.

`REPORT_FIGURES` lists them in the order they are drawn, the verdict's evidence first; `page_order`
puts first the figure that carries the verdict.
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

from study.analysis import stats
from study.analysis.verdict import Evidence, Verdict
from study.reporting import evidence_figures
from study.reporting.figures import (
    _cell_first, cost, distribution, isolation, objective_vs_params, palette, score_axis, two_way, zoom_note,
)
from study.reporting.model_figures import actual_vs_predicted, confusion_matrices, importance, learning_curves
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig
from study.store import tracking


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
    verdict: Verdict | None = None  # study.analysis.verdict.decide: its evidence and expected-best table
    paired: pd.DataFrame | None = None  # study.analysis.verdict.paired_draws, where they are evidence

    @property
    def colours(self) -> dict:
        return palette(self.primary, self.order)

    @property
    def axis_label(self) -> str:
        """The score's short name for an axis ('best val. accuracy'); `score_label`, with its unit, is
        for captions."""
        return score_axis(self.score)

    def evidence(self, kind: str) -> Evidence | None:
        """The verdict's evidence of one kind ("replicates", "paired draws"), if it has some."""
        found = [e for e in (self.verdict.evidence if self.verdict else []) if e.kind == kind]
        return found[0] if found else None

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


# --------------------------------------------------------------------------- the verdict's evidence


def replicates_figure(data: ReportData) -> Drawn | None:
    runs = data.replicates
    if runs is None or runs.empty or data.score not in runs or data.primary not in runs:
        return None
    runs = runs[runs[data.score].notna()]
    order = [v for v in data.order if v in set(runs[data.primary])]
    if not order:
        return None
    summary = stats.summarize(runs, [data.primary], data.score)
    searched = dict(zip(data.best[data.primary], data.best[data.score]))
    evidence = data.evidence("replicates")
    differences = _differences(evidence, data) if evidence is not None else None
    sequential = evidence is not None and evidence.design == "sequential"
    interval = "difference: 95% confidence sequence" if sequential else "difference: 95% Welch interval"
    figure = evidence_figures.replicates(runs, data.primary, data.score, order, data.colours, summary, searched,
                                         differences, data.axis_label, _difference_label(data), interval,
                                         _unit(data))
    counts = runs.groupby(data.primary)[data.score].count()
    valid = " (valid however often replicates were added)" if sequential else ""
    right = ("" if differences is None else
             f" Right: the difference of each pair's means, the better-ranked {data.primary} first, with its "
             f"{interval.removeprefix('difference: ')}{valid}, against no difference (dotted)"
             f"{_margin_text(differences, data)}.")
    return Drawn("replicates", f"Replicates: seed-to-seed spread per {data.primary}", (
        f"The best configuration of each {data.primary} (its best search trial) retrained with new seeds "
        "(`study replicate`): each point is one seed, the diamond their mean with a 95% t-interval; the hollow "
        "circle is the search trial itself, selected as the best of the search and so biased upward, left out of "
        f"the mean.{right} n = seeds per {data.primary}: {_counts(counts, order)}." + _score_text(data)
        + zoom_note(figure.axes[:1])), figure)


def paired_figure(data: ReportData) -> Drawn | None:
    evidence = data.evidence("paired draws")
    if data.paired is None or data.paired.empty or evidence is None:
        return None
    values = [v for v in data.order if v in data.paired.columns]
    differences = _differences(evidence, data)
    sequential = evidence.design == "sequential"
    interval = "95% confidence sequence" if sequential else "95% t-interval"
    figure = evidence_figures.paired_draws(data.paired, values, data.colours, differences, data.axis_label,
                                           _difference_label(data), interval, _unit(data))
    n = len(data.paired)
    return Drawn("paired_draws", f"Paired draws: every {data.primary} on the same nuisance values", (
        f"The verdict's paired draws: {n} draws of the nuisance hyperparameters, each trained once with every "
        f"{data.primary}. Left: each draw's score for every {data.primary}, one grey line per draw, and the mean "
        f"(diamond); lines that cross are draws on which the ranking flips. Right: the mean paired difference of "
        f"each pair, the better-ranked {data.primary} first, with its {interval}"
        f"{' (valid at every look of a sweep that ran until decided)' if sequential else ''}, against no difference "
        f"(dotted){_margin_text(differences, data)}. n = {n} draws per {data.primary}." + _score_text(data)
        + zoom_note(figure.axes[:1])), figure)


def budget_figure(data: ReportData) -> Drawn | None:
    curve = data.verdict.budget if data.verdict is not None else None
    if curve is None or curve.empty or curve["k"].nunique() < 2:
        return None  # one budget is the mean trial alone: the table says it
    order = [v for v in data.order if v in set(curve[data.primary])]
    figure = evidence_figures.expected_best(curve, data.primary, order, data.colours, data.axis_label)
    counts = curve.drop_duplicates(data.primary).set_index(data.primary)["n"]
    return Drawn("expected_best", "Expected best score against the tuning budget k", (
        f"The expected best score of k trials drawn from each {data.primary}'s completed trials, against the "
        "tuning budget k (Dodge et al. 2019, \"Show Your Work\"): k = 1 is the mean trial, the largest k the "
        f"smallest number of completed trials of any {data.primary}, so every {data.primary} is read at the same "
        "budgets. The band is a 95% percentile bootstrap over the trials. Curves that cross mean the better "
        f"{data.primary} depends on how many trials a reader can afford. n = completed trials per "
        f"{data.primary}: {_counts(counts, order)}." + _score_text(data) + zoom_note(figure.axes)), figure)


def _differences(evidence: Evidence, data: ReportData) -> pd.DataFrame | None:
    """Each tested pair, the value ranked higher by the evidence first, in the units shown (pp for
    accuracies): its mean difference, the interval and the equivalence margin."""
    if evidence.comparisons is None or evidence.comparisons.empty:
        return None
    scale = 100.0 if _unit(data) else 1.0
    rows = []
    for row in evidence.comparisons.to_dict("records"):
        first, second = row["a"], row["b"]
        sign = 1.0
        if evidence.ranking.index(second) < evidence.ranking.index(first):
            first, second, sign = second, first, -1.0
        low, high = sorted((sign * row["ci_low"] * scale, sign * row["ci_high"] * scale))
        rows.append({"first": first, "second": second, "difference": sign * row["difference"] * scale,
                     "ci_low": low, "ci_high": high, "margin": row.get("margin", np.nan) * scale})
    return pd.DataFrame(rows, columns=evidence_figures.DIFFERENCE_COLUMNS)


def _unit(data: ReportData) -> str:
    return " pp" if any(word in data.score for word in stats.PERCENT_METRICS) else ""


def _difference_label(data: ReportData) -> str:
    return "difference (pp)" if _unit(data) else f"difference in {data.axis_label.removeprefix('best ')}"


def _margin_text(differences: pd.DataFrame | None, data: ReportData) -> str:
    margin = differences["margin"].dropna() if differences is not None else pd.Series(dtype=float)
    if margin.empty:
        return ""
    return f"; the grey band is the equivalence margin, ±{margin.iloc[0]:g}{_unit(data)}"


def _counts(counts: pd.Series, order: list) -> str:
    return ", ".join(f"{v} {int(counts.get(v, 0))}" for v in order)


def _score_text(data: ReportData) -> str:
    return f" Score: {data.score_label}."


# --------------------------------------------------------------------------- the trials


def isolation_figure(data: ReportData, top: int = 3) -> Drawn:
    evidence = {"replicates": "the replicates figure", "paired draws": "the paired-draws figure"}
    basis = data.verdict.basis if data.verdict else "best trial"
    trust = (f"the verdict rests on {evidence[basis]}, not on this one." if basis in evidence else
             "there are no replicates or paired draws yet to weigh it against.")
    figure = isolation(data.trials, data.primary, data.score, data.order, data.colours, data.maximize,
                       data.axis_label, top)
    return Drawn("isolation", f"Best trial per {data.primary}", (
        f"The best completed search trial of each {data.primary} value, with its score, and a bar over the range "
        f"of its top {top} trials (not seed-to-seed noise). n counts the completed search trials. The best of n "
        f"noisy trials is the least trustworthy statistic a study has: {trust}" + _score_text(data)
        + zoom_note(figure.axes)), figure)


def distribution_figure(data: ReportData) -> Drawn:
    figure = distribution(data.trials, data.primary, data.score, data.order, data.colours, data.axis_label)
    return Drawn("distribution", f"All trials per {data.primary}", (
        "Every trial: box (quartiles, whiskers at 1.5 IQR) and points for completed trials, hollow points for "
        "pruned trials at the score they had when pruned, crosses under the dotted line for failed trials (no "
        "score); the counts under each value. A best value drawn from a wide spread or from mostly failed trials "
        "is fragile." + _score_text(data) + zoom_note(figure.axes)), figure)


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
    figure = two_way(table, x, hue, orders[x], orders[hue], data.axis_label)
    return Drawn("two_way", f"Best and mean per {first} and {second}", (
        f"Every {first} × {second} combination (the two-way table): the best completed trial (filled dot, value "
        f"and n beside it) and the mean of its completed trials (open dot), n = completed trials; one line per "
        f"{hue}. {fairness}" + _score_text(data) + zoom_note(figure.axes)), figure)


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
    figure = objective_vs_params(trials, params, data.score, data.axis_label, log_params)
    logs = ", ".join(f"`{p}`" for p in params if p in log_params)
    return Drawn("objective_vs_params", "Score against each searched hyperparameter", (
        "The score of every completed trial against each searched hyperparameter (colour = cell"
        + (f"; log axes for {logs}, searched on a log scale" if logs else "")
        + "); crosses at the bottom are failed trials. Look for best points at the edge of a range, and for "
        "regions where a cell fails." + _score_text(data) + zoom_note(figure.axes[:1])), figure)


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
    loss = "mean squared error" if data.kind == "regression" else "cross-entropy"
    metric = "in the target's units" if key == "mae" else "the fraction correct"
    cut = (" The accuracy axis starts at the lowest validation accuracy from epoch 2 on, where the runs differ: "
           "epoch 1 may lie below it." if key == "accuracy" else "")
    return Drawn("learning_curves", f"Learning curves of the best trial per {data.primary}", (
        f"Training (solid) and validation (dashed) loss and {key} per epoch of the best trial of each "
        f"{data.primary}; the star marks the epoch whose weights were kept, scored and tested. The loss is the "
        f"{loss}, the {key} {metric}.{cut}"),
        learning_curves(histories, runs, key, "loss", "MAE" if key == "mae" else "accuracy"))


def cost_figure(data: ReportData) -> Drawn | None:
    if not data.trials["param_count"].notna().any():
        return None
    figure = cost(data.trials, data.score, data.axis_label, data.maximize)
    return Drawn("cost", "Score against model size and training time", (
        "The score of every completed trial against its parameter count and its training time (all epochs, on "
        "the machine that ran it). The dashed step line is the Pareto front of size: the best score any trial "
        "reached at or below each parameter count. Equal units are not equal size: an LSTM has about 4× and a "
        "GRU 3× the recurrent weights of a SimpleRNN." + _score_text(data) + zoom_note(figure.axes)), figure)


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


MODEL_NOTE = (" The models are the logged best-epoch models (the MLflow Model `model` of each trial's run, holding "
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
        data.warnings.append(f"no model logged for trial(s) {', '.join(missing)} (a sweep with "
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
            f"The test series and the one-step-ahead predictions of the best trial of each {data.primary}, in the "
            "series' own units." + MODEL_NOTE), actual_vs_predicted(actual, series))
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
        f"Test-set confusion matrix of the best trial of each {data.primary} (at most {max_models}): colour is the "
        "fraction of each true class, the number its count (or, where counts reach 1,000, its percentage of the "
        "true class)."
        + MODEL_NOTE),
        confusion_matrices(panels))


def predict_best(tracking_uri: str, run_ids: list[str], x: np.ndarray) -> list[np.ndarray | None]:
    """Each run's logged best-epoch model (its MLflow Model, or `model.keras` in older studies) applied
    to `x`; None where none was logged."""
    if "tensorflow" not in sys.modules:
        # Loading a saved model makes TensorFlow's graph optimizer log harmless "E0000 ... failed"
        # lines that read like a crash; only a report loads models, so it silences them.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # Keras set up before a model loads; TensorFlow takes seconds to load: only this figure pays for it.
    from study.train.backend import keras  # noqa: F401

    predictions: list[np.ndarray | None] = []
    with tempfile.TemporaryDirectory() as folder:
        for run_id in run_ids:
            try:
                # Its MLflow Model, or the `model.keras` of a study logged before; raises where none was logged.
                model = tracking.load_model(tracking_uri, run_id, Path(folder) / run_id)
            except Exception:  # noqa: BLE001 - MLflow's missing-artifact error cannot be imported here
                predictions.append(None)  # the figure names the trials without a model
                continue
            predictions.append(np.asarray(model.predict(x, batch_size=1024, verbose=0)))
    return predictions


# In the order they are drawn, each with the step message the CLI prints: the verdict's evidence,
# then the trials, then the models. `page_order` puts the verdict's own figure first.
REPORT_FIGURES = (
    ("replicates of each best configuration", replicates_figure),
    ("paired draws", paired_figure),
    ("expected best against the tuning budget", budget_figure),
    ("isolation plot", isolation_figure),
    ("distribution of all trials", distribution_figure),
    ("two-way comparison", two_way_figure),
    ("score against each hyperparameter", objective_figure),
    ("learning curves", curves_figure),
    ("cost", cost_figure),
    ("hyperparameter importance", importance_figure),
    ("best models on the test set", task_figure),
)

LEAD = {"replicates": "replicates", "paired draws": "paired_draws"}  # the verdict's basis -> its figure's stem


def page_order(drawn: list[Drawn], basis: str) -> list[Drawn]:
    """The figures in the page's order: first the one that carries the verdict (the replicates or
    the paired draws, as `basis` says; the best trial per value when the verdict has neither), then
    the others in REPORT_FIGURES' order."""
    stems = [figure.stem for figure in drawn]
    lead = next((stem for stem in (LEAD.get(basis), "isolation") if stem in stems), None)
    return sorted(drawn, key=lambda figure: figure.stem != lead)
