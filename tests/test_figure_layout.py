"""Every report figure is paste-ready: drawn on small hand-built studies (3 cells; 1 cell; 6
searched hyperparameters; long value names; a regression task; failed and pruned trials) and
across tasks, no text leaves the canvas, no two texts overlap, and none prints under 8 pt.

The studies are DataFrames fed to the figure steps of `study.reporting.figure_data` with the
verdict decided as the report's builder decides it, so no sweep trains and no store is read; the
two steps that read a store (learning curves, the best models on the test set) are drawn from
hand-made histories and predictions instead. A text is measured as the saved PNG draws it: by
matplotlib's Agg renderer at the figure's own dpi (`fig.canvas.draw()`, `get_window_extent`).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from study.analysis import across
from study.analysis import verdict as verdict_rules
from study.analysis.budget import budget_curve
from study.analysis.scoring import best_per_value, value_order
from study.reporting import across_figures, figure_data, figures
from study.reporting.build import replicate_statistics, two_way_table
from study.reporting.model_figures import actual_vs_predicted, confusion_matrices, learning_curves
from study.spec.sweep_file import parse_config

TOUCH = 1.0  # pixels two texts (or a text and the canvas edge) may share: touching is not overlapping
STORE_STEPS = (figure_data.curves_figure, figure_data.task_figure)  # drawn below from hand-made data
LONG = ["adam-with-decoupled-weight-decay", "stochastic-gradient-descent", "rmsprop-centred-with-momentum",
        "nesterov-accelerated", "adagrad"]


# --------------------------------------------------------------------------- measuring


def visible_texts(artist):
    """Every text a reader sees: visible, non-empty, under visible parents; of an axis only the tick
    labels it draws (ticks inside its view), its label and its offset text."""
    if not artist.get_visible():
        return
    if isinstance(artist, Axis):
        low, high = sorted(artist.get_view_interval())
        slack = 1e-9 * ((high - low) or 1.0)
        for tick in artist.get_major_ticks() + artist.get_minor_ticks():
            if tick.get_visible() and low - slack <= tick.get_loc() <= high + slack:
                yield from (t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text().strip())
        yield from (t for t in (artist.label, artist.get_offset_text()) if t.get_visible() and t.get_text().strip())
        return
    if isinstance(artist, Text):
        if artist.get_text().strip():
            yield artist
        return
    for child in artist.get_children():
        yield from visible_texts(child)


def layout_problems(name: str, fig) -> list[str]:
    """What is wrong with a figure's text: outside the canvas, over another text, or too small."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    boxes = [(text, text.get_window_extent(renderer)) for text in visible_texts(fig)]
    found = []
    for text, box in boxes:
        if (box.x0 < canvas.x0 - TOUCH or box.y0 < canvas.y0 - TOUCH or box.x1 > canvas.x1 + TOUCH
                or box.y1 > canvas.y1 + TOUCH):
            found.append(f"{name}: {text.get_text()!r} leaves the canvas ({box.bounds} in {canvas.bounds})")
        if text.get_fontsize() < figures.FONT - 0.01:
            found.append(f"{name}: {text.get_text()!r} is {text.get_fontsize():g} pt, under 8 pt in a column")
    if boxes:  # every pair at once: a confusion matrix has hundreds of texts
        edges = np.array([box.extents for _, box in boxes])  # x0, y0, x1, y1
        wide = np.minimum.outer(edges[:, 2], edges[:, 2]) - np.maximum.outer(edges[:, 0], edges[:, 0])
        tall = np.minimum.outer(edges[:, 3], edges[:, 3]) - np.maximum.outer(edges[:, 1], edges[:, 1])
        for i, j in zip(*np.nonzero(np.triu((wide > TOUCH) & (tall > TOUCH), k=1))):
            found.append(f"{name}: {boxes[i][0].get_text()!r} overlaps {boxes[j][0].get_text()!r}")
    return found


