"""The verdict: which compared values are better (the cells, say), by how much, on which evidence,
how sure we are, and what it would take to know more.

A study can hold three kinds of evidence about its compared values, and each answers its own
question:
- **paired draws** answer "which is better *across the search space*": trials of different
  values trained with the very same nuisance values (what `budget: equal` gives with the random
  sampler, or a grid), compared draw by draw: wins, the mean paired difference with a 95%
  t-interval, Wilcoxon signed-rank tests, Holm-adjusted (or, for a sweep that ran until decided,
  anytime-valid confidence sequences: `study.analysis.sequential`);
- **replicates** answer "which is better *when tuned*": the best configuration of each value
  retrained with new seeds (`study replicate`): mean and 95% interval per value, Welch's t-tests,
  Holm-adjusted;
- **the completed trials** answer "which is better *at a tuning budget of k trials*": the
  expected best of k of each value's trials (`study.analysis.budget`, Dodge et al. 2019).
The best single trial of each value is shown, never enough to place a value above another.

On a tested kind of evidence the values fall into **tiers**: every value of a higher tier beats
every value of a lower tier (Holm-adjusted p < 0.05 and an interval that excludes zero). Within
a tier each pair is "equivalent within ±margin" (TOST) or "undecided", with the observations that
would tell a margin-sized difference. A value *wins* when it is alone in the top tier. The
headline answers the question of the strongest evidence the study has (replicates, then paired
draws) and says which question that is; when the questions' answers disagree, that is a finding.
Pure functions of DataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from study.analysis import budget as budgets
from study.analysis import stats
from study.analysis.wording import (
    ALPHA, advantage, beats, comparison_sentence, difference, joined, needed_text, other_of, score_text,
    still_needs,
)

MIN_PAIRS = 2  # fewer paired draws than this cannot be tested at all (Wilcoxon needs >= 6 to reach p < 0.05)

QUESTIONS = {  # evidence kind -> (the question's name, what it asks)
    "replicates": ("when tuned", "which is better when each is tuned: replicates of each one's best configuration"),
    "paired draws": ("across the search space",
                     "which is better across the search space: every value trained on the same nuisance draws"),
    "budget": ("at a tuning budget of k trials", "which gives the better best model after k trials of tuning"),
}


@dataclass
class Evidence:
    """One kind of evidence: its values best first, how many observations, and pairwise tests."""

    kind: str  # "replicates", "paired draws", "best trial" or "median of completed trials"
    ranking: list  # values, best first
    n: dict  # value -> observations behind it
    means: dict  # value -> the statistic that ranks it (mean, best or median score)
    comparisons: pd.DataFrame | None = None  # stats.pairwise / paired_pairwise rows (a, b, ...)
    design: str = "fixed"  # "fixed", or "sequential" when the paired draws were looked at after every round


@dataclass
class Answer:
    """One question's answer: its tiers (best first) on one kind of evidence, as a sentence."""

    question: str  # one of QUESTIONS' names: "when tuned", "across the search space", ...
    text: str
    tiers: list[list] = field(default_factory=list)
    evidence: Evidence | None = None


@dataclass
class Verdict:
    dimension: str
    winner: Any | None  # the value alone in the top tier of the headline's evidence, else None
    headline: str
    details: list[str] = field(default_factory=list)  # one sentence per compared pair
    warnings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    basis: str = "best trial"  # the kind of evidence the headline rests on
    tiers: list[list] = field(default_factory=list)  # the headline's tiers, best first
    answers: list[Answer] = field(default_factory=list)  # one per question the study can answer
    findings: list[str] = field(default_factory=list)  # where the questions' answers disagree
    budget: pd.DataFrame | None = None  # study.analysis.budget.budget_curve


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


def paired_evidence(draws: pd.DataFrame, order: list, maximize: bool, score: str = "",
                    margin: float | None = None, sequential: bool = False) -> Evidence | None:
    """The paired draws as evidence: Wilcoxon and t-intervals for a fixed design, or, with
    `sequential` (a sweep that looked after every round), confidence sequences."""
    values = [v for v in order if v in draws.columns]
    if len(draws) < MIN_PAIRS or len(values) < 2:
        return None
    means = draws[values].mean().sort_values(ascending=not maximize)
    margin = stats.default_margin(score) if margin is None else margin
    if sequential:
        from study.analysis import sequential as sequential_rules

        rows = sequential_rules.look(draws[values], values, score, margin, ALPHA)
    else:
        rows = stats.paired_pairwise(draws, values, alpha=ALPHA, score=score, margin=margin)
    return Evidence("paired draws", list(means.index), {v: len(draws) for v in values}, means.to_dict(), rows,
                    "sequential" if sequential else "fixed")


