"""The verdict: which compared value leads, by how much, on which evidence, and how sure we are.

A study can hold three kinds of evidence about its compared values (e.g. the cells):
- **best trial**: the best search trial of each value. A maximum over n noisy trials, so it has no
  uncertainty of its own; it is shown, never enough to crown a winner.
- **paired draws**: trials of different values trained with the very same nuisance values (what
  `budget: equal` gives with the random sampler, or a grid). Compared draw by draw: wins, the
  mean paired difference with a 95% t-interval, Wilcoxon signed-rank tests, Holm-adjusted.
- **replicates**: the best configuration of each value retrained with new seeds (`study
  replicate`): mean and 95% interval per value, Welch's t-tests, Holm-adjusted.

The verdict rests on the strongest kind the study has (replicates, then paired draws). A value
wins only when it beats every other value on that evidence (adjusted p < 0.05 and an interval
that excludes zero) and no other tested evidence puts another value first; otherwise the verdict
is "no clear winner" and says why. Whenever the rankings of the kinds (and the median of all
completed trials) disagree, a warning says so. Pure functions of DataFrames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from study.analysis import stats

ALPHA = 0.05
MIN_PAIRS = 2  # fewer paired draws than this cannot be tested at all (Wilcoxon needs >= 6 to reach p < 0.05)


@dataclass
class Evidence:
    """One kind of evidence: its values best first, how many observations, and pairwise tests."""

    kind: str  # "replicates", "paired draws", "best trial" or "median of completed trials"
    ranking: list  # values, best first
    n: dict  # value -> observations behind it
    means: dict  # value -> the statistic that ranks it (mean, best or median score)
    comparisons: pd.DataFrame | None = None  # stats.pairwise / paired_pairwise rows (a, b, ...)


@dataclass
class Verdict:
    dimension: str
    winner: Any | None
    headline: str
    details: list[str] = field(default_factory=list)  # one sentence per comparison of the leader
    warnings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    basis: str = "best trial"  # the kind of evidence the verdict rests on


# --------------------------------------------------------------------------- paired draws


def paired_draws(trials: pd.DataFrame, by: str, score: str, nuisance: list[str], order: list) -> pd.DataFrame:
    """One row per draw that every value of `by` completed with identical nuisance values.

    A draw is identified by its nuisance values (and, where the same values were drawn twice, by
    which occurrence it is within each value), so equal-budget random searches and grids pair up,
    and a study whose values saw different nuisance values (TPE past its random start-up) has
    none. Columns: `draw` (from 1), the nuisance values, then one score column per value.
    """
    done = trials[(trials["state"] == "COMPLETE") & trials[score].notna()].sort_values("trial")
    if done.empty or by not in done:
        return pd.DataFrame(columns=["draw", *nuisance, *order])
    keys = [c for c in nuisance if c in done]
    done = done.assign(_key=done[keys].astype(str).agg("|".join, axis=1) if keys else "")
    done = done.assign(_occurrence=done.groupby([by, "_key"]).cumcount())
    wide = done.pivot_table(index=["_key", "_occurrence"], columns=by, values=score, aggfunc="first")
    present = [v for v in order if v in wide.columns]
    if len(present) < len(order) or len(order) < 2:
        return pd.DataFrame(columns=["draw", *keys, *order])
    wide = wide[present].dropna()
    first = done.drop_duplicates(["_key", "_occurrence"]).set_index(["_key", "_occurrence"])
    table = wide.join(first[["trial", *keys]]).sort_values("trial").reset_index(drop=True)
    table.insert(0, "draw", range(1, len(table) + 1))
    return table[["draw", *keys, *present]]


# --------------------------------------------------------------------------- the evidence


def best_trial_evidence(best: pd.DataFrame, by: str, score: str, maximize: bool) -> Evidence:
    rows = best.dropna(subset=[score])
    ranked = rows.sort_values([score, "trial"], ascending=[not maximize, True])
    return Evidence("best trial", list(ranked[by]), dict(zip(best[by], best["complete"])), dict(zip(ranked[by], ranked[score])))


def median_evidence(trials: pd.DataFrame, by: str, score: str, maximize: bool) -> Evidence:
    done = trials[(trials["state"] == "COMPLETE") & trials[score].notna()]
    medians = done.groupby(by)[score].median().sort_values(ascending=not maximize)
    return Evidence("median of completed trials", list(medians.index), done.groupby(by).size().to_dict(),
                    medians.to_dict())


def paired_evidence(draws: pd.DataFrame, order: list, maximize: bool, score: str = "") -> Evidence | None:
    values = [v for v in order if v in draws.columns]
    if len(draws) < MIN_PAIRS or len(values) < 2:
        return None
    means = draws[values].mean().sort_values(ascending=not maximize)
    return Evidence("paired draws", list(means.index), {v: len(draws) for v in values}, means.to_dict(),
                    stats.paired_pairwise(draws, values, alpha=ALPHA, score=score))  # its margin: stats.default_margin


def replicate_evidence(summary: pd.DataFrame | None, comparisons: pd.DataFrame | None, by: str,
                       maximize: bool) -> Evidence | None:
    if summary is None or summary.empty or comparisons is None or summary["n"].min() < 2 or len(summary) < 2:
        return None
    ranked = summary.sort_values("mean", ascending=not maximize)
    return Evidence("replicates", list(ranked[by]), dict(zip(summary[by], summary["n"])),
                    dict(zip(ranked[by], ranked["mean"])), comparisons)


# --------------------------------------------------------------------------- the verdict


def decide(dimension: str, score: str, maximize: bool, best: Evidence, median: Evidence | None,
           paired: Evidence | None, replicates: Evidence | None) -> Verdict:
    """The verdict from the evidence a study has (see the module docstring for the rule)."""
    tested = [e for e in (replicates, paired) if e is not None]
    evidence = [e for e in (replicates, paired, best, median) if e is not None]
    warnings = _disagreements(best, median, paired, replicates)
    if not best.ranking:
        return Verdict(dimension, None, f"No verdict: no completed trial for any {dimension} yet.", [], warnings,
                       evidence, "none")
    if len(best.ranking) < 2:
        return Verdict(dimension, None, f"No verdict: only {dimension} = {best.ranking[0]} has completed trials.",
                       [], warnings, evidence, "none")
    if not tested:
        ranking = " > ".join(f"{v} ({_score(best.means[v], score)}, n={best.n.get(v, 0)})" for v in best.ranking)
        return Verdict(dimension, None, (
            f"No clear winner can be claimed: only the best trial of each {dimension} is available ({ranking}), "
            "a maximum over noisy trials with no uncertainty of its own. Run `study replicate` (new seeds for each "
            "best configuration) or use `budget: equal` with the random sampler (paired draws), then re-run the "
            "report."), [], warnings, evidence, "best trial")
    basis = tested[0]
    unreachable = _unreachable(basis)
    if unreachable:
        warnings.append(unreachable)
    leader = basis.ranking[0]
    details = [_comparison_sentence(row, leader, basis, score, maximize) for row in _rows_of(basis, leader)]
    beats_all = all(_leader_wins(row, leader, maximize) for row in _rows_of(basis, leader))
    others_agree = all(e.ranking[0] == leader for e in tested[1:])
    what = _basis_text(basis)
    if beats_all and others_agree:
        headline = f"{leader} wins on {what}: it beats every other {dimension} (Holm-adjusted p < {ALPHA:g}, 95% CI excluding zero)."
        return Verdict(dimension, leader, headline, details, warnings, evidence, basis.kind)
    if not others_agree:
        other = next(e for e in tested[1:] if e.ranking[0] != leader)
        reason = f"{what} put {leader} first but {_basis_text(other)} put {other.ranking[0]} first"
    elif unreachable:
        reason = (f"{leader} leads on {what}, but {min(basis.n.values())} draws are too few for the test to decide "
                  f"at all: it needs at least {_needed(basis)}")
    else:
        reason = (f"{leader} leads on {what}, but not every difference is clear (an interval includes zero, or the "
                  "adjusted p-value is above 0.05)") + _needed_for_all(basis, leader, score, maximize)
    return Verdict(dimension, None, f"No clear winner: {reason}.", details, warnings, evidence, basis.kind)


def _unreachable(evidence: Evidence) -> str | None:
    """Why no pair of the paired draws can be significant whatever the data, or None: Wilcoxon's
    smallest possible p on these draws, times Holm's multiplier for the most significant pair
    (the number of pairs), is not below alpha (e.g. 4 draws and 3 pairs: 3 x 0.125)."""
    rows = evidence.comparisons
    if evidence.kind != "paired draws" or rows is None or rows.empty or "smallest_p" not in rows:
        return None
    pairs, smallest = len(rows), float(rows["smallest_p"].min())
    if pairs * smallest < ALPHA:
        return None
    n = min(evidence.n.values())
    holm = f" after Holm's correction over {pairs} pairs" if pairs > 1 else ""
    return (f"{n} paired draws cannot be enough: Wilcoxon's signed-rank test cannot reach p < {ALPHA:g}{holm} "
            f"on them whatever the scores (its smallest possible p is {smallest:.3g}); it needs at least "
            f"{_needed(evidence)} paired draws")


def _needed(evidence: Evidence) -> int:
    return stats.draws_needed(len(evidence.comparisons), ALPHA)


def _rows_of(evidence: Evidence, leader) -> list[dict]:
    rows = evidence.comparisons
    return [r for r in rows.to_dict("records") if leader in (r["a"], r["b"])]


def _advantage(row: dict, leader, maximize: bool) -> tuple[float, float, float]:
    """(difference, low, high) of leader minus the other, signed so that positive means `leader` is better."""
    sign = 1 if row["a"] == leader else -1
    if not maximize:
        sign = -sign
    low, high = sorted((sign * row["ci_low"], sign * row["ci_high"]))
    return sign * row["difference"], low, high


def _leader_wins(row: dict, leader, maximize: bool) -> bool:
    difference, low, high = _advantage(row, leader, maximize)
    return bool(row.get("significant")) and low > 0 and difference > 0


def _comparison_sentence(row: dict, leader, evidence: Evidence, score: str, maximize: bool) -> str:
    """'GRU vs LSTM: GRU better by 1.0 pp (95% CI +0.2 to +1.9 pp; n = 8 paired draws, better on 7,
    worse on 1; Wilcoxon signed-rank p = 0.016, Holm 0.031).'"""
    other = row["b"] if row["a"] == leader else row["a"]
    difference, low, high = _advantage(row, leader, maximize)
    if "wins_a" in row:
        mine, theirs = (row["wins_a"], row["wins_b"]) if row["a"] == leader else (row["wins_b"], row["wins_a"])
        n = f"n = {row['n']} paired draws, better on {mine}, worse on {theirs}"
    else:
        n = f"{evidence.kind} n = {evidence.n.get(leader)} vs {evidence.n.get(other)}"
    p, adjusted = row.get("p"), row.get("p_holm")
    tested = "" if p is None or (isinstance(p, float) and math.isnan(p)) else (
        f"; {row['test']} p = {p:.2g}, Holm {adjusted:.2g}")
    unit = " pp" if _percent(score) else ""
    cut = ", cut to the metric's range" if row.get("ci_clipped") else ""
    return (f"{leader} vs {other}: {leader} {'better' if difference >= 0 else 'worse'} by "
            f"{_difference(abs(difference), score)} (95% CI {_difference(low, score, signed=True, unit=False)} to "
            f"{_difference(high, score, signed=True, unit=False)}{unit}{cut}; {n}{tested})"
            f"{_margin_finding(row, leader, evidence, score, maximize)}.")