# --------------------------------------------------------------------------- the studies


def study(by: str, values: list, draws: int, space: dict, score: str = "best_val_accuracy", secondary=None,
          replicates: int = 0, paired: bool = True, failed: int = 0, pruned: int = 0, seed: int = 0):
    """A study's trials as the report reads them: every value on the same `draws` nuisance draws
    (`paired`), else on draws of its own; `failed` and `pruned` trials of the first values; then the
    report's data with the verdict decided on them, as `study.reporting.build` decides it."""
    rng = np.random.default_rng(seed)
    maximize = score.endswith("accuracy")
    nuisance = {p: c for p, c in space.items() if p != by}
    shared = [{p: pick(rng) for p, (pick, _) in nuisance.items()} for _ in range(draws)]
    rows = []
    for index, value in enumerate(values):
        own = shared if paired else [{p: pick(rng) for p, (pick, _) in nuisance.items()} for _ in range(draws)]
        for draw in own:
            quality = (0.9 - 0.03 * index + rng.normal(0, 0.02) if maximize else
                       0.05 + 0.01 * index + rng.uniform(0, 0.02))
            rows.append({by: value, **draw, "state": "COMPLETE", score: quality})
    for index in range(failed + pruned):
        value = values[index % min(2, len(values))]
        state = "FAIL" if index < failed else "PRUNED"
        rows.append({by: value, **shared[0], "state": state,
                     score: np.nan if state == "FAIL" or index % 2 else 0.99 if maximize else 0.001})
    trials = pd.DataFrame(rows)
    trials.insert(0, "trial", range(len(trials)))
    trials["mlflow_run_id"] = [f"run{i}" for i in trials["trial"]]
    trials["best_epoch"] = np.where(trials["state"] == "COMPLETE", 3, np.nan)
    trials["param_count"] = np.where(trials["state"] == "FAIL", np.nan, rng.integers(2_000, 60_000, len(trials)))
    trials["train_seconds"] = rng.uniform(1, 40, len(trials))
    if "cell" not in trials:
        trials["cell"] = "LSTM"
    searched = {p: spec for p, (_, spec) in nuisance.items()}
    config = parse_config({  # the sweep file: it says which hyperparameters were searched, and how
        "name": "layout", "task": {"name": "digits" if maximize else "sine"}, "trials": len(trials), "epochs": 3,
        "sampler": "random", "space": {by: {"role": "scientific", "choices": values}, **searched},
    }) if by == "cell" else None  # a study read back without its sweep file: every varying one counts
    runs = None
    if replicates:
        runs = pd.DataFrame([{by: v, score: trials.loc[trials[by] == v, score].max() - rng.uniform(0, 0.02),
                              "replicate_index": i, "seed": 100 + i, "param_count": 5_000}
                             for v in values for i in range(replicates)])
    return report_data(trials, by, score, maximize, config, runs, secondary, list(nuisance))


def report_data(trials, by, score, maximize, config, replicates, secondary, nuisance):
    direction = "maximize" if maximize else "minimize"
    order = value_order(trials, by, config)
    best = best_per_value(trials, by, score, direction, config)
    data = figure_data.ReportData(
        trials=trials, best=best, score=score, maximize=maximize, primary=by, secondary=secondary,
        two_way=two_way_table(trials, by, secondary, score, direction, config) if secondary else None,
        score_label="best validation " + ("accuracy (fraction correct)" if maximize else "loss (MSE)"),
        kind="multiclass" if maximize else "regression", order=order, config=config, tracking_uri="",
        importances={"fANOVA": {p: 1 / (i + 2) for i, p in enumerate(nuisance)}, "PED-ANOVA": {}},
        replicates=replicates)
    draws = verdict_rules.paired_draws(trials, by, score, nuisance, order)
    paired = verdict_rules.paired_evidence(draws, order, maximize, score)
    summary, comparisons = replicate_statistics(replicates, by, score) if replicates is not None else (None, None)
    data.verdict = verdict_rules.decide(
        by, score, maximize, verdict_rules.best_trial_evidence(best, by, score, maximize),
        verdict_rules.median_evidence(trials, by, score, maximize), paired,
        verdict_rules.replicate_evidence(summary, comparisons, by, maximize),
        budget_curve(trials, by, score, maximize, order, bootstrap=200))
    data.paired = draws if paired is not None else None
    return data


