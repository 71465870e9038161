"""Statistics for fair comparisons, checked against scipy on known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from study.analysis.stats import holm, pairwise, sentences, summarize, welch_interval

RNG = np.random.default_rng(7)
SCORES = pd.DataFrame({
    "cell": ["GRU"] * 5 + ["LSTM"] * 5 + ["SimpleRNN"] * 4,
    "val_accuracy": np.concatenate([0.97 + 0.004 * RNG.standard_normal(5), 0.968 + 0.004 * RNG.standard_normal(5),
                                    0.93 + 0.01 * RNG.standard_normal(4)]),
})


def test_summary_matches_scipy_t_interval():
    table = summarize(SCORES, ["cell"], "val_accuracy").set_index("cell")
    for cell, group in SCORES.groupby("cell"):
        x = group["val_accuracy"].to_numpy()
        low, high = scipy_stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=scipy_stats.sem(x))
        assert table.loc[cell, "n"] == len(x)
        assert table.loc[cell, "mean"] == pytest.approx(x.mean())
        assert table.loc[cell, "sd"] == pytest.approx(x.std(ddof=1))
        assert (table.loc[cell, "ci_low"], table.loc[cell, "ci_high"]) == pytest.approx((low, high))


def test_holm_on_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.001]) == pytest.approx([0.001])
    assert holm([]) == []


@pytest.mark.parametrize("test", ["welch", "mannwhitney"])
def test_pairwise_p_values_match_scipy_and_are_holm_adjusted(test):
    table = pairwise(SCORES, "cell", "val_accuracy", test=test)
    assert len(table) == 3
    groups = {k: g["val_accuracy"].to_numpy() for k, g in SCORES.groupby("cell")}
    for row in table.itertuples():
        x, y = groups[row.a], groups[row.b]
        expected = (scipy_stats.ttest_ind(x, y, equal_var=False) if test == "welch"
                    else scipy_stats.mannwhitneyu(x, y, alternative="two-sided")).pvalue
        assert row.p == pytest.approx(expected)
        assert row.difference == pytest.approx(x.mean() - y.mean())
    assert table["p_holm"].tolist() == pytest.approx(holm(table["p"].tolist()))


def test_welch_interval_matches_scipy_confidence_interval():
    x, y = SCORES["val_accuracy"][:5].to_numpy(), SCORES["val_accuracy"][5:10].to_numpy()
    expected = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert welch_interval(x, y) == pytest.approx((expected.low, expected.high))


def test_sentences_read_in_percentage_points():
    table = pairwise(SCORES, "cell", "val_accuracy")
    lines = sentences(table, "val_accuracy")
    gru_lstm = next(line for line in lines if line.startswith("GRU vs LSTM"))
    row = table[(table["a"] == "GRU") & (table["b"] == "LSTM")].iloc[0]
    assert f"{row.difference * 100:+.1f} pp" in gru_lstm
    assert "95% CI" in gru_lstm and "after Holm" in gru_lstm
    assert ("not significant" in gru_lstm) == (not row.significant)
    simple = next(line for line in lines if "SimpleRNN" in line)
    assert "significant at 0.05" in simple


def test_groups_with_one_replicate_are_not_tested():
    one = pd.DataFrame({"cell": ["GRU", "GRU", "LSTM"], "val_loss": [0.1, 0.2, 0.3]})
    assert pairwise(one, "cell", "val_loss").empty
    assert np.isnan(summarize(one, ["cell"], "val_loss").set_index("cell").loc["LSTM", "sd"])