def replicate_draws(replicates: pd.DataFrame, by: str, score: str, order: list) -> pd.DataFrame:
    """Replicates paired by seed index: one row per index that every value has, one score column per
    value. The k-th replicates of different values are independent, so their differences are i.i.d.,
    which is what a confidence sequence needs."""
    if replicates is None or replicates.empty or "replicate_index" not in replicates:
        return pd.DataFrame(columns=order)
    wide = replicates.pivot_table(index="replicate_index", columns=by, values=score, aggfunc="first")
    present = [v for v in order if v in wide.columns]
    return wide[present].dropna().sort_index().reset_index(drop=True) if len(present) == len(order) else (
        pd.DataFrame(columns=order))


def sequential_replicate_evidence(replicates: pd.DataFrame, by: str, score: str, order: list, maximize: bool,
                                  margin: float | None) -> Evidence | None:
    """Replicates of a sweep that added them until decided: confidence sequences on seed-paired
    differences, valid however often it looked."""
    from study.analysis import sequential as sequential_rules

    draws = replicate_draws(replicates, by, score, order)
    if len(draws) < MIN_PAIRS or len(order) < 2:
        return None
    means = draws.mean().sort_values(ascending=not maximize)
    margin = stats.default_margin(score) if margin is None else margin
    rows = sequential_rules.look(draws, order, score, margin, ALPHA)
    return Evidence("replicates", list(means.index), {v: len(draws) for v in order}, means.to_dict(), rows,
                    "sequential")


def replicate_evidence(summary: pd.DataFrame | None, comparisons: pd.DataFrame | None, by: str,
                       maximize: bool) -> Evidence | None:
    if summary is None or summary.empty or comparisons is None or summary["n"].min() < 2 or len(summary) < 2:
        return None
    ranked = summary.sort_values("mean", ascending=not maximize)
    return Evidence("replicates", list(ranked[by]), dict(zip(summary[by], summary["n"])),
                    dict(zip(ranked[by], ranked["mean"])), comparisons)


# --------------------------------------------------------------------------- tiers


def tiers(ranking: list, better) -> list[list]:
    """The values of `ranking` (best first) cut into tiers: a cut between two neighbours stands where
    every value above it is `better(a, b)` than every value below it."""
    cuts = [i for i in range(1, len(ranking))
            if all(better(a, b) for a in ranking[:i] for b in ranking[i:])]
    bounds = [0, *cuts, len(ranking)]
    return [ranking[start:end] for start, end in zip(bounds, bounds[1:])]


def evidence_tiers(evidence: Evidence, maximize: bool) -> list[list]:
    rows = {frozenset((r["a"], r["b"])): r for r in evidence.comparisons.to_dict("records")}

    def better(a, b) -> bool:
        row = rows.get(frozenset((a, b)))
        return row is not None and beats(row, a, maximize)
    return tiers(evidence.ranking, better)


# --------------------------------------------------------------------------- the verdict


def decide(dimension: str, score: str, maximize: bool, best: Evidence, median: Evidence | None,
           paired: Evidence | None, replicates: Evidence | None, budget: pd.DataFrame | None = None) -> Verdict:
    """The verdict from the evidence a study has (see the module docstring for the rule)."""
    tested = [e for e in (replicates, paired) if e is not None]
    evidence = [e for e in (replicates, paired, best, median) if e is not None]
    warnings = _disagreements(best, median, paired, replicates)
    budget_answer = _budget_answer(budget, dimension, score, maximize)
    if not best.ranking:
        return Verdict(dimension, None, f"No verdict: no completed trial for any {dimension} yet.", [], warnings,
                       evidence, "none")
    if len(best.ranking) < 2:
        return Verdict(dimension, None, f"No verdict: only {dimension} = {best.ranking[0]} has completed trials.",
                       [], warnings, evidence, "none")
    if not tested:
        ranking = " > ".join(f"{v} ({score_text(best.means[v], score)}, n={best.n.get(v, 0)})" for v in best.ranking)
        answers = [budget_answer] if budget_answer else []
        return Verdict(dimension, None, (
            f"No clear winner can be claimed: only the best trial of each {dimension} is available ({ranking}), "
            "a maximum over noisy trials with no uncertainty of its own. Run `study replicate` (new seeds for each "
            "best configuration) or use `budget: equal` with the random sampler (paired draws), then re-run the "
            "report."), [], warnings, evidence, "best trial", answers=answers, budget=budget)
    answers = [_answer(e, dimension, score, maximize, warnings) for e in tested]
    basis, head = tested[0], answers[0]
    details = [comparison_sentence(row, _first(row, basis, maximize), basis.kind, basis.n, score, maximize,
                                   _observations(basis)) for row in basis.comparisons.to_dict("records")]
    findings = _question_disagreements(answers, dimension)
    if budget_answer:
        answers.append(budget_answer)
        findings += _budget_disagreement(budget_answer, head, budget, dimension, maximize)
    winner = head.tiers[0][0] if len(head.tiers) > 1 and len(head.tiers[0]) == 1 else None
    headline = f"{head.question[0].upper()}{head.question[1:]}: {head.text}"
    return Verdict(dimension, winner, headline, details, warnings, evidence, basis.kind, head.tiers, answers,
                   findings, budget)