# A searched hyperparameter: how a fixture draws it, and its sweep file entry.
def choice(*values):
    return lambda rng: values[rng.integers(len(values))], {"choices": list(values)}


def log_range(low, high):
    return lambda rng: float(np.exp(rng.uniform(np.log(low), np.log(high)))), {"low": low, "high": high, "log": True}


def linear(low, high):
    return lambda rng: float(rng.uniform(low, high)), {"low": low, "high": high}


CELLS = ["SimpleRNN", "GRU", "LSTM"]
STUDIES = {
    "three cells": lambda: study("cell", CELLS, 8, {"units": choice(32, 64), "depth": choice(1, 2),
                                                    "learning_rate": log_range(1e-3, 3e-2)},
                                 secondary="units", replicates=3),
    "one cell": lambda: study("cell", ["LSTM"], 6, {"learning_rate": log_range(1e-3, 3e-2)}),
    "six searched hyperparameters": lambda: study(
        "cell", CELLS, 8, {"units": choice(32, 64), "depth": choice(1, 2), "activation": choice("tanh", "relu"),
                           "output_dropout": linear(0, 0.3), "recurrent_dropout": linear(0, 0.3),
                           "learning_rate": log_range(1e-4, 3e-1)}, secondary="units", paired=False),
    "long value names": lambda: study("optimizer", LONG, 6, {"learning_rate": log_range(1e-3, 3e-2),
                                                             "cell": choice(*CELLS)},
                                      secondary="cell", replicates=2),
    "regression (sine, val_loss, minimised)": lambda: study(
        "cell", ["GRU", "LSTM"], 6, {"learning_rate": log_range(1e-3, 3e-2)}, score="best_val_loss", replicates=3),
    "failed and pruned trials": lambda: study("cell", CELLS, 3, {"learning_rate": log_range(1e-3, 3e-2)},
                                              failed=4, pruned=3, paired=False),
}


def store_figures(data) -> dict:
    """The figures drawn from the store in a report, here from made-up histories and predictions."""
    rng = np.random.default_rng(1)
    runs = data.best_runs()
    key = "mae" if data.kind == "regression" else "accuracy"
    histories = pd.DataFrame([
        {"run_id": run, "key": prefix + name, "epoch": epoch,
         "value": (1 / epoch if name in ("loss", "mae") else 1 - 0.5 / epoch) + rng.normal(0, 0.01)}
        for run in runs["mlflow_run_id"] for prefix in ("", "val_") for name in ("loss", key)
        for epoch in range(1, 16)])
    curves = [(f"{data.name(r[data.primary])} (trial {r['trial']})", r["mlflow_run_id"],
               data.colours[r[data.primary]], 3) for _, r in runs.iterrows()]
    drawn = {"learning_curves": learning_curves(histories, curves, key, "loss", key)}
    names = [f"{data.name(r[data.primary])} (trial {r['trial']})" for _, r in runs.head(4).iterrows()]
    if data.kind == "regression":
        actual = np.sin(np.linspace(0, 12, 200))
        drawn["actual_vs_predicted"] = actual_vs_predicted(
            actual, [(f"{n}, test MAE 0.05", actual + rng.normal(0, 0.05, 200), data.colours[r[data.primary]])
                     for n, (_, r) in zip(names, runs.iterrows())])
    else:
        for classes, largest in ((10, 99), (10, 1500), (2, 500)):
            counts = rng.integers(0, 9, (classes, classes)) + np.eye(classes, dtype=int) * largest
            drawn[f"confusion_matrix ({classes} classes, up to {largest})"] = confusion_matrices(
                [(f"{n}\ntest accuracy 0.950", counts, list(range(classes))) for n in names])
    return drawn


