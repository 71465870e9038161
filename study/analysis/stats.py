"""Statistics for fair comparisons: mean, spread and confidence intervals over replicate seeds,
pairwise tests with a Holm correction, and the plain sentences a lab report needs.

Everything here is a pure function of a DataFrame with one row per replicate (a compared value
such as the cell, and a score), so the numbers can be checked against scipy on known inputs.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

PERCENT_METRICS = ("accuracy",)  # differences in these read best as percentage points


# --------------------------------------------------------------------------- the metric's range


def score_range(score: str) -> tuple[float, float]:
    """The values a score can take: an accuracy in [0, 1]; a loss or MAE in [0, inf)."""
    if any(word in score for word in PERCENT_METRICS):
        return 0.0, 1.0
    return 0.0, math.inf


def difference_range(score: str) -> tuple[float, float]:
    """The values a difference of two scores can take: [-1, +1] (+-100 pp) for accuracies."""
    low, high = score_range(score)
    return low - high, high - low


def within(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float, bool]:
    """An interval cut to `bounds`, and whether it had to be.

    Why a clipped t-interval, not a bootstrap: with the 2-8 replicates or draws a study has, a
    percentile bootstrap is too narrow (it cannot see beyond the few values there are), and
    Wilson's interval is for proportions of independent 0/1 outcomes, not means of accuracies.
    The t-interval keeps its nominal coverage, and since the true mean always lies inside the
    metric's range, cutting the interval to that range never excludes it: coverage is unchanged,
    and no printed bound is impossible. Where it was cut, the interval is flagged (`ci_clipped`):
    the data are too few or too spread to say more than the range itself.
    """
    if math.isnan(low) or math.isnan(high):
        return low, high, False
    cut_low, cut_high = max(low, bounds[0]), min(high, bounds[1])
    return cut_low, cut_high, (cut_low, cut_high) != (low, high)


# --------------------------------------------------------------------------- equivalence and power

POWER = 0.8  # the chance a study of the suggested size tells a margin-sized difference


def default_margin(score: str) -> float | None:
    """The smallest difference that matters, for equivalence and for how much more evidence a pair
    needs: 2 pp for accuracies. Paired draws of the quick study differ by a 2.3 pp standard
    deviation, so a smaller margin could not be shown within a lab's budget, and below 2 pp lab
    reports do not treat a gap as a finding. None for losses and MAEs, whose scale is the task's."""
    return 0.02 if any(word in score for word in PERCENT_METRICS) else None


def equivalence_p(x: np.ndarray, y: np.ndarray, margin: float, paired: bool) -> float:
    """The TOST p-value (two one-sided t-tests, statsmodels) that mean(x) - mean(y) lies within
    +-margin: below alpha, "no difference that matters" is a finding, not an absence of one."""
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    if len(x) < 2 or len(y) < 2:
        return math.nan
    differences = x - y if paired else None
    if paired and np.all(differences == differences[0]):  # no spread: inside or outside, for certain
        return 0.0 if abs(differences[0]) < margin else 1.0
    if not paired and np.var(x, ddof=1) == 0 and np.var(y, ddof=1) == 0:
        return 0.0 if abs(np.mean(x) - np.mean(y)) < margin else 1.0
    test = ttost_paired if paired else ttost_ind
    return float(test(x, y, -margin, margin)[0])


