"""The verdict on simulated studies: paired statistics against scipy, interval coverage, no false
winners when there is no difference, a winner when there is a clear one, and disagreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from study.analysis import stats

from study.analysis import budget, verdict
from study.analysis.scoring import best_per_value

CELLS = ["SimpleRNN", "GRU", "LSTM"]
SCORE = "best_val_accuracy"


def simulated_study(effects: dict[str, float], draws: int, rng: np.random.Generator, noise: float = 0.01,
                    spread: float = 0.05) -> pd.DataFrame:
    """An equal-budget study: `draws` nuisance draws (a learning rate each), every cell trained on
    each. A draw's quality varies a lot (`spread`), each training adds `noise`, and each cell adds its
    true effect."""
    rows, number = [], 0
    for _ in range(draws):
        rate = float(10 ** rng.uniform(-4, -2))
        quality = 0.9 + rng.normal(0, spread)
        for cell, effect in effects.items():
            rows.append({"trial": number, "state": "COMPLETE", "cell": cell, "learning_rate": rate,
                         SCORE: quality + effect + rng.normal(0, noise)})
            number += 1
    return pd.DataFrame(rows)


def simulated_draws(effects: dict[str, float], draws: int, rng: np.random.Generator, noise: float = 0.01,
                    spread: float = 0.05) -> pd.DataFrame:
    """The paired-draws table of such a study, made directly (for the 200-study simulations)."""
    quality = 0.9 + rng.normal(0, spread, draws)
    return pd.DataFrame({cell: quality + effect + rng.normal(0, noise, draws) for cell, effect in effects.items()})


def decide_on_draws(draws: pd.DataFrame) -> verdict.Verdict:
    """The verdict of a study whose trials are exactly these paired draws."""
    values = list(draws.columns)
    best = verdict.Evidence("best trial", list(draws.max().sort_values(ascending=False).index),
                            {v: len(draws) for v in values}, draws.max().to_dict())
    return verdict.decide("cell", SCORE, True, best, None, verdict.paired_evidence(draws, values, True, SCORE), None)


def decide(trials: pd.DataFrame, values: list[str] = CELLS) -> verdict.Verdict:
    best = best_per_value(trials, "cell")
    draws = verdict.paired_draws(trials, "cell", SCORE, ["learning_rate"], values)
    return verdict.decide("cell", SCORE, True, verdict.best_trial_evidence(best, "cell", SCORE, True),
                          verdict.median_evidence(trials, "cell", SCORE, True),
                          verdict.paired_evidence(draws, values, True), None)


def test_paired_statistics_equal_scipys():
    rng = np.random.default_rng(3)
    draws = pd.DataFrame({"A": rng.normal(0.9, 0.03, 9)})
    draws["B"] = draws["A"] - 0.01 + rng.normal(0, 0.01, 9)
    draws["C"] = draws["A"] + rng.normal(0, 0.01, 9)
    table = stats.paired_pairwise(draws, ["A", "B", "C"]).set_index(["a", "b"])
    raw = []
    for a, b in (("A", "B"), ("A", "C"), ("B", "C")):
        row = table.loc[(a, b)]
        interval = scipy_stats.ttest_rel(draws[a], draws[b]).confidence_interval(0.95)
        assert row["difference"] == pytest.approx((draws[a] - draws[b]).mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high))
        assert row["p"] == pytest.approx(scipy_stats.wilcoxon(draws[a], draws[b]).pvalue)
        assert row["wins_a"] + row["wins_b"] + row["ties"] == row["n"] == 9
        raw.append(row["p"])
    assert list(table["p_holm"]) == pytest.approx(stats.holm(raw))


def test_only_draws_with_the_same_nuisance_values_are_paired():
    trials = simulated_study({"GRU": 0.0, "LSTM": 0.0}, draws=4, rng=np.random.default_rng(0))
    trials.loc[trials.index[2], "state"] = "FAIL"  # draw 2 of GRU failed: that draw has no pair
    trials.loc[trials.index[5], "learning_rate"] = 0.5  # draw 3 of LSTM saw another rate: no pair
    draws = verdict.paired_draws(trials, "cell", SCORE, ["learning_rate"], ["GRU", "LSTM"])
    assert list(draws["draw"]) == [1, 2] and list(draws.columns) == ["draw", "learning_rate", "GRU", "LSTM"]
    assert draws["learning_rate"].tolist() == trials["learning_rate"].iloc[[0, 6]].tolist()


def test_the_paired_interval_covers_the_true_difference_in_at_least_90_percent_of_studies():
    rng = np.random.default_rng(2026)
    truth, covered = 0.01, 0
    for _ in range(200):
        row = stats.paired_pairwise(simulated_draws({"GRU": truth, "LSTM": 0.0}, 8, rng), ["GRU", "LSTM"]).iloc[0]
        covered += row["ci_low"] <= truth <= row["ci_high"]
    assert covered >= 180, covered


def test_with_no_true_difference_no_tier_is_claimed_in_at_least_90_percent():
    rng = np.random.default_rng(7)
    verdicts = [decide_on_draws(simulated_draws({cell: 0.0 for cell in CELLS}, 8, rng)) for _ in range(200)]
    one_tier = [v for v in verdicts if len(v.tiers) == 1]  # no value placed above another, not only no winner
    assert len(one_tier) >= 180, len(one_tier)
    assert all(v.winner is None for v in one_tier)
    assert all(v.headline.startswith("Across the search space: ") and (
        "no clear winner on 8 paired draws" in v.headline or " are equivalent within " in v.headline) for v in one_tier)


def test_a_clear_true_difference_is_found():
    rng = np.random.default_rng(11)
    verdicts = [decide_on_draws(simulated_draws({"SimpleRNN": 0.0, "GRU": 0.03, "LSTM": 0.0}, 8, rng))
                for _ in range(50)]
    assert decide(simulated_study({"SimpleRNN": 0.0, "GRU": 0.03, "LSTM": 0.0}, 8, rng)).winner == "GRU"
    assert sum(v.winner == "GRU" for v in verdicts) >= 45
    assert not any(v.winner not in (None, "GRU") for v in verdicts)


def test_a_best_trial_that_the_paired_draws_contradict_is_not_crowned():
    # The quick study's pattern: GRU has the single best trial, SimpleRNN wins most paired draws.
    scores = {"SimpleRNN": [0.970, 0.972, 0.968, 0.975, 0.971, 0.969, 0.973, 0.970],
              "GRU": [0.990, 0.960, 0.955, 0.962, 0.958, 0.980, 0.950, 0.961],
              "LSTM": [0.940, 0.941, 0.939, 0.945, 0.938, 0.944, 0.936, 0.942]}
    rows = [{"trial": 3 * k + i, "state": "COMPLETE", "cell": cell, "learning_rate": 0.001 * (k + 1), SCORE: s[k]}
            for k in range(8) for i, (cell, s) in enumerate(scores.items())]
    result = decide(pd.DataFrame(rows))
    assert result.winner != "GRU"
    assert any("best single trials put GRU first" in w and "paired draws put SimpleRNN first" in w
               for w in result.warnings)
    assert result.basis == "paired draws"
    assert any(line.startswith("SimpleRNN vs GRU: SimpleRNN better by") for line in result.details)


def test_only_best_trials_give_no_winner_and_say_what_would():
    trials = pd.DataFrame([{"trial": i, "state": "COMPLETE", "cell": c, "learning_rate": 0.001 * (i + 1), SCORE: s}
                           for i, (c, s) in enumerate([("GRU", 0.99), ("LSTM", 0.95), ("SimpleRNN", 0.9)])])
    result = decide(trials)
    assert result.winner is None and result.basis == "best trial"
    assert "study replicate" in result.headline and "GRU (0.9900, n=1)" in result.headline


def test_replicates_are_the_strongest_evidence_and_disagreement_between_kinds_means_no_winner():
    rng = np.random.default_rng(5)
    trials = simulated_study({"GRU": 0.03, "LSTM": 0.0}, 8, rng)  # the paired draws favour GRU
    replicates = pd.DataFrame([{"cell": c, SCORE: v} for c, m in (("GRU", 0.90), ("LSTM", 0.95))
                               for v in m + rng.normal(0, 0.002, 4)])  # the replicates favour LSTM
    summary = stats.summarize(replicates, ["cell"], SCORE)
    evidence = verdict.replicate_evidence(summary, stats.pairwise(replicates, "cell", SCORE), "cell", True)
    draws = verdict.paired_draws(trials, "cell", SCORE, ["learning_rate"], ["GRU", "LSTM"])
    best = best_per_value(trials, "cell")
    result = verdict.decide("cell", SCORE, True, verdict.best_trial_evidence(best, "cell", SCORE, True), None,
                            verdict.paired_evidence(draws, ["GRU", "LSTM"], True), evidence)
    # Each kind answers its own question: the headline answers "when tuned" and says so, and the
    # other question's opposite answer is a finding, not hidden.
    assert result.basis == "replicates" and result.winner == "LSTM"
    assert result.headline.startswith("When tuned: LSTM wins: it beats every other cell")
    assert [a.question for a in result.answers] == ["when tuned", "across the search space"]
    assert result.answers[1].tiers == [["GRU"], ["LSTM"]]
    assert any(f.startswith("the questions disagree: when tuned, LSTM above GRU; across the search space, the "
                            "other way round") for f in result.findings)


# --------------------------------------------------------------------------- what the metric allows


def test_wilcoxons_smallest_p_is_scipys_and_too_few_draws_are_said_with_the_n_they_need():
    for n in (3, 4, 5, 6, 7):
        one_sided = np.arange(1, n + 1) / 100  # every difference of one sign: the most extreme data
        assert stats.smallest_wilcoxon_p(n) == pytest.approx(scipy_stats.wilcoxon(one_sided).pvalue)
    assert [stats.draws_needed(pairs) for pairs in (1, 2, 3)] == [6, 7, 7]
    # GRU better than both others on 4 of 4 draws, both intervals above zero: still no test can say it.
    draws = pd.DataFrame({"GRU": [0.90, 0.80, 0.85, 0.95], "LSTM": [0.87, 0.78, 0.80, 0.90],
                          "SimpleRNN": [0.70, 0.60, 0.66, 0.72]})
    found = decide_on_draws(draws)
    assert found.winner is None
    [warning] = [w for w in found.warnings if "cannot be enough" in w]
    assert "4 paired draws" in warning and "smallest possible p is 0.125" in warning
    assert "after Holm's correction over 3 pairs" in warning and "at least 7 paired draws" in warning
    assert "4 draws are too few for the test to decide at all: it needs at least 7" in found.headline
    # With 8 draws the same lead can be tested: no such warning.
    more = decide_on_draws(pd.concat([draws, draws + 0.01], ignore_index=True))
    assert not any("cannot be enough" in w for w in more.warnings)


def test_no_interval_leaves_the_metrics_range_and_a_cut_one_is_flagged():
    # Four replicates spread from 0.35 to 0.99: the t-interval of their mean runs past 1.
    replicates = pd.DataFrame({"cell": ["GRU"] * 4 + ["LSTM"] * 4,
                               SCORE: [0.99, 0.98, 0.35, 0.97, 0.05, 0.9, 0.1, 0.08]})
    raw = stats.t_interval(replicates[replicates["cell"] == "GRU"][SCORE].to_numpy())
    assert raw[1] > 1  # what used to be printed
    summary = stats.summarize(replicates, ["cell"], SCORE).set_index("cell")
    assert summary.loc["GRU", "ci_high"] == 1.0 and summary.loc["GRU", "ci_clipped"]
    assert summary.loc["GRU", "ci_low"] == pytest.approx(raw[0])  # only the impossible side is cut
    assert (summary["ci_low"] >= 0).all() and (summary["ci_high"] <= 1).all()
    pairs = stats.pairwise(replicates, "cell", SCORE)
    assert (pairs["ci_low"] >= -1).all() and (pairs["ci_high"] <= 1).all()
    assert pairs["ci_clipped"].iloc[0] and pairs["ci_high"].iloc[0] == 1.0  # Welch's interval ran to +118.6 pp
    assert "to +100.0, cut to the metric's range)" in stats.sentences(pairs, SCORE)[0]
    # A loss is never below 0; an interval inside the range is left exactly as it was.
    losses = pd.DataFrame({"cell": ["GRU"] * 3, "val_loss": [0.01, 0.02, 0.5]})
    assert stats.summarize(losses, ["cell"], "val_loss")["ci_low"].iloc[0] == 0.0
    tight = pd.DataFrame({"cell": ["GRU"] * 3, SCORE: [0.80, 0.81, 0.82]})
    row = stats.summarize(tight, ["cell"], SCORE).iloc[0]
    assert not row["ci_clipped"] and (row["ci_low"], row["ci_high"]) == pytest.approx(
        stats.t_interval(tight[SCORE].to_numpy()))
    # Paired differences of accuracies stay within +-100 pp.
    wild = pd.DataFrame({"A": [1.0, 0.0, 1.0], "B": [0.0, 0.9, 0.0]})
    table = stats.paired_pairwise(wild, ["A", "B"], score=SCORE)
    assert table["ci_low"].iloc[0] >= -1 and table["ci_high"].iloc[0] <= 1 and table["ci_clipped"].iloc[0]


def test_equal_cells_are_found_equivalent_and_unequal_ones_not():
    rng = np.random.default_rng(11)
    same = simulated_draws({"GRU": 0.0, "LSTM": 0.0}, 12, rng, noise=0.004)
    row = stats.paired_pairwise(same, ["GRU", "LSTM"], score=SCORE).iloc[0]
    assert row["margin"] == 0.02 and row["equivalent"] and row["equivalence_p"] < 0.05
    found = decide_on_draws(same)
    assert found.winner is None and "equivalent within ±2.0 pp (TOST p = " in " ".join(found.details)
    apart = simulated_draws({"GRU": 0.04, "LSTM": 0.0}, 12, rng, noise=0.004)  # 2 x the margin
    assert not stats.paired_pairwise(apart, ["GRU", "LSTM"], score=SCORE).iloc[0]["equivalent"]
    # A loss has no default margin: nothing is claimed equivalent.
    assert not stats.paired_pairwise(same, ["GRU", "LSTM"], score="best_val_loss").iloc[0]["equivalent"]


def test_the_suggested_number_of_draws_tells_a_margin_sized_difference_about_80_percent_of_the_time():
    rng = np.random.default_rng(5)
    sd, margin, pairs = 0.023, 0.02, 3  # the quick study's spread of paired differences
    needed = stats.n_to_tell(sd, margin, pairs, paired=True)
    told = [scipy_stats.ttest_1samp(rng.normal(margin, sd, needed), 0).pvalue < 0.05 / pairs for _ in range(2000)]
    assert 0.76 <= np.mean(told) <= 0.88, (needed, np.mean(told))  # 80% power, as asked of statsmodels
    fewer = [scipy_stats.ttest_1samp(rng.normal(margin, sd, needed // 2), 0).pvalue < 0.05 / pairs for _ in range(2000)]
    assert np.mean(fewer) < 0.6  # half as many would not do
    # The verdict says what an undecided pair needs.
    close = simulated_draws({"GRU": 0.005, "LSTM": 0.0}, 6, rng, noise=0.02)
    sentence = " ".join(decide_on_draws(close).details)
    assert "undecided: about" in sentence and "paired draws" in sentence and "at 80% power" in sentence


# --------------------------------------------------------------------------- tiers


def test_tiers_cut_only_where_every_value_above_beats_every_value_below():
    beaten = {("A", "B"), ("A", "C"), ("A", "D"), ("B", "D"), ("C", "D")}  # B vs C: not decided
    assert verdict.tiers(list("ABCD"), lambda a, b: (a, b) in beaten) == [["A"], ["B", "C"], ["D"]]
    beaten.discard(("B", "D"))  # then no cut stands above D: B is not above it
    assert verdict.tiers(list("ABCD"), lambda a, b: (a, b) in beaten) == [["A"], ["B", "C", "D"]]
    assert verdict.tiers(list("AB"), lambda a, b: False) == [["A", "B"]]


def test_gated_cells_far_above_simplernn_lead_the_headline_as_a_tier():
    # The MNIST-1D pattern: GRU and LSTM 36-50 pp above SimpleRNN on replicates, close to each other.
    rng = np.random.default_rng(1)
    replicates = pd.DataFrame([{"cell": c, SCORE: v} for c, m in (("SimpleRNN", 0.30), ("GRU", 0.80), ("LSTM", 0.78))
                               for v in m + rng.normal(0, 0.03, 4)])
    summary = stats.summarize(replicates, ["cell"], SCORE)
    evidence = verdict.replicate_evidence(summary, stats.pairwise(replicates, "cell", SCORE), "cell", True)
    best = verdict.Evidence("best trial", ["GRU", "LSTM", "SimpleRNN"], {c: 4 for c in CELLS},
                            {"GRU": 0.8, "LSTM": 0.78, "SimpleRNN": 0.3})
    result = verdict.decide("cell", SCORE, True, best, None, None, evidence)
    assert result.winner is None and result.tiers == [["GRU", "LSTM"], ["SimpleRNN"]]
    assert result.headline.startswith("When tuned: GRU and LSTM beat SimpleRNN (by ")
    assert "Holm p <= " in result.headline and "4 replicates per cell)" in result.headline
    assert "; GRU vs LSTM undecided: about " in result.headline and "would tell a 2.0 pp difference" in result.headline
    low, high = (float(x) for x in result.headline.split("(by ")[1].split(" pp")[0].split("-"))
    gaps = sorted(replicates.groupby("cell")[SCORE].mean()[["GRU", "LSTM"]] -
                  replicates.groupby("cell")[SCORE].mean()["SimpleRNN"])
    assert (low, high) == pytest.approx((round(gaps[0] * 100, 1), round(gaps[1] * 100, 1)))
    assert len(result.details) == 3  # every pair, not only the leader's


def test_one_value_alone_in_the_top_tier_wins_and_equal_ones_are_said_equivalent():
    rng = np.random.default_rng(4)
    found = decide_on_draws(simulated_draws({"SimpleRNN": 0.0, "GRU": 0.05, "LSTM": 0.0}, 16, rng, noise=0.004))
    assert found.winner == "GRU" and found.tiers[0] == ["GRU"]
    assert found.headline.startswith("Across the search space: GRU wins: it beats every other cell (by ")
    assert "SimpleRNN vs LSTM equivalent within ±2.0 pp" in found.headline or "LSTM vs SimpleRNN equivalent" in found.headline
    same = decide_on_draws(simulated_draws({cell: 0.0 for cell in CELLS}, 16, rng, noise=0.004))
    assert same.tiers == [same.evidence[0].ranking] and same.winner is None
    assert " are equivalent within ±2.0 pp (16 paired draws; TOST p <= " in same.headline


def test_the_tuning_budget_question_is_answered_and_a_changing_leader_is_a_finding():
    # LSTM is steady (good mean trial), GRU erratic but with the higher top: LSTM leads at k = 1, GRU at k = 8.
    scores = {"LSTM": [0.90, 0.91, 0.90, 0.91, 0.90, 0.91, 0.90, 0.91],
              "GRU": [0.70, 0.97, 0.75, 0.96, 0.72, 0.98, 0.74, 0.95]}
    rows = [{"trial": 2 * k + i, "state": "COMPLETE", "cell": cell, "learning_rate": 0.001 * (k + 1), SCORE: s[k]}
            for k in range(8) for i, (cell, s) in enumerate(scores.items())]
    trials = pd.DataFrame(rows)
    curve = budget.budget_curve(trials, "cell", SCORE, True, ["GRU", "LSTM"])
    best = best_per_value(trials, "cell")
    draws = verdict.paired_draws(trials, "cell", SCORE, ["learning_rate"], ["GRU", "LSTM"])
    result = verdict.decide("cell", SCORE, True, verdict.best_trial_evidence(best, "cell", SCORE, True), None,
                            verdict.paired_evidence(draws, ["GRU", "LSTM"], True, SCORE), None, curve)
    [answer] = [a for a in result.answers if a.question == "at a tuning budget of k trials"]
    assert f"at k = 1: LSTM 0.9050, GRU {np.mean(scores['GRU']):.4f}" in answer.text and "at k = 8: GRU" in answer.text
    assert any(f.startswith("the leader changes with the tuning budget: LSTM at k = 1, GRU at k = 8") for f in result.findings)