# --------------------------------------------------------------------------- the tests


@functools.cache
def report_figures(name: str) -> tuple:
    """A study's data and the report figures drawn from it (those a report reads from the store too)."""
    data = STUDIES[name]()
    with figures.theme():
        drawn = [d for _, step in figure_data.REPORT_FIGURES if step not in STORE_STEPS if (d := step(data))]
        return data, drawn, store_figures(data)


# Each fixture draws ~12 figures at 200 dpi, 5-7 s on 2 cores: the README's test command draws the
# first, CI's slow pass the rest, to keep the command under 6 minutes.
@pytest.mark.parametrize("name", [pytest.param(name, marks=() if index == 0 else pytest.mark.slow)
                                  for index, name in enumerate(STUDIES)])
def test_no_text_of_any_report_figure_leaves_the_canvas_or_meets_another(name):
    _, drawn, others = report_figures(name)
    found = []
    for stem, fig in {**{d.stem: d.figure for d in drawn}, **others}.items():
        found += layout_problems(f"{name} / {stem}", fig)
    assert not found, "\n".join(found)


def test_no_text_of_the_cross_task_figures_leaves_the_canvas_or_meets_another():
    runs = pd.DataFrame(
        [(task, value, float(s)) for task, shift in (("digits", 0.0), ("sine", 0.2), ("mnist1d", 0.1))
         for i, value in enumerate([*CELLS, LONG[0]]) for s in np.linspace(0.3, 0.7, 4) + shift - 0.05 * i],
        columns=["task", "cell", "score"]).assign(normalized=lambda frame: frame["score"], source="replicates")
    found = []
    with figures.theme():
        iqms = across.iqm(runs, "cell")
        found += layout_problems("iqm", across_figures.interval_plot(
            iqms, "cell", "iqm", "IQM of normalized scores (0 = chance, 1 = best possible)"))
        found += layout_problems("improvement", across_figures.improvement_plot(
            across.probability_of_improvement(runs, "cell")))
    assert not found, "\n".join(found)


def test_each_study_draws_the_evidence_it_has_and_opens_with_the_verdicts_own_figure():
    expected = {  # the study -> (the figures drawn from the verdict's evidence, the first on the page)
        "three cells": ({"replicates", "paired_draws", "expected_best"}, "replicates"),
        "one cell": (set(), "isolation"),
        "six searched hyperparameters": ({"expected_best"}, "isolation"),
        "regression (sine, val_loss, minimised)": ({"replicates", "paired_draws", "expected_best"}, "replicates"),
        "failed and pruned trials": ({"expected_best"}, "isolation"),
    }
    evidence = {"replicates", "paired_draws", "expected_best"}
    for name, (stems, first) in expected.items():
        data, drawn, _ = report_figures(name)
        page = figure_data.page_order(drawn, data.verdict.basis)
        assert {d.stem for d in drawn} & evidence == stems, name
        assert page[0].stem == first, (name, [d.stem for d in page])
        for figure in drawn:
            assert figure.title and figure.caption, (name, figure.stem)
            if figure.stem in evidence:
                assert "n = " in figure.caption, (name, figure.stem, figure.caption)


def test_paired_draws_without_replicates_lead_with_the_paired_figure():
    data = study("cell", CELLS, 8, {"learning_rate": log_range(1e-3, 3e-2)})
    assert data.verdict.basis == "paired draws"
    with figures.theme():
        drawn = [d for _, step in figure_data.REPORT_FIGURES if step not in STORE_STEPS if (d := step(data))]
    assert [d.stem for d in figure_data.page_order(drawn, data.verdict.basis)][:2] == ["paired_draws", "expected_best"]