def n_to_tell(sd: float, margin: float, pairs: int, paired: bool, alpha: float = 0.05) -> int | None:
    """Observations (paired draws, or replicates per value) at which a t-test tells a difference of
    `margin` with 80% power, given the observed spread `sd` (of the differences, or pooled), at
    alpha / pairs (Bonferroni: Holm is never stricter). statsmodels' power solver; None without spread."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not sd or math.isnan(sd) or sd <= 0:
        return None
    effect = margin / sd
    if effect > 10:  # a spread far below the margin: the fewest observations a t-test takes will do
        return 2
    solver = TTestPower() if paired else TTestIndPower()
    try:
        with warnings.catch_warnings():  # no convergence is answered below, as None, not printed
            warnings.simplefilter("ignore")
            n = float(np.atleast_1d(solver.solve_power(effect_size=effect, alpha=alpha / max(pairs, 1),
                                                       power=POWER))[0])
    except (ValueError, RuntimeError):  # the solver found no root: say nothing rather than a wrong n
        return None
    return None if math.isnan(n) else max(2, math.ceil(n))


# --------------------------------------------------------------------------- replicates


def summarize(values: pd.DataFrame, by: list[str], score: str, confidence: float = 0.95) -> pd.DataFrame:
    """n, mean, standard deviation and a t-based confidence interval of `score` per group, cut to the
    score's range (`within`; `ci_clipped` says where)."""
    rows = []
    for key, group in values.groupby(by, sort=True):
        scores = group[score].dropna().to_numpy(float)
        n = len(scores)
        mean = float(np.mean(scores)) if n else math.nan
        sd = float(np.std(scores, ddof=1)) if n > 1 else math.nan
        low, high, clipped = within(*t_interval(scores, confidence), score_range(score))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "n": n, "mean": mean, "sd": sd, "ci_low": low, "ci_high": high, "ci_clipped": clipped})
    return pd.DataFrame(rows, columns=[*by, "n", "mean", "sd", "ci_low", "ci_high", "ci_clipped"])


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    count = len(pvalues)
    order = sorted(range(count), key=lambda i: pvalues[i])
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def t_interval(scores: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean of `scores` (NaN for fewer than two)."""
    if len(scores) < 2:
        return math.nan, math.nan
    mean, sem = float(np.mean(scores)), float(stats.sem(scores))
    if sem == 0:  # identical scores: scipy would give NaN, the interval is the point itself
        return mean, mean
    low, high = stats.t.interval(confidence, len(scores) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of mean(a) - mean(b) with Welch-Satterthwaite degrees of freedom."""
    result = stats.ttest_ind(a, b, equal_var=False)
    if np.var(a, ddof=1) == 0 and np.var(b, ddof=1) == 0:  # no spread: scipy's interval is NaN
        diff = float(np.mean(a) - np.mean(b))
        return diff, diff
    interval = result.confidence_interval(confidence)
    return float(interval.low), float(interval.high)


def pairwise(
    values: pd.DataFrame, by: str, score: str, test: str = "welch", alpha: float = 0.05,
    margin: float | None = None,
) -> pd.DataFrame:
    """Every pair of groups: mean difference, its 95% CI, the test's p-value and Holm's adjustment.

    `test` is "welch" (Welch's t-test, unequal variances) or "mannwhitney" (two-sided rank test).
    Groups with fewer than two replicates cannot be tested and are left out.
    """
    groups = {k: g[score].dropna().to_numpy(float) for k, g in values.groupby(by, sort=True)}
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    margin = default_margin(score) if margin is None else margin
    pairs = len(groups) * (len(groups) - 1) // 2
    rows = []
    for a, b in itertools.combinations(groups, 2):
        x, y = groups[a], groups[b]
        if test == "welch":
            p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
        elif test == "mannwhitney":
            p = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        else:
            raise ValueError(f"unknown test {test!r}; use welch or mannwhitney")
        low, high, clipped = within(*welch_interval(x, y), difference_range(score))
        pooled = math.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2)
        rows.append({"a": a, "b": b, "difference": float(np.mean(x) - np.mean(y)),
                     "ci_low": low, "ci_high": high, "ci_clipped": clipped, "p": 1.0 if math.isnan(p) else p,
                     **_margin_columns(x, y, margin, pooled, pairs, False, alpha)})
    table = pd.DataFrame(rows, columns=["a", "b", "difference", "ci_low", "ci_high", "ci_clipped", "p",
                                        *MARGIN_COLUMNS])
    table["p_holm"] = holm(table["p"].tolist()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    table["test"] = {"welch": "Welch's t", "mannwhitney": "Mann-Whitney U"}[test]
    return table


def sentences(comparisons: pd.DataFrame, score: str, alpha: float = 0.05) -> list[str]:
    """'GRU vs LSTM: +0.4 pp (95% CI -0.1 to +0.9), not significant at 0.05 after Holm (...)'."""
    percent = any(word in score for word in PERCENT_METRICS)
    scale, unit = (100.0, " pp") if percent else (1.0, "")
    digits = 1 if percent else 4
    lines = []
    for row in comparisons.itertuples(index=False):
        verdict = "significant" if row.significant else "not significant"
        lines.append(
            f"{row.a} vs {row.b}: {row.difference * scale:+.{digits}f}{unit} "
            f"(95% CI {row.ci_low * scale:+.{digits}f} to {row.ci_high * scale:+.{digits}f}{_cut(row)}), "
            f"{verdict} at {alpha:g} after Holm ({row.test}, p = {row.p:.3g}, adjusted {row.p_holm:.3g})"
        )
    return lines


# --------------------------------------------------------------------------- paired draws


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value Wilcoxon's signed-rank test can give on `n` non-zero
    differences: all of one sign, 2 / 2**n (0.125 for 4 draws, 0.031 for 6)."""
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


def draws_needed(pairs: int, alpha: float = 0.05) -> int:
    """The fewest paired draws with which Wilcoxon's test can reach Holm-adjusted p < `alpha` over
    `pairs` comparisons at all (the most significant pair is multiplied by `pairs`)."""
    n = 1
    while pairs * smallest_wilcoxon_p(n) >= alpha:
        n += 1
    return n


def paired_pairwise(draws: pd.DataFrame, values: list, alpha: float = 0.05, confidence: float = 0.95,
                    score: str = "", margin: float | None = None) -> pd.DataFrame:
    """Every pair of compared values on paired draws (one row per draw, one score column per value).

    For a, b: n draws, wins of a, wins of b, ties, the mean of (a - b) with a t-interval
    (`scipy.stats.ttest_rel`, cut to the range of a difference of `score`: `within`), the Wilcoxon
    signed-rank p-value (two-sided; exact for small n, zero differences dropped), the smallest p it
    could give on these draws (`smallest_p`), and its Holm adjustment over the pairs.
    """
    margin = default_margin(score) if margin is None else margin
    pairs = len(values) * (len(values) - 1) // 2
    rows = []
    for a, b in itertools.combinations(values, 2):
        both = draws[[a, b]].dropna()
        x, y = both[a].to_numpy(float), both[b].to_numpy(float)
        differences = x - y
        n = len(differences)
        low = high = p = math.nan
        if n >= 2:
            if np.all(differences == differences[0]):  # no spread: the interval is the point itself
                low = high = float(differences[0])
            else:
                interval = stats.ttest_rel(x, y).confidence_interval(confidence)
                low, high = float(interval.low), float(interval.high)
            p = 1.0 if np.all(differences == 0) else float(stats.wilcoxon(x, y).pvalue)
        low, high, clipped = within(low, high, difference_range(score))
        rows.append({"a": a, "b": b, "n": n, "wins_a": int((differences > 0).sum()),
                     "wins_b": int((differences < 0).sum()), "ties": int((differences == 0).sum()),
                     "difference": float(np.mean(differences)) if n else math.nan,
                     "ci_low": low, "ci_high": high, "ci_clipped": clipped, "p": p,
                     "smallest_p": smallest_wilcoxon_p(int((differences != 0).sum())),
                     **_margin_columns(x, y, margin, float(np.std(differences, ddof=1)) if n > 1 else math.nan,
                                       pairs, True, alpha)})
    table = pd.DataFrame(rows, columns=["a", "b", "n", "wins_a", "wins_b", "ties", "difference", "ci_low",
                                        "ci_high", "ci_clipped", "p", "smallest_p", *MARGIN_COLUMNS])
    tested = table["p"].notna()
    table["p_holm"] = math.nan
    if tested.any():
        table.loc[tested, "p_holm"] = holm(table.loc[tested, "p"].tolist())
    table["significant"] = table["p_holm"] < alpha
    table["test"] = "Wilcoxon signed-rank"
    return table


def paired_sentences(comparisons: pd.DataFrame, score: str, maximize: bool, alpha: float = 0.05) -> list[str]:
    """'GRU vs LSTM: GRU better on 7 of 8 draws (LSTM on 1, 0 ties); mean GRU - LSTM +1.2 pp (95% CI
    +0.4 to +2.0), Wilcoxon signed-rank p = 0.016, Holm 0.047: significant at 0.05'."""
    percent = any(word in score for word in PERCENT_METRICS)
    scale, unit, digits = (100.0, " pp", 1) if percent else (1.0, "", 4)
    lines = []
    for row in comparisons.itertuples(index=False):
        better_a, better_b = (row.wins_a, row.wins_b) if maximize else (row.wins_b, row.wins_a)
        tested = ("too few draws to test" if math.isnan(row.p) else
                  f"{row.test} p = {row.p:.3g}, Holm {row.p_holm:.3g}: "
                  f"{'significant' if row.significant else 'not significant'} at {alpha:g}")
        lines.append(
            f"{row.a} vs {row.b}: {row.a} better on {better_a} of {row.n} draws ({row.b} on {better_b}, "
            f"{row.ties} ties); mean {row.a} - {row.b} {row.difference * scale:+.{digits}f}{unit} (95% CI "
            f"{row.ci_low * scale:+.{digits}f} to {row.ci_high * scale:+.{digits}f}{_cut(row)}), {tested}"
        )
    return lines


def _cut(row) -> str:
    return ", cut to the metric's range" if getattr(row, "ci_clipped", False) else ""


MARGIN_COLUMNS = ("margin", "equivalence_p", "equivalent", "n_to_tell")


def _margin_columns(x: np.ndarray, y: np.ndarray, margin: float | None, sd: float, pairs: int, paired: bool,
                    alpha: float) -> dict:
    """Per pair: the margin, TOST's p that the difference lies within it, whether it does, and the
    observations that would tell a margin-sized difference at 80% power."""
    if margin is None:
        return {"margin": math.nan, "equivalence_p": math.nan, "equivalent": False, "n_to_tell": None}
    p = equivalence_p(x, y, margin, paired)
    return {"margin": margin, "equivalence_p": p, "equivalent": bool(p < alpha),
            "n_to_tell": n_to_tell(sd, margin, pairs, paired, alpha)}
