"""Across tasks: the value x task table, ranks, IQM and probability of improvement against hand
computations on a small fixture, and a whole suite (scripted training) to its cross-task page."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from study.analysis import across
from study.app.cli import app
from study.spec.base import ConfigError
from study.app.suite import load_suite

# Two tasks, two values, normalized scores given directly (score = normalized here).
RUNS = pd.DataFrame(
    [("a", "GRU", s) for s in (0.9, 0.8, 0.7)] + [("a", "LSTM", s) for s in (0.6, 0.85)]
    + [("b", "GRU", s) for s in (0.2, 0.4)] + [("b", "LSTM", s) for s in (0.5, 0.4, 0.3)],
    columns=["task", "cell", "score"],
).assign(normalized=lambda frame: frame["score"], source="replicates")


def test_the_value_task_table_and_ranks_equal_a_hand_computation():
    table = across.value_task_table(RUNS, "cell", ["GRU", "LSTM"]).set_index(["task", "cell"])
    assert table.loc[("a", "GRU"), "n"] == 3 and table.loc[("a", "GRU"), "mean"] == pytest.approx(0.8)
    low, high = scipy_stats.t.interval(0.95, 2, loc=0.8, scale=scipy_stats.sem([0.9, 0.8, 0.7]))
    assert (table.loc[("a", "GRU"), "ci_low"], table.loc[("a", "GRU"), "ci_high"]) == pytest.approx((low, high))
    assert table.loc[("b", "LSTM"), "mean"] == pytest.approx(0.4) and table.loc[("b", "GRU"), "n"] == 2

    ranks = across.ranks(table.reset_index(), "cell").set_index("cell")
    # Task a: GRU 0.8 > LSTM 0.725; task b: LSTM 0.4 > GRU 0.3: each first once, average rank 1.5.
    assert ranks.loc["GRU", "a"] == 1 and ranks.loc["LSTM", "b"] == 1
    assert ranks["average_rank"].tolist() == [1.5, 1.5]


def test_iqm_and_probability_of_improvement_equal_a_hand_computation():
    iqms = across.iqm(RUNS, "cell").set_index("cell")
    gru = np.array([0.9, 0.8, 0.7, 0.2, 0.4])
    assert iqms.loc["GRU", "iqm"] == pytest.approx(scipy_stats.trim_mean(gru, 0.25))
    assert iqms.loc["GRU", "ci_low"] <= iqms.loc["GRU", "iqm"] <= iqms.loc["GRU", "ci_high"]
    assert iqms.loc["GRU", "runs"] == 5 and iqms.loc["GRU", "tasks"] == 2

    improvement = across.probability_of_improvement(RUNS, "cell").set_index(["x", "y"])
    # Task a: GRU beats 0.6 three times and 0.85 once: 4/6. Task b: GRU 0.2 beats none, 0.4 beats
    # 0.3 and ties 0.4: 1.5/6. Averaged over the two tasks:
    expected = (4 / 6 + 1.5 / 6) / 2
    assert improvement.loc[("GRU", "LSTM"), "probability"] == pytest.approx(expected)
    assert improvement.loc[("LSTM", "GRU"), "probability"] == pytest.approx(1 - expected)


def test_normalized_scores_put_chance_at_0_and_the_best_possible_at_1():
    assert across.normalize(0.1, "val_accuracy", "digits", {}) == pytest.approx(0.0)
    assert across.normalize(1.0, "val_accuracy", "imdb", {}) == pytest.approx(1.0)
    assert across.normalize(0.75, "val_accuracy", "imdb", {}) == pytest.approx(0.5)
    reference = {"chance": 0.5, "floor": 0.01}
    assert across.normalize(0.5, "val_loss", "sine", reference) == pytest.approx(0.0)
    assert across.normalize(0.01, "val_loss", "sine", reference) == pytest.approx(1.0)


def _across(runs: pd.DataFrame, tiers: dict, sources: dict | None = None) -> str:
    return across.overall_verdict(across.iqm(runs, "cell"), across.probability_of_improvement(runs, "cell"), "cell",
                                  tiers, sources or {task: "replicates" for task in tiers})


def test_no_clear_winner_across_tasks_when_the_tasks_disagree():
    text = _across(RUNS, {"a": [["GRU"], ["LSTM"]], "b": [["LSTM"], ["GRU"]]})
    assert text.startswith("No clear winner across tasks: no cell is in a higher tier than another on every task")
    assert "top tier per task: GRU on 1, LSTM on 1 of 2 tasks" in text and "P(" in text
    assert "with 2 tasks the IQM is no rule" in text


def three_tasks(gaps: dict[str, float], runs: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(task, cell, 0.5 + gap + rng.normal(0, 0.01)) for task in ("x", "y", "z") for cell, gap in gaps.items()
            for _ in range(runs)]
    return pd.DataFrame(rows, columns=["task", "cell", "score"]).assign(normalized=lambda f: f["score"],
                                                                        source="replicates")


def test_across_tasks_the_same_tiers_and_words_as_within_a_task():
    runs = three_tasks({"GRU": 0.4, "LSTM": 0.38, "SimpleRNN": 0.0})
    gated = {t: [["GRU", "LSTM"], ["SimpleRNN"]] for t in "xyz"}
    text = _across(runs, gated)
    assert text.startswith("Across tasks, GRU and LSTM beat SimpleRNN: in a higher tier on each of the 3 tasks")
    assert "top tier per task: GRU on 3, LSTM on 3, SimpleRNN on 0 of 3 tasks" in text
    alone = {t: [["GRU"], ["LSTM", "SimpleRNN"]] for t in "xyz"}
    assert _across(runs, alone).startswith("GRU wins across tasks: it is in a higher tier than every other cell on "
                                           "each of the 3 tasks")
    # One task where GRU is not above LSTM: GRU no longer wins across tasks.
    assert "wins" not in _across(runs, {**alone, "z": [["GRU", "LSTM"], ["SimpleRNN"]]}).split(":")[0]


def test_never_a_cross_task_winner_from_best_trials_or_one_value():
    runs = three_tasks({"GRU": 0.4, "LSTM": 0.0}, runs=1)  # a clear IQM lead, each from one best trial
    text = _across(runs, {t: [] for t in "xyz"}, {t: "best trial only" for t in "xyz"})
    assert text.startswith("No clear winner across tasks can be claimed: every task's evidence is its best trial only")
    mixed = _across(runs, {"x": [["GRU"], ["LSTM"]], "y": [["GRU"], ["LSTM"]], "z": []},
                    {"x": "replicates", "y": "replicates", "z": "best trial only"})
    assert mixed.startswith("No clear winner across tasks") and "z: best trials only, no tier there" in mixed
    single = three_tasks({"8.0": 0.1})
    assert across.overall_verdict(across.iqm(single, "cell"), across.probability_of_improvement(single, "cell"),
                                  "cell", {}, {}) == ("No verdict across tasks: only one cell was compared (8.0); a "
                                                      "verdict needs two or more.")


SUITE_SWEEP = """
    name: {name}
    task: {task}
    space:
      cell: {{role: scientific, choices: [GRU, LSTM]}}
      units: {{value: 4}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
    trials: 4
    epochs: 2
    sampler: random
    replicates: 2
    log_models: false
"""


@pytest.mark.slow  # two studies' full reports (figures, importance) and the cross-task page: ~30 s on 2 cores
def test_a_suite_runs_each_task_and_writes_the_cross_task_page(tmp_path, shared_tracking_uri, scripted_training,
                                                               monkeypatch):
    scripted_training()
    monkeypatch.chdir(tmp_path)
    for name, task in (("suite-t-digits", "{name: digits}"), ("suite-t-sine", "{name: sine, length: 200}")):
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(SUITE_SWEEP.format(name=name, task=task)))
    (tmp_path / "suite.yaml").write_text("name: tiny-suite\nsweeps: [suite-t-digits.yaml, suite-t-sine.yaml]\n")
    storage = f"sqlite:///{tmp_path}/optuna.db"

    result = CliRunner().invoke(app, ["suite", str(tmp_path / "suite.yaml"), "--storage", storage,
                                      "--tracking-uri", shared_tracking_uri, "--formats", "png"])
    assert result.exit_code == 0, result.output
    assert "verdict across tasks:" in result.output
    page = (tmp_path / "reports" / "tiny-suite" / "report.md").read_text()
    for text in ("Verdict across tasks", "cell × task", "Ranks per task", "interquartile mean",
                 "probability of improvement", "rliable", "`digits`", "`sine`: replicates"):
        assert text in page, text
    table = pd.read_csv(tmp_path / "reports" / "tiny-suite" / "tables" / "value_task.csv")
    assert len(table) == 4 and set(table["n"]) == {2}  # 2 cells x 2 tasks, 2 replicates each
    for stem in ("iqm", "improvement"):
        assert (tmp_path / "reports" / "tiny-suite" / "figures" / f"{stem}.png").stat().st_size > 1000
    assert (tmp_path / "reports" / "suite-t-sine" / "report.md").is_file()  # each study's own report


def test_a_suite_with_two_sweeps_of_one_task_is_refused_before_training(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(SUITE_SWEEP.format(name=name, task="{name: digits}")))
    (tmp_path / "suite.yaml").write_text("name: s\nsweeps: [one.yaml, two.yaml]\n")
    with pytest.raises(ConfigError, match="run the same task"):
        load_suite(tmp_path / "suite.yaml")
    (tmp_path / "bad.yaml").write_text("name: s\nsweeps: [one.yaml]\nextra: 1\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_suite(tmp_path / "bad.yaml")



def test_a_suite_file_is_read_as_carefully_as_a_sweep_file(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_suite(tmp_path / "fifo.yaml")  # refused at once, never opened
    (tmp_path / "alias.yaml").write_text("name: &a s\nsweeps: [*a, *a]\n")
    with pytest.raises(ConfigError, match="alias"):
        load_suite(tmp_path / "alias.yaml")
