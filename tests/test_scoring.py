"""The one rule for "the best trial per value", on hand-made tables: ties, direction, order, counts."""

from __future__ import annotations

import pandas as pd
import pytest

from study.spec.sweep_file import parse_config
from study.analysis.scoring import best_per_value, direction_of, score_column, value_order


def _table(rows, score="best_val_accuracy") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trial", "state", "cell", "units", score, "test_accuracy"])


TRIALS = _table([
    (0, "COMPLETE", "GRU", 32, 0.90, 0.89),
    (1, "COMPLETE", "SimpleRNN", 32, 0.95, 0.94),
    (2, "COMPLETE", "GRU", 64, 0.95, 0.93),  # ties trial 4: the lower trial number wins
    (3, "FAIL", "LSTM", 32, None, None),
    (4, "COMPLETE", "GRU", 32, 0.95, 0.96),
    (5, "PRUNED", "SimpleRNN", 64, 0.99, None),  # pruned: never the best, however high
    (6, "COMPLETE", "SimpleRNN", 64, 0.80, 0.79),
])


def test_ties_go_to_the_lowest_trial_and_pruned_trials_never_win():
    best = best_per_value(TRIALS, "cell").set_index("cell")
    assert best.loc["GRU", "trial"] == 2 and best.loc["GRU", "test_accuracy"] == 0.93
    assert best.loc["SimpleRNN", "trial"] == 1
    # The order of the rows in the table does not change the answer.
    shuffled = best_per_value(TRIALS.sample(frac=1, random_state=3), "cell").set_index("cell")
    assert shuffled.loc["GRU", "trial"] == 2


def test_values_without_a_completed_trial_are_listed_with_their_counts_in_reading_order():
    best = best_per_value(TRIALS, "cell")
    assert list(best["cell"]) == ["SimpleRNN", "GRU", "LSTM"]  # cells in the order of CELLS
    lstm = best.set_index("cell").loc["LSTM"]
    assert pd.isna(lstm["trial"]) and pd.isna(lstm["best_val_accuracy"])
    counts = best.set_index("cell")[["trials", "complete", "pruned", "failed"]]
    assert counts.loc["SimpleRNN"].tolist() == [3, 2, 1, 0]
    assert counts.loc["LSTM"].tolist() == [1, 0, 0, 1]


def test_a_loss_is_minimized_and_two_dimensions_give_one_row_per_combination():
    losses = TRIALS.rename(columns={"best_val_accuracy": "best_val_loss"})
    assert score_column(losses) == "best_val_loss" and direction_of("best_val_loss") == "minimize"
    best = best_per_value(losses, ["cell", "units"]).set_index(["cell", "units"])
    assert best.loc[("GRU", 32), "trial"] == 0  # 0.90 is the lowest loss of GRU x 32
    assert best.loc[("SimpleRNN", 64), "trial"] == 6
    assert list(best.index) == [("SimpleRNN", 32), ("SimpleRNN", 64), ("GRU", 32), ("GRU", 64), ("LSTM", 32)]


def test_the_sweep_files_order_of_choices_is_the_reading_order():
    config = parse_config({"name": "o", "task": {"name": "digits"}, "trials": 1, "epochs": 1,
                           "space": {"cell": {"role": "scientific", "choices": ["LSTM", "GRU", "SimpleRNN"]}}})
    assert value_order(TRIALS, "cell", config) == ["LSTM", "GRU", "SimpleRNN"]
    assert list(best_per_value(TRIALS, "cell", config=config)["cell"]) == ["LSTM", "GRU", "SimpleRNN"]


def test_no_dimension_gives_the_best_of_the_study():
    best = best_per_value(TRIALS, [])
    assert len(best) == 1 and best.loc[0, "trial"] == 1 and best.loc[0, "trials"] == 7


def test_a_table_without_a_score_is_refused():
    with pytest.raises(ValueError, match="no score column"):
        score_column(pd.DataFrame({"trial": [0], "best_epoch": [1]}))
