"""The expected best score at a tuning budget of k trials (Dodge et al. 2019) against its closed
form on hand fixtures, and its bootstrap bands."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from study.analysis import budget

SCORE = "best_val_accuracy"


def test_the_expected_best_of_k_equals_the_closed_form_and_brute_force():
    scores = [0.1, 0.5, 0.9]
    # best of 2 draws with replacement from 3 values: P(0.1) = 1/9, P(0.5) = 3/9, P(0.9) = 5/9
    assert budget.expected_best(scores, 2) == pytest.approx((0.1 * 1 + 0.5 * 3 + 0.9 * 5) / 9)
    assert budget.expected_best(scores, 2, maximize=False) == pytest.approx((0.9 * 1 + 0.5 * 3 + 0.1 * 5) / 9)
    assert budget.expected_best(scores, 1) == pytest.approx(np.mean(scores))
    ties = [0.2, 0.2, 0.7, 0.4]
    for k in (1, 2, 3):  # every ordered k-tuple of draws, equally likely
        brute = np.mean([max(draw) for draw in itertools.product(ties, repeat=k)])
        assert budget.expected_best(ties, k) == pytest.approx(brute)
    assert budget.expected_best(scores, 200) == pytest.approx(0.9, abs=1e-9)
    curve = [budget.expected_best(ties, k) for k in range(1, 10)]
    assert all(b >= a for a, b in zip(curve, curve[1:]))  # more budget never gives a worse expected best


def test_budget_curve_rows_bands_and_budgets():
    rng = np.random.default_rng(0)
    trials = pd.DataFrame({"trial": range(20), "state": ["COMPLETE"] * 18 + ["FAIL", "PRUNED"],
                           "cell": ["GRU", "LSTM"] * 10, SCORE: rng.uniform(0.5, 1.0, 20)})
    curve = budget.budget_curve(trials, "cell", SCORE, True, ["GRU", "LSTM"], seed=1)
    assert budget.budgets(9) == [1, 2, 4, 8, 9] and set(curve["k"]) == {1, 2, 4, 8, 9}
    assert set(curve["n"]) == {9}  # the failed and the pruned trials are not draws
    assert ((curve["band_low"] <= curve["expected_best"]) & (curve["expected_best"] <= curve["band_high"])).all()
    assert (curve["band_high"] <= 1.0).all() and (curve["band_low"] >= 0.0).all()
    gru = trials[(trials["cell"] == "GRU") & (trials["state"] == "COMPLETE")][SCORE]
    row = curve[(curve["cell"] == "GRU") & (curve["k"] == 4)].iloc[0]
    assert row["expected_best"] == pytest.approx(budget.expected_best(gru.to_numpy(), 4))
    assert curve.equals(budget.budget_curve(trials, "cell", SCORE, True, ["GRU", "LSTM"], seed=1))  # seeded
    assert budget.leaders(curve, "cell", True)[9] == curve.sort_values("expected_best").iloc[-1]["cell"]
    assert budget.budget_curve(trials.iloc[:0], "cell", SCORE, True, ["GRU"]).empty