def _answer(evidence: Evidence, dimension: str, score: str, maximize: bool, warnings: list[str]) -> Answer:
    """One tested kind of evidence as tiers in a sentence, with the question it answers."""
    question = QUESTIONS[evidence.kind][0]
    n = min(evidence.n.values())
    where = (f"{n} paired draws" if evidence.kind == "paired draws" else f"{n} replicates per {dimension}")
    if evidence.design == "sequential":
        where += ", looked at after every round"
    cut = evidence_tiers(evidence, maximize)
    rows = evidence.comparisons.to_dict("records")
    unreachable = _unreachable(evidence)
    if unreachable:
        warnings.append(unreachable)
    within = _within_tiers(cut, rows, evidence, score, maximize)
    if len(cut) == 1:
        if rows and all(r.get("equivalent") for r in rows):
            text = (f"{joined(cut[0])} are equivalent within ±{difference(rows[0]['margin'], score)} "
                    f"({where}; {_equivalence_p(rows)})")
            return Answer(question, text + ".", cut, evidence)
        leader = evidence.ranking[0]
        if unreachable:
            reason = (f"{leader} leads, but {n} draws are too few for the test to decide at all: it needs at least "
                      f"{stats.draws_needed(len(rows), ALPHA)}")
        else:
            reason = f"{leader} leads, but no {dimension} is separated from another"
        return Answer(question, f"no clear winner on {where}: {reason}{within}{_needed_for_all(rows, evidence, score, maximize)}.",
                      cut, evidence)
    above = [f"{joined(tier)} {'beats' if len(tier) == 1 else 'beat'} {joined([v for t in cut[i + 1:] for v in t])}"
             for i, tier in enumerate(cut[:-1])]
    if len(cut[0]) == 1:
        above[0] = f"{cut[0][0]} wins: it beats every other {dimension}"
    gaps = _separation(cut, rows, score, maximize, evidence)
    text = f"{'; then '.join(above)} ({gaps}; {where}){within}"
    return Answer(question, text + _needed_for_all(rows, evidence, score, maximize, only_within=True) + ".",
                  cut, evidence)


def _within_tiers(cut: list[list], rows: list[dict], evidence: Evidence, score: str, maximize: bool) -> str:
    """'; GRU vs LSTM undecided: about 9 paired draws (1 more) would tell a 2.0 pp difference at 80%
    power; SimpleRNN vs GRU equivalent within ±2.0 pp': the pairs that share a tier."""
    parts = []
    for tier in cut:
        if len(tier) < 2:
            continue
        for row in rows:
            if row["a"] not in tier or row["b"] not in tier:
                continue
            first = _first(row, evidence, maximize)
            pair = f"{first} vs {other_of(row, first)}"
            needed = still_needs(row, maximize)
            if row.get("equivalent"):
                parts.append(f"{pair} equivalent within ±{difference(row['margin'], score)}")
            elif beats(row, first, maximize):
                parts.append(f"{first} above {other_of(row, first)}, but not apart from the rest of its tier")
            elif needed is not None and len(cut) > 1:
                parts.append(f"{pair} undecided: {needed_text(needed, row, evidence.n, score, _observations(evidence))}")
            else:
                parts.append(f"{pair} undecided")
    return "; " + "; ".join(parts) if parts else ""


def _separation(cut: list[list], rows: list[dict], score: str, maximize: bool, evidence: Evidence) -> str:
    """'by 35.7-50.1 pp, Holm p <= 0.041': the gaps between the top tier and the values below it."""
    top = cut[0]
    across = [r for r in rows if (r["a"] in top) != (r["b"] in top)]
    gaps = [advantage(r, r["a"] if r["a"] in top else r["b"], maximize)[0] for r in across]
    low, high = min(gaps), max(gaps)
    size = (f"by {difference(low, score)}" if abs(high - low) < 1e-12 else
            f"by {difference(low, score, unit=False)}-{difference(high, score)}")
    if evidence.design == "sequential":
        return f"{size}, 95% confidence sequences excluding zero"
    return f"{size}, Holm p <= {max(r['p_holm'] for r in across):.2g}"


def _equivalence_p(rows: list[dict]) -> str:
    ps = [r.get("equivalence_p") for r in rows if not pd.isna(r.get("equivalence_p"))]
    return f"TOST p <= {max(ps):.2g}" if ps else "95% confidence sequences inside the margin"