def _needed_for_all(evidence: Evidence, leader, score: str, maximize: bool) -> str:
    """'; about 40 paired draws would decide each of its open pairs at a 2.0 pp margin (80% power)', or ''."""
    rows = [r for r in _rows_of(evidence, leader) if _still_needs(r, leader, maximize) is not None]
    if not rows:
        return ""
    needed = max(_still_needs(r, leader, maximize) for r in rows)
    return (f"; about {needed} {_observations(evidence)} would decide each of its open pairs at a "
            f"{_difference(rows[0]['margin'], score)} margin ({stats.POWER:.0%} power)")


def _margin_finding(row: dict, leader, evidence: Evidence, score: str, maximize: bool) -> str:
    """'; equivalent within +-2.0 pp (TOST p = 0.01)', or for a pair not decided either way '; undecided:
    about 17 paired draws (9 more) would tell a 2.0 pp difference at 80% power'; '' without a margin."""
    if row.get("equivalent"):
        return f"; equivalent within ±{_difference(row['margin'], score)} (TOST p = {row['equivalence_p']:.2g})"
    needed = _still_needs(row, leader, maximize)
    if needed is None:
        return ""
    have = row["n"] if "n" in row else min(evidence.n.values())
    more = f" ({needed - have} more)" if needed > have else ""
    return (f"; undecided: about {needed} {_observations(evidence)}{more} would tell a "
            f"{_difference(row['margin'], score)} difference at {stats.POWER:.0%} power")


