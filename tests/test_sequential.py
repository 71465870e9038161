"""The run-until-decided rules on simulated studies: scripted paired draws, no training.

A simulated study has 3 compared values and one draw of each per round; the paired differences of a
pair are normal with the pair's true difference and a spread like the quick study's (2 pp sd). The
sweep looks after every round and stops once every pair is decided, as `study.search.decision`
does; each test replays 1,000 such studies at once through the vectorised confidence sequence.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from study.analysis import sequential, stats

ALPHA = 0.05
STUDIES = 1000
SD = 0.02  # per-draw score noise: differences of two values spread by 2 pp * sqrt(2) = 2.8 pp
MARGIN = 0.02
PAIRS = 3
LEVEL = ALPHA / PAIRS


def simulated_differences(means, rounds: int, seed: int) -> np.ndarray:
    """(studies, pairs, rounds) paired differences of 3 values with true `means`: every round one
    draw of each value, sharing the round's own offset (the nuisance hyperparameters' draw)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.5, 0.1, size=(STUDIES, 1, rounds))  # cancels in every paired difference
    scores = np.asarray(means, float)[None, :, None] + offsets + rng.normal(0, SD, size=(STUDIES, 3, rounds))
    return np.stack([scores[:, a] - scores[:, b] for a, b in itertools.combinations(range(3), 2)], axis=1)


def states(differences: np.ndarray, margin: float | None = MARGIN) -> np.ndarray:
    """Each pair's state after every round, as codes: +1 first better, -1 second better, 0
    equivalent, 2 undecided; (studies, pairs, rounds)."""
    low, high = sequential.running_confidence_sequence(differences, LEVEL)
    equivalent = (low > -margin) & (high < margin) if margin is not None else np.zeros_like(low, bool)
    return np.select([low > 0, high < 0, equivalent], [1, -1, 0], default=2)