def _first(row: dict, evidence: Evidence, maximize: bool):
    """The value of a pair named first: the one ahead on this evidence's means."""
    return row["a"] if evidence.ranking.index(row["a"]) < evidence.ranking.index(row["b"]) else row["b"]


def _needed_for_all(rows: list[dict], evidence: Evidence, score: str, maximize: bool, only_within: bool = False) -> str:
    """'; about 40 paired draws would decide each open pair at a 2.0 pp margin (80% power)', or ''
    (with `only_within`, only when more than one pair is open: one open pair already said it)."""
    open_rows = [r for r in rows if still_needs(r, maximize) is not None]
    if not open_rows or (only_within and len(open_rows) < 2):
        return ""
    needed = max(still_needs(r, maximize) for r in open_rows)
    if evidence.design == "sequential":
        return f"; about {needed} {_observations(evidence)} would decide each open pair, if the spreads and gaps stay"
    return (f"; about {needed} {_observations(evidence)} would decide each open pair at a "
            f"{difference(open_rows[0]['margin'], score)} margin ({stats.POWER:.0%} power)")


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
            f"{stats.draws_needed(pairs, ALPHA)} paired draws")


def _observations(evidence: Evidence) -> str:
    return "paired draws" if evidence.kind == "paired draws" else "replicates per value"


# --------------------------------------------------------------------------- the questions compared


def _question_disagreements(answers: list[Answer], dimension: str) -> list[str]:
    """A finding wherever one question's tiers put a value above another and another question's
    tiers put them the other way round: both can hold (a cell best when tuned may be less robust
    across the search space), and a reader must know which question the headline answers."""
    findings = []
    for first, second in zip(answers, answers[1:]):
        above = {(a, b) for i, tier in enumerate(first.tiers) for a in tier for t in first.tiers[i + 1:] for b in t}
        flipped = [(a, b) for i, tier in enumerate(second.tiers) for b in tier
                   for t in second.tiers[i + 1:] for a in t if (a, b) in above]
        leaders = (first.evidence.ranking[0], second.evidence.ranking[0])
        if flipped:
            pairs = ", ".join(f"{a} above {b}" for a, b in flipped)
            findings.append(f"the questions disagree: {first.question}, {pairs}; {second.question}, the other way "
                            "round. Both are findings: the best-tuned value is not the most robust one here")
        elif leaders[0] != leaders[1]:
            findings.append(f"{first.question}, {leaders[0]} leads; {second.question}, {leaders[1]} leads "
                            f"(neither question separates the two {dimension} values the other puts first)")
    return findings


def _budget_answer(curve: pd.DataFrame | None, dimension: str, score: str, maximize: bool) -> Answer | None:
    """'at a tuning budget of k trials per cell (expected best of k completed trials): at k = 1 LSTM
    leads (0.9510; ...), at k = 8 GRU leads (0.9750; ...)'."""
    if curve is None or curve.empty or curve[dimension].nunique() < 2:
        return None
    lead = budgets.leaders(curve, dimension, maximize)
    ks = sorted(lead)

    def at(k: int) -> str:
        rows = curve[curve["k"] == k].sort_values("expected_best", ascending=not maximize)
        return ", ".join(f"{r[dimension]} {score_text(r['expected_best'], score)}" for _, r in rows.iterrows())
    if len(set(lead.values())) == 1:
        said = f"{lead[ks[0]]} leads at every budget from k = {ks[0]} to {ks[-1]} (k = {ks[-1]}: {at(ks[-1])})"
    else:
        said = f"at k = {ks[0]}: {at(ks[0])}; at k = {ks[-1]}: {at(ks[-1])}"
    n = int(curve["n"].min())
    text = (f"expected best of k trials per {dimension}, from {n} or more completed trials each (Dodge et al. "
            f"2019; 95% bootstrap bands in the table): {said}")
    return Answer(QUESTIONS["budget"][0], text, [])


def _budget_disagreement(answer: Answer, head: Answer, curve: pd.DataFrame, dimension: str, maximize: bool) -> list[str]:
    lead = budgets.leaders(curve, dimension, maximize)
    changes = [k for k, previous in zip(list(lead)[1:], list(lead)) if lead[k] != lead[previous]]
    findings = []
    if changes:
        findings.append(f"the leader changes with the tuning budget: {lead[min(lead)]} at k = {min(lead)}, "
                        f"{lead[max(lead)]} at k = {max(lead)}: which {dimension} to pick depends on how many "
                        "trials a reader can afford")
    top = head.tiers[0] if head.tiers else []
    if len(head.tiers) > 1 and lead[max(lead)] not in top:
        findings.append(f"{head.question}, {joined(top)} is in the top tier, but with the study's own budget of "
                        f"{max(lead)} trials the search found its best expected model with {lead[max(lead)]}")
    return findings


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
