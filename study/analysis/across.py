"""Across tasks: one conclusion from several studies that compare the same values (e.g. the cells)
on different tasks.

Pure functions of DataFrames with one row per run: `task`, the compared value, `score` (the
study's score, e.g. best validation accuracy or loss) and `normalized` (see `normalize`). From
them: the value x task table (mean, 95% t-interval, n), per-task ranks and the average rank, and
two aggregates over tasks computed as in Agarwal et al. (2021), "Deep Reinforcement Learning at
the Edge of the Statistical Precipice" (the rliable library), here with numpy and scipy:

- the interquartile mean (IQM) of the normalized scores of all runs of a value, pooled over tasks
  (`scipy.stats.trim_mean(x, 0.25)`): robust to one outlying task or run;
- the probability of improvement P(X > Y): for each task, the chance that a random run of X
  scores better than a random run of Y (ties count half; the Mann-Whitney U statistic over n*m),
  averaged over tasks;

each with a 95% percentile interval from a stratified bootstrap (runs resampled with replacement
within each task, 2,000 times, seeded).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from study.analysis import stats
from study.analysis.verdict import tiers as verdict_tiers

BOOTSTRAP = 2000
# Accuracy a classifier gets by chance, per task: 1 / classes (IMDB: balanced positive / negative).
CHANCE_ACCURACY = {"mnist": 0.1, "fashion_mnist": 0.1, "digits": 0.1, "mnist1d": 0.1, "imdb": 0.5}


def normalize(score: float | np.ndarray, metric: str, task: str, reference: dict[str, float]) -> np.ndarray:
    """A score on a common scale: chance = 0, the best possible = 1.

    Accuracy: (a - chance) / (1 - chance), chance = 1 / classes. A loss or error of a regression
    task: (chance - s) / (chance - floor), where chance is what predicting the mean gives and floor
    what the noise alone gives (for `sine`: noise^2 for MSE, noise * sqrt(2/pi) for MAE), both in
    `reference` ({"chance": ..., "floor": ...}).
    """
    score = np.asarray(score, dtype=float)
    if metric.endswith("accuracy"):
        chance = CHANCE_ACCURACY[task]
        return (score - chance) / (1 - chance)
    return (reference["chance"] - score) / (reference["chance"] - reference["floor"])


def value_task_table(runs: pd.DataFrame, by: str, orders: list) -> pd.DataFrame:
    """One row per (value, task): n runs, mean score and its 95% t-interval, mean normalized score."""
    rows = []
    for (value, task), group in runs.groupby([by, "task"], sort=False):
        scores = group["score"].to_numpy(float)
        low, high = stats.t_interval(scores)
        rows.append({by: value, "task": task, "n": len(scores), "mean": float(np.mean(scores)),
                     "ci_low": low, "ci_high": high, "normalized": float(group["normalized"].mean()),
                     "source": group["source"].iloc[0]})
    table = pd.DataFrame(rows)
    rank = {v: i for i, v in enumerate(orders)}
    return table.sort_values(["task", by], key=lambda c: c.map(rank) if c.name == by else c).reset_index(drop=True)


def ranks(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per-task rank of each value by mean normalized score (1 = best; ties share the mean rank),
    one column per task, and the average rank over tasks."""
    wide = table.pivot(index=by, columns="task", values="normalized")
    ranked = wide.rank(ascending=False, method="average")
    ranked["average_rank"] = ranked.mean(axis=1)
    return ranked.sort_values("average_rank").reset_index()


def iqm(runs: pd.DataFrame, by: str, seed: int = 0) -> pd.DataFrame:
    """The IQM of each value's normalized scores over all tasks and runs, with a stratified bootstrap CI."""
    rng = np.random.default_rng(seed)
    rows = []
    for value, group in runs.groupby(by, sort=False):
        per_task = [g.to_numpy(float) for _, g in group.groupby("task")["normalized"]]
        point = float(scipy_stats.trim_mean(np.concatenate(per_task), 0.25))
        draws = [scipy_stats.trim_mean(np.concatenate([rng.choice(x, len(x)) for x in per_task]), 0.25)
                 for _ in range(BOOTSTRAP)]
        low, high = np.percentile(draws, [2.5, 97.5])
        rows.append({by: value, "iqm": point, "ci_low": float(low), "ci_high": float(high),
                     "tasks": len(per_task), "runs": sum(len(x) for x in per_task)})
    return pd.DataFrame(rows).sort_values("iqm", ascending=False).reset_index(drop=True)


def probability_of_improvement(runs: pd.DataFrame, by: str, seed: int = 0) -> pd.DataFrame:
    """P(X > Y) for every ordered pair of values, averaged over the tasks both ran, with a stratified
    bootstrap CI. Above 0.5: X tends to beat Y."""
    rng = np.random.default_rng(seed)
    values = list(dict.fromkeys(runs[by]))
    by_task = {task: {v: g.loc[g[by] == v, "normalized"].to_numpy(float) for v in values}
               for task, g in runs.groupby("task")}
    rows = []
    for x, y in itertools.permutations(values, 2):
        tasks = [t for t, scores in by_task.items() if len(scores[x]) and len(scores[y])]
        if not tasks:
            continue
        point = float(np.mean([_p_better(by_task[t][x], by_task[t][y]) for t in tasks]))
        draws = [np.mean([_p_better(rng.choice(by_task[t][x], len(by_task[t][x])),
                                    rng.choice(by_task[t][y], len(by_task[t][y]))) for t in tasks])
                 for _ in range(BOOTSTRAP)]
        low, high = np.percentile(draws, [2.5, 97.5])
        rows.append({"x": x, "y": y, "probability": point, "ci_low": float(low), "ci_high": float(high),
                     "tasks": len(tasks)})
    return pd.DataFrame(rows, columns=["x", "y", "probability", "ci_low", "ci_high", "tasks"])