def at_stop(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The states where each study stops (the first round with no pair undecided, else the last
    round) and that round's number of draws."""
    decided = (codes != 2).all(axis=1)  # (studies, rounds)
    stop = np.where(decided.any(axis=1), decided.argmax(axis=1), codes.shape[-1] - 1)
    return codes[np.arange(len(codes)), :, stop], stop + 1


def test_with_no_true_difference_looking_every_round_rarely_declares_a_winner_and_a_fixed_test_would():
    differences = simulated_differences([0.8, 0.8, 0.8], rounds=100, seed=1)
    codes = states(differences)
    declared = (np.abs(codes) == 1).any(axis=(1, 2))  # any pair "better" at any look: an upper bound
    assert declared.mean() <= ALPHA, f"{declared.mean():.1%} of null studies declared a winner"

    # the same looks with a fixed-n t-test (the verdict's fixed design would use Holm; Bonferroni's
    # alpha / pairs is no looser) declare a difference far more often: why the boundary is there
    n = np.arange(1, 101)
    mean = np.cumsum(differences, axis=-1) / n
    sd = np.sqrt(np.maximum(np.cumsum(differences**2, axis=-1) - n * mean**2, 0) / np.maximum(n - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(n))
    critical = scipy_stats.t.ppf(1 - LEVEL / 2, np.maximum(n - 1, 1))
    naive = ((np.abs(t) > critical) & (n >= 2)).any(axis=(1, 2))
    assert naive.mean() > 2 * ALPHA, f"a fixed test at every look declared only {naive.mean():.1%}"
    assert naive.mean() > 5 * declared.mean()


def test_with_no_true_difference_and_enough_budget_the_pairs_are_found_equivalent():
    differences = simulated_differences([0.8, 0.8, 0.8], rounds=400, seed=2)
    final, stopped = at_stop(states(differences))
    equivalent = (final == 0).all(axis=1)
    assert equivalent.mean() >= 0.8, f"equivalent in {equivalent.mean():.1%}"
    assert (np.abs(final) == 1).any(axis=1).mean() <= ALPHA
    assert np.median(stopped) < 400  # decided within the budget, not cut off by it


def test_a_difference_of_twice_the_margin_is_ordered_right_and_almost_never_wrong():
    step = 2 * MARGIN  # values 2 margins apart: the pairs differ by 2 and 4 margins
    differences = simulated_differences([0.8 + 2 * step, 0.8 + step, 0.8], rounds=400, seed=3)
    final, _ = at_stop(states(differences))
    right = (final == 1).all(axis=1)  # every pair "first better": the true order
    wrong = (final == -1).any(axis=1)
    assert right.mean() >= 0.8, f"right order in {right.mean():.1%}"
    assert wrong.mean() <= 0.01, f"wrong order in {wrong.mean():.1%}"


def test_the_draws_a_fixed_design_needs_match_the_simulated_n_at_80_percent_power():
    sd = SD * math.sqrt(2)
    n = stats.n_to_tell(sd, MARGIN, PAIRS, paired=True, alpha=ALPHA)
    rng = np.random.default_rng(4)

    def power(draws: int) -> float:
        x = rng.normal(MARGIN, sd, size=(4000, draws))  # a true difference of one margin
        p = scipy_stats.ttest_1samp(x, 0.0, axis=1).pvalue
        return float((p < LEVEL).mean())

    simulated = next(k for k in range(2, 200) if power(k) >= stats.POWER)
    assert abs(n - simulated) <= 0.25 * simulated, (n, simulated)


def test_the_draws_to_decide_match_the_simulated_stopping_round():
    # the hardest true difference for the rule is half the margin: neither clearly better nor
    # clearly inside +-margin; draws_to_decide promises a decision there by its n
    sd = SD * math.sqrt(2)
    promised = sequential.draws_to_decide(sd, MARGIN, ALPHA, PAIRS)
    differences = simulated_differences([0.8 + MARGIN, 0.8 + MARGIN / 2, 0.8], rounds=3 * promised, seed=5)
    _, stopped = at_stop(states(differences))
    simulated = float(np.quantile(stopped, stats.POWER))  # the round by which 80% of studies stopped
    assert abs(promised - simulated) <= 0.25 * simulated, (promised, simulated)


def test_no_look_leaves_the_range_a_difference_of_accuracies_can_take():
    rng = np.random.default_rng(6)
    draws = pd.DataFrame({"GRU": rng.uniform(0.9, 1.0, 8), "LSTM": rng.uniform(0.0, 0.2, 8),
                          "SimpleRNN": rng.uniform(0.0, 1.0, 8)})
    for n in range(1, 9):
        table = sequential.look(draws.head(n), list(draws), "best_val_accuracy", None)
        finite = table[["ci_low", "ci_high"]].to_numpy()
        assert (finite >= -1).all() and (finite <= 1).all()
        assert set(table["state"]) <= set(sequential.STATES)
    assert table.loc[(table["a"] == "GRU") & (table["b"] == "LSTM"), "state"].item() == "first better"
    assert table["ci_clipped"].any()  # SimpleRNN's wide spread reaches the range: flagged, not printed past it
    assert list(table.columns) == list(sequential.COLUMNS)


def test_the_boundary_is_infinite_until_enough_draws_and_narrows_after():
    first = sequential.minimum_draws(LEVEL)
    assert math.isinf(sequential.boundary(first - 1, LEVEL))
    widths = sequential.boundary(np.arange(first, 200), LEVEL)
    assert np.all(np.isfinite(widths)) and np.all(np.diff(widths) < 0)
    # at every n the anytime-valid interval is wider than the fixed-n t interval at the same level
    n = np.arange(first, 200)
    assert np.all(widths > scipy_stats.t.ppf(1 - LEVEL / 2, n - 1) / np.sqrt(n))


@pytest.mark.parametrize("low, high, state", [(0.01, 0.05, "first better"), (-0.05, -0.001, "second better"),
                                              (-0.01, 0.015, "equivalent"), (-0.01, 0.03, "undecided")])
def test_a_pair_state_follows_its_interval(low, high, state):
    assert sequential.pair_state(low, high, MARGIN) == state
    assert sequential.pair_state(low, high, None) == (state if "better" in state else "undecided")


def test_the_draws_to_decide_at_an_observed_gap_are_where_the_interval_clears_it():
    sd, gap = 0.13, 0.087  # a pair apart by 8.7 pp with a wide spread
    n = sequential.draws_to_decide(sd, MARGIN, ALPHA, PAIRS, difference=gap)
    assert sd * sequential.boundary(n, LEVEL) < gap <= sd * sequential.boundary(n - 1, LEVEL)
    assert n < sequential.draws_to_decide(sd, MARGIN, ALPHA, PAIRS)  # the worst case, a gap of half the margin
    # a gap near zero is decided by equivalence: the interval must fit within +-(margin - gap)
    near = sequential.draws_to_decide(sd, MARGIN, ALPHA, PAIRS, difference=0.002)
    assert sd * sequential.boundary(near, LEVEL) < MARGIN - 0.002 <= sd * sequential.boundary(near - 1, LEVEL)
