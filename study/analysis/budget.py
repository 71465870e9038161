"""The expected best score at a tuning budget of k trials, per compared value.

Which cell is better depends on how much tuning a reader can afford: one cell may give good
models on most hyperparameter draws, another the best models when tuned long enough. Dodge et
al. (2019), "Show Your Work: Improved Reporting of Experimental Results", answer "at a budget of k
trials" with the expected maximum of k i.i.d. draws from a value's completed trials (its
empirical distribution). With the n scores sorted v_1 <= ... <= v_n, the chance that the best of k
draws is v_i is (i/n)^k - ((i-1)/n)^k, so

    E[best of k] = sum_i v_i * ((i/n)^k - ((i-1)/n)^k).

k = 1 gives the mean; k -> infinity the best trial. Bands: a percentile bootstrap over the value's
trials (resampled with replacement), cut to the metric's range. A curve read beyond k = n
extrapolates the observed trials, so it stops at n. Pure functions of DataFrames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.analysis import stats

BOOTSTRAP = 1000  # resamples per value: the bands' 2.5/97.5 percentiles move < 0.1 pp between seeds at 1000


def expected_best(scores: np.ndarray, k: int, maximize: bool = True) -> float:
    """The expected best of `k` draws (with replacement) from `scores` (the minimum if not `maximize`)."""
    scores = np.asarray(scores, dtype=float)
    return float(_expected_best_rows(scores[None, :], k, maximize)[0]) if len(scores) else float("nan")


def _expected_best_rows(samples: np.ndarray, k: int, maximize: bool) -> np.ndarray:
    """`expected_best` of every row of `samples` at once (the bootstrap's thousand resamples)."""
    ordered = np.sort(samples, axis=1)
    if not maximize:
        ordered = ordered[:, ::-1]  # the best of k is then the smallest: the same formula, order reversed
    ranks = np.arange(1, samples.shape[1] + 1) / samples.shape[1]
    return ordered @ (ranks**k - (ranks - 1 / samples.shape[1]) ** k)


def budgets(n: int) -> list[int]:
    """The budgets a curve is read at: 1, 2, 4, ... and n itself (the most trials a value had)."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n] if n else []


def budget_curve(trials: pd.DataFrame, by: str, score: str, maximize: bool, order: list,
                 ks: list[int] | None = None, bootstrap: int = BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """One row per (value, k): the expected best `score` of k of the value's completed trials, a 95%
    bootstrap band, and n (the completed trials it rests on). Budgets run to the smallest n of the
    values, so every value is read at the same k; values without completed trials are left out."""
    done = trials[(trials["state"] == "COMPLETE") & trials[score].notna()] if len(trials) else trials
    groups = {v: done.loc[done[by] == v, score].to_numpy(float) for v in order if by in done}
    groups = {v: x for v, x in groups.items() if len(x)}
    columns = [by, "k", "expected_best", "band_low", "band_high", "n"]
    if not groups:
        return pd.DataFrame(columns=columns)
    ks = ks or budgets(min(len(x) for x in groups.values()))
    rng = np.random.default_rng(seed)
    bounds = stats.score_range(score)
    rows = []
    for value, scores in groups.items():
        resampled = rng.choice(scores, size=(bootstrap, len(scores)), replace=True)
        for k in ks:
            low, high = np.percentile(_expected_best_rows(resampled, k, maximize), [2.5, 97.5])
            low, high, _ = stats.within(float(low), float(high), bounds)
            rows.append({by: value, "k": k, "expected_best": expected_best(scores, k, maximize),
                         "band_low": low, "band_high": high, "n": len(scores)})
    return pd.DataFrame(rows, columns=columns)


def leaders(curve: pd.DataFrame, by: str, maximize: bool) -> dict[int, object]:
    """The value with the best expected score at each budget k."""
    if curve.empty:
        return {}
    best = curve.sort_values("expected_best", ascending=not maximize).drop_duplicates("k")
    return dict(sorted(zip(best["k"], best[by])))