def _p_better(x: np.ndarray, y: np.ndarray) -> float:
    """P(a random x > a random y), ties counting half."""
    greater = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(greater + 0.5 * ties)


IQM_TASKS = 5  # fewer tasks than this: the per-task tiers lead, and the IQM is only described (see overall_verdict)


def overall_verdict(iqms: pd.DataFrame, improvement: pd.DataFrame, by: str,
                    task_tiers: dict[str, list[list]] | None = None, sources: dict[str, str] | None = None) -> str:
    """The verdict across tasks, in the per-task verdict's words and by its rule.

    `task_tiers` holds each task's tiers (its own verdict's, best first; empty where that verdict
    rests on best trials only) and `sources` each task's evidence. A value is above another across
    tasks only when it is in a higher tier on every task; the values then fall into tiers, and
    one alone in the top tier wins. Never a winner from best-trial-only evidence, nor from a single
    compared value. The IQM and the probability of improvement describe the size of the lead; with
    fewer than IQM_TASKS tasks they are not the rule: an IQM over 3 tasks x 3 runs pools 9 runs and
    trims the top and bottom 2, which can drop most of one task's runs.
    """
    if iqms.empty:
        return "No verdict across tasks: no runs."
    values = list(iqms[by])
    if len(values) < 2:
        return f"No verdict across tasks: only one {by} was compared ({values[0]}); a verdict needs two or more."
    task_tiers = task_tiers or {}
    sources = sources or {}
    tasks = sorted(set(task_tiers) | set(sources))
    untested = [t for t in tasks if not task_tiers.get(t) or sources.get(t) == "best trial only"]
    aggregate = _aggregate_text(iqms, improvement, by)
    if not tasks or len(untested) == len(tasks):
        return (f"No clear winner across tasks can be claimed: every task's evidence is its best trial only, a maximum "
                f"over noisy trials with no uncertainty of its own ({aggregate}). Replicate or pair each study first.")
    top_counts = {v: sum(v in (task_tiers.get(t) or [[]])[0] for t in tasks if t not in untested) for v in values}
    tested = len(tasks) - len(untested)
    ranked = sorted(values, key=lambda v: (-top_counts[v], values.index(v)))
    per_task = ", ".join(f"{v} on {top_counts[v]}" for v in ranked)
    lead = f"top tier per task: {per_task} of {tested} task{'s' if tested != 1 else ''}"
    if untested:
        lead += f" ({', '.join(untested)}: best trials only, no tier there)"

    def above(a, b) -> bool:
        return not untested and all(_tier_of(task_tiers[t], a) < _tier_of(task_tiers[t], b) for t in tasks)
    cut = verdict_tiers(ranked, above)
    few = (f"; with {len(tasks)} tasks the IQM is no rule: trimming a quarter at each end of the pooled runs can drop "
           "a whole task's runs" if len(tasks) < IQM_TASKS else "")
    if len(cut) == 1:
        return (f"No clear winner across tasks: no {by} is in a higher tier than another on every task ({lead}); "
                f"{aggregate}{few}.")
    parts = [f"{' and '.join(map(str, tier))} {'beats' if len(tier) == 1 else 'beat'} "
             f"{', '.join(str(v) for t in cut[i + 1:] for v in t)}" for i, tier in enumerate(cut[:-1])]
    if len(cut[0]) == 1:
        return (f"{cut[0][0]} wins across tasks: it is in a higher tier than every other {by} on each of the {len(tasks)} "
                f"tasks ({lead}; {'; then '.join(parts[1:]) + '; ' if len(parts) > 1 else ''}{aggregate}{few}).")
    return (f"Across tasks, {'; then '.join(parts)}: in a higher tier on each of the {len(tasks)} tasks ({lead}; "
            f"{aggregate}{few}).")


def _tier_of(tiers: list[list], value) -> int:
    return next((i for i, tier in enumerate(tiers) if value in tier), len(tiers))


def _aggregate_text(iqms: pd.DataFrame, improvement: pd.DataFrame, by: str) -> str:
    leader = iqms.iloc[0]
    against = improvement[improvement["x"] == leader[by]]
    pairs = ", ".join(f"P({leader[by]} > {row['y']}) = {row['probability']:.2f} ({row['ci_low']:.2f} to "
                      f"{row['ci_high']:.2f})" for _, row in against.iterrows())
    text = (f"highest interquartile mean of normalized scores: {leader[by]}, {leader['iqm']:.3f} (95% CI "
            f"{leader['ci_low']:.3f} to {leader['ci_high']:.3f}, {int(leader['runs'])} runs over "
            f"{int(leader['tasks'])} tasks)")
    return text + (f"; {pairs}" if pairs else "")
