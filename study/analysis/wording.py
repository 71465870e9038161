"""The verdict's words: differences in percentage points, one sentence per compared pair, and what
a pair still needs. Pure functions of the comparison rows of `study.analysis.stats` (`pairwise`,
`paired_pairwise`) and `study.analysis.sequential.look`, which share their columns.
"""

from __future__ import annotations

import math

import pandas as pd

from study.analysis import stats

ALPHA = 0.05


def percent(score: str) -> bool:
    return any(word in score for word in stats.PERCENT_METRICS)


def difference(value: float, score: str, signed: bool = False, unit: bool = True) -> str:
    """A difference of scores as read: percentage points for accuracies, 4 digits otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent(score):
        text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return text + (" pp" if unit else "")
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def score_text(value: float, score: str) -> str:
    return f"{value:.4f}" if percent(score) else f"{value:.4g}"


def joined(values: list) -> str:
    """'GRU', 'GRU and LSTM', 'GRU, LSTM and SimpleRNN'."""
    names = [str(v) for v in values]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def other_of(row: dict, value):
    return row["b"] if row["a"] == value else row["a"]


def advantage(row: dict, value, maximize: bool) -> tuple[float, float, float]:
    """(difference, low, high) of `value` minus the other of the pair, signed so that positive means
    `value` is better."""
    sign = 1 if row["a"] == value else -1
    if not maximize:
        sign = -sign
    low, high = sorted((sign * row["ci_low"], sign * row["ci_high"]))
    return sign * row["difference"], low, high


def beats(row: dict, value, maximize: bool) -> bool:
    """`value` is better than the other of the pair on this evidence: the test is significant
    (Holm-adjusted, or the confidence sequence excludes zero) and the interval lies above zero."""
    gap, low, _ = advantage(row, value, maximize)
    return bool(row.get("significant")) and low > 0 and gap > 0


def still_needs(row: dict, maximize: bool) -> int | None:
    """The observations a pair not decided (neither better nor equivalent) would need, or None:
    decided, or no estimate (no margin for this metric, no spread)."""
    needed = row.get("n_to_tell")
    decided = row.get("equivalent") or beats(row, row["a"], maximize) or beats(row, row["b"], maximize)
    if decided or needed is None or pd.isna(needed):
        return None
    return int(needed)


def comparison_sentence(row: dict, first, kind: str, n: dict, score: str, maximize: bool, observations: str) -> str:
    """'GRU vs LSTM: GRU better by 1.0 pp (95% CI +0.2 to +1.9 pp; n = 8 paired draws, better on 7,
    worse on 1; Wilcoxon signed-rank p = 0.016, Holm 0.031).' `first` is named first."""
    other = other_of(row, first)
    gap, low, high = advantage(row, first, maximize)
    if "wins_a" in row:
        mine, theirs = (row["wins_a"], row["wins_b"]) if row["a"] == first else (row["wins_b"], row["wins_a"])
        count = f"n = {row['n']} paired draws, better on {mine}, worse on {theirs}"
    else:
        count = f"{kind} n = {n.get(first)} vs {n.get(other)}"
    p, adjusted = row.get("p"), row.get("p_holm")
    if row.get("test") == "confidence sequence":
        tested = "; 95% confidence sequence, valid however often the sweep looked"
        interval = "95% CS"
    else:
        tested = "" if p is None or (isinstance(p, float) and math.isnan(p)) else (
            f"; {row['test']} p = {p:.2g}, Holm {adjusted:.2g}")
        interval = "95% CI"
    unit = " pp" if percent(score) else ""
    cut = ", cut to the metric's range" if row.get("ci_clipped") else ""
    return (f"{first} vs {other}: {first} {'better' if gap >= 0 else 'worse'} by "
            f"{difference(abs(gap), score)} ({interval} {difference(low, score, signed=True, unit=False)} to "
            f"{difference(high, score, signed=True, unit=False)}{unit}{cut}; {count}{tested})"
            f"{margin_finding(row, n, score, maximize, observations)}.")


def margin_finding(row: dict, n: dict, score: str, maximize: bool, observations: str) -> str:
    """'; equivalent within +-2.0 pp (TOST p = 0.01)', or for a pair not decided either way '; undecided:
    about 17 paired draws (9 more) would tell a 2.0 pp difference at 80% power'; '' without a margin."""
    if row.get("equivalent"):
        p = row.get("equivalence_p")
        how = "" if p is None or pd.isna(p) else f" (TOST p = {p:.2g})"
        return f"; equivalent within ±{difference(row['margin'], score)}{how}"
    needed = still_needs(row, maximize)
    if needed is None:
        return ""
    return f"; undecided: {needed_text(needed, row, n, score, observations)}"


def needed_text(needed: int, row: dict, n: dict, score: str, observations: str) -> str:
    """'about 17 paired draws (9 more) would tell a 2.0 pp difference at 80% power'."""
    have = row["n"] if "n" in row and not pd.isna(row["n"]) else min(n.values())
    more = f" ({needed - have} more)" if needed > have else ""
    if row.get("test") == "confidence sequence":  # sequential.draws_to_decide, at the observed difference
        return (f"about {needed} {observations}{more} would decide it, if the spread and the gap "
                f"({difference(abs(row['difference']), score)}) stay as observed")
    return (f"about {needed} {observations}{more} would tell a {difference(row['margin'], score)} difference "
            f"at {stats.POWER:.0%} power")
