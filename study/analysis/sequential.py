"""Anytime-valid decisions on paired draws: confidence sequences, looked at after every round.

A study run "until decided" trains every compared value once per round (a paired draw) and looks
at the differences after every round, stopping when every pair is decided. A fixed-n test looked at
that often is wrong far more often than its alpha: a t-test at 0.05 / 3 on each of three pairs,
looked at after each of 100 rounds of values that do not differ, declares a difference in 41% of
simulated studies (tests/test_sequential.py). A confidence sequence is instead a sequence of
intervals that all hold at once with probability 1 - alpha, so the error rate holds however often
it looks and whenever it stops (Howard et al. 2021, "Time-uniform, nonparametric, nonasymptotic
confidence sequences"; Waudby-Smith, Wu, Ramdas et al. 2021, "Time-uniform central limit theory
and asymptotic confidence sequences"). We use the Gaussian-mixture confidence sequence with the
spread estimated from the draws themselves, Lai's (1976) t-confidence sequence (see Wang & Ramdas
2023, "Anytime-valid t-tests and confidence sequences for Gaussian means with unknown variance"):
the normal-mixture boundary of those papers, with the estimated spread's own uncertainty in it, as
Student's t has it for a fixed n. Each pair's sequence runs at alpha / pairs (Bonferroni), so that
the chance of any wrong "better" among all pairs, at any look, stays below alpha. A pair is
"better" once its interval excludes zero, "equivalent" once it lies within +-margin, otherwise
"undecided"; the study is decided when no pair is undecided.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from study.analysis import stats

# The n the boundary is narrowest at. The mixture's width changes little with it: tuned for 10 or
# for 50 draws, the interval at 100 draws differs by 5% (0.370 vs 0.353 sd) and the first finite
# one comes at 6 vs 9 draws (alpha 0.05 / 3). 10 decides clear pairs soonest: simulated studies
# with 3 values 4 margins apart stop after 6.9 rounds at 10, 10.3 at 50, while studies of 3 equal
# values stop after 33 rounds either way (benchmarks/sequential_vs_fixed.py's setting).
DEFAULT_TARGET = 10

STATES = ("first better", "second better", "equivalent", "undecided")
LARGEST_N = 10**7  # draws_to_decide searches no further: beyond it a study cannot afford the answer


def mixing_precision(alpha: float, target_n: int = DEFAULT_TARGET) -> float:
    """c^2 = 1 / rho^2: the precision of the mixture's Gaussian prior on the standardised effect,
    with rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / target_n, the value that makes the
    boundary narrowest near target_n (Howard et al. 2021, eq. 3.3's tuning)."""
    two_log = -2.0 * math.log(alpha)
    return target_n / (two_log + math.log(two_log + 1.0))


def boundary(n, alpha: float, target_n: int = DEFAULT_TARGET) -> np.ndarray:
    """The half-width of the (1 - alpha) confidence sequence after n draws, in units of the draws'
    sample standard deviation; inf while the sequence cannot yet exclude anything.

    Lai's mixture martingale for a mean mu, with T = sum(x - mu), S = sum((x - mu)^2), is
    sqrt(c^2 / (n + c^2)) * (1 - T^2 / ((n + c^2) S))^(-n/2); mu stays in the sequence while it is
    below 1 / alpha, which solved for mu is mean +- sd * sqrt(k (n - 1) / (n (n - k))) with
    k = (1 - g)(n + c^2) and g = (alpha sqrt(c^2 / (n + c^2)))^(2/n), finite only once n > k.
    Why this and not the asymptotic boundary with a plugged-in sd: that one is anti-conservative
    for small n; with 3 equal values looked at for 100 rounds it declared a difference in 49% of
    studies from 2 draws on, 15% from 5, 6.5% from 10 (target 0.05). Lai's needs no minimum: it is
    infinite below 6 draws at alpha 0.05 / 3 and declared one in 2.9%.
    """
    n = np.asarray(n, dtype=float)
    c2 = mixing_precision(alpha, target_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (alpha * np.sqrt(c2 / (n + c2))) ** (2.0 / n)
        k = (1.0 - g) * (n + c2)
        width = np.sqrt(k * (n - 1.0) / (n * (n - k)))
    return np.where((n >= 2) & (n > k), width, np.inf)


def minimum_draws(alpha: float, target_n: int = DEFAULT_TARGET) -> int:
    """The fewest draws at which the confidence sequence is finite (6 at 0.05 / 3, target 10)."""
    n = 2
    while not np.isfinite(boundary(n, alpha, target_n)):
        n += 1
    return n


def running_confidence_sequence(differences: np.ndarray, alpha: float,
                                target_n: int = DEFAULT_TARGET) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sequence after each draw: (low, high) arrays shaped like `differences`, whose
    last axis is the draws in order (leading axes: independent studies, for simulations)."""
    x = np.asarray(differences, dtype=float)
    n = np.arange(1, x.shape[-1] + 1)
    shifted = x - x[..., :1]  # the variance does not change with a shift, and its sums keep their digits
    sums, squares = np.cumsum(shifted, axis=-1), np.cumsum(shifted**2, axis=-1)
    mean = sums / n
    variance = np.maximum(squares - n * mean**2, 0.0) / np.maximum(n - 1, 1)
    with np.errstate(invalid="ignore"):  # an identical run of draws: sd 0, the interval is the point
        half = np.where(np.isfinite(boundary(n, alpha, target_n)),
                        np.sqrt(variance) * boundary(n, alpha, target_n), np.inf)
    return mean + x[..., :1] - half, mean + x[..., :1] + half


def confidence_sequence(differences: np.ndarray, alpha: float,
                        target_n: int = DEFAULT_TARGET) -> tuple[float, float]:
    """The anytime-valid (1 - alpha) interval for the mean difference at the current n; (-inf, inf)
    below `minimum_draws`."""
    x = np.asarray(differences, dtype=float)
    if len(x) < 2:
        return -math.inf, math.inf
    low, high = running_confidence_sequence(x, alpha, target_n)
    return float(low[-1]), float(high[-1])


def pair_state(low: float, high: float, margin: float | None) -> str:
    """"first better" (low > 0), "second better" (high < 0), "equivalent" (inside +-margin), or
    "undecided". An interval inside +-margin that excludes zero is better, not equivalent: the
    tiers need the order, and the reported difference says how small it is."""
    if low > 0:
        return "first better"
    if high < 0:
        return "second better"
    if margin is not None and not math.isnan(margin) and -margin < low and high < margin:
        return "equivalent"
    return "undecided"


def draws_to_decide(sd: float, margin: float | None, alpha: float, pairs: int,
                    target_n: int = DEFAULT_TARGET, difference: float | None = None) -> int | None:
    """The fewest draws at which the sequence's half-width, at spread `sd`, is small enough to decide.

    Without `difference`: below margin / 2. An interval narrower than the margin either excludes
    zero (better) or, containing it, lies within +-margin (equivalent): at this n every pair is
    decided whatever its true difference, as long as the spread stays near `sd`. With the observed
    `difference` d: below max(|d|, margin - |d|), where an interval around d excludes zero or lies
    within +-margin; a pair 8.7 pp apart with a 28 pp spread needs tens of draws, not the thousands
    a 1 pp half-width would take. None without a margin or a spread.
    """
    if margin is None or sd is None or math.isnan(margin) or math.isnan(sd) or sd <= 0 or margin <= 0:
        return None
    level = alpha / max(pairs, 1)
    enough = margin / 2 if difference is None or math.isnan(difference) else max(abs(difference), margin - abs(difference))

    def decides(n: int) -> bool:
        return bool(sd * boundary(n, level, target_n) < enough)

    high = minimum_draws(level, target_n)
    while not decides(high):  # the width falls as n grows: double, then bisect
        if high > LARGEST_N:
            return None
        high *= 2
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decides(middle) else (middle, high)
    return high if high <= LARGEST_N else None


COLUMNS = ("a", "b", "n", "wins_a", "wins_b", "ties", "difference", "ci_low", "ci_high", "ci_clipped",
           "p", "p_holm", "significant", "state", "margin", "equivalence_p", "equivalent", "n_to_tell",
           "draws_to_decide", "test")


def look(draws: pd.DataFrame, values: list, score: str, margin: float | None,
         alpha: float = 0.05, target_n: int = DEFAULT_TARGET) -> pd.DataFrame:
    """Every pair of `values` on the paired draws so far (one row per draw, one column per value):
    the confidence sequence of mean(a - b) at alpha / pairs, cut to the range a difference of
    `score` can take, and the pair's state. Columns as `stats.paired_pairwise`'s where they mean the
    same (p-values are NaN: a confidence sequence has none), plus `state` and `draws_to_decide`.
    `margin` None takes `stats.default_margin(score)` (2 pp for accuracies, none for losses: then
    pairs are decided only by being better)."""
    margin = stats.default_margin(score) if margin is None else margin
    pairs = len(values) * (len(values) - 1) // 2
    rows = []
    for a, b in itertools.combinations(values, 2):
        both = draws[[a, b]].dropna()
        differences = both[a].to_numpy(float) - both[b].to_numpy(float)
        n = len(differences)
        low, high = confidence_sequence(differences, alpha / max(pairs, 1), target_n)
        low, high, clipped = stats.within(low, high, stats.difference_range(score))
        state = pair_state(low, high, margin)
        sd = float(np.std(differences, ddof=1)) if n > 1 else math.nan
        mean = float(np.mean(differences)) if n else math.nan
        needed = draws_to_decide(sd, margin, alpha, pairs, target_n, difference=mean)
        rows.append({"a": a, "b": b, "n": n, "wins_a": int((differences > 0).sum()),
                     "wins_b": int((differences < 0).sum()), "ties": int((differences == 0).sum()),
                     "difference": float(np.mean(differences)) if n else math.nan,
                     "ci_low": low, "ci_high": high, "ci_clipped": clipped, "p": math.nan, "p_holm": math.nan,
                     "significant": state in ("first better", "second better"), "state": state,
                     "margin": math.nan if margin is None else margin, "equivalence_p": math.nan,
                     "equivalent": state == "equivalent", "n_to_tell": needed, "draws_to_decide": needed,
                     "test": "confidence sequence"})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def all_decided(table: pd.DataFrame) -> bool:
    """Whether no pair of a `look` is undecided (an empty table, no pairs, is not decided)."""
    return bool(len(table)) and bool((table["state"] != "undecided").all())