def _still_needs(row: dict, leader, maximize: bool) -> int | None:
    """The observations a pair the evidence has not decided (no win, no equivalence) would need, or
    None: decided, or no estimate (no margin for this metric, no spread)."""
    needed = row.get("n_to_tell")
    if row.get("equivalent") or _leader_wins(row, leader, maximize) or needed is None or pd.isna(needed):
        return None
    return int(needed)


def _observations(evidence: Evidence) -> str:
    return "paired draws" if evidence.kind == "paired draws" else "replicates per value"


def _disagreements(best: Evidence, median: Evidence | None, paired: Evidence | None,
                   replicates: Evidence | None) -> list[str]:
    warnings = []
    if not best.ranking:
        return warnings
    for other in (paired, median, replicates):
        if other is None or not other.ranking or other.ranking[0] == best.ranking[0]:
            continue
        warnings.append(f"the best single trials put {best.ranking[0]} first, but the {other.kind} put "
                        f"{other.ranking[0]} first ({_ranking(other)}): a best-of-n maximum is the noisiest "
                        "statistic there is; trust the verdict's evidence, not the best-trial table")
    return warnings


def _ranking(evidence: Evidence) -> str:
    return " > ".join(f"{v} {evidence.means[v]:.4g}" for v in evidence.ranking)


def _basis_text(evidence: Evidence) -> str:
    n = min(evidence.n.values()) if evidence.n else 0
    if evidence.kind == "paired draws":
        return f"{n} paired draws (the same nuisance values for every value compared)"
    if evidence.kind == "replicates":
        return f"replicates (the best configuration of each value retrained with new seeds, n >= {n} each)"
    return evidence.kind


def _percent(score: str) -> bool:
    return any(word in score for word in stats.PERCENT_METRICS)


def _difference(value: float, score: str, signed: bool = False, unit: bool = True) -> str:
    """A difference of scores as read: percentage points for accuracies, 4 digits otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if _percent(score):
        text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return text + (" pp" if unit else "")
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _score(value: float, score: str) -> str:
    return f"{value:.4f}" if _percent(score) else f"{value:.4g}"
