"""The report's words: the metric named in full, how the budget was split, and the warnings and
caveats a reader needs before trusting the comparison."""

from __future__ import annotations

import math

import pandas as pd

from study.analysis.scoring import varying_params
from study.reporting.load import TrackedStudy
from study.spec.states import FINISHED_STATES
from study.spec.sweep_file import SweepConfig


FEW_TRIALS = 5  # fewer completed trials than this per compared value: the best is a rough estimate
EDGE = 0.05  # a best value within 5% of a range's end (log-scaled where searched on a log scale)
VERDICT_RULE = (
    "How the verdict is reached: each kind of evidence answers its own question (replicates: which value is "
    "better when tuned; paired draws: which is better across the search space; the completed trials: which gives "
    "the better best model at a tuning budget of k trials), and the headline answers the question of the "
    "strongest evidence the study has (replicates, then paired draws). On it the values fall into tiers: every "
    "value of a higher tier beats every value of a lower one (Holm-adjusted p < 0.05 and a 95% interval excluding "
    "zero; for a sweep that ran until decided, 95% confidence sequences, valid however often it looked). A value "
    "wins when it is alone in the top tier. Within a tier a pair is equivalent (a TOST test shows the difference "
    "lies within the margin) or undecided, with the observations that would tell a margin-sized difference. The "
    "best single trials alone never decide: a maximum over noisy trials has no uncertainty of its own.")


def budget_text(study: TrackedStudy, primary: str) -> str:
    """How the trial budget was split over the compared values (the fairness of the comparison)."""
    config = study.config
    counts = study.trials[study.trials["state"].isin(FINISHED_STATES)].groupby(primary).size()
    per_value = ", ".join(f"{value} {count}" for value, count in counts.items())
    if config is None:
        return f"Finished trials per {primary}: {per_value}."
    if config.uses_equal_budget:
        return (f"Budget: equal. Each {primary} value got the same number of trials and its own {config.sampler} "
                f"sampler (seed {config.seed}) over the same nuisance space, so no value was starved by an adaptive "
                f"sampler; finished trials per {primary}: {per_value}.")
    how = "an explicit grid" if config.sampler == "grid" else (
        "explicit configurations" if config.configurations else f"one shared {config.sampler} sampler")
    return f"Budget: {how} chose the {primary} values; finished trials per {primary}: {per_value}."


def table_links(stem: str) -> str:
    return "Files: " + " · ".join(f"[{ext.upper()}](tables/{stem}.{ext})" for ext in ("csv", "md", "tex")) + "."


def metric_text(metric: str, kind: str) -> str:
    if metric.endswith("accuracy"):
        return "validation accuracy (fraction correct)"
    if metric.endswith("mae"):
        return "validation MAE (target units)"
    return "validation loss (MSE)" if kind == "regression" else "validation loss (cross-entropy)"


# --------------------------------------------------------------------------- warnings and caveats


def data_warnings(study: TrackedStudy, by: str, best: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the comparison: gaps, failures, thin data, edges."""
    trials, config, warnings = study.trials, study.config, list(study.notes)
    hp = config.hyperparameters.get(by) if config else None
    missing = [v for v in (hp.choices or ()) if v not in set(trials[by])] if hp else []
    if missing:
        warnings.append(f"no trial ran with {by} = {', '.join(map(str, missing))} (a partial sweep, or values the "
                        "sampler never drew): they are missing from every table and figure")
    target = pd.to_numeric(study.parent.get("tags.target_trials"), errors="coerce")
    finished = int(trials["state"].isin(FINISHED_STATES).sum())
    if pd.notna(target) and finished < target:
        warnings.append(f"partial sweep: {finished} of {int(target)} trials finished; resume it with "
                        "`study sweep <file>` and re-run this report")
    running = int((trials["state"] == "RUNNING").sum())
    if running:
        warnings.append(f"{running} trial(s) still RUNNING (or their process died unrecorded): left out")
    for _, row in best.iterrows():
        if row["complete"] == 0:
            warnings.append(f"no completed trial for {by} = {row[by]} ({row['trials']} trial(s): "
                            f"{row['failed']} failed, {row['pruned']} pruned)")
        elif row["failed"] > row["trials"] / 2:
            warnings.append(f"most trials with {by} = {row[by]} failed ({row['failed']} of {row['trials']}): its "
                            "best value may be a lucky survivor; see fail_reason in tables/trials.csv")
    few = [f"{row[by]} ({row['complete']})" for _, row in best.iterrows() if 0 < row["complete"] < FEW_TRIALS]
    if few:
        warnings.append(f"fewer than {FEW_TRIALS} completed trials for {by} = {', '.join(few)}: "
                        "a best value from so few trials is a rough estimate")
    if len(best) == 1:
        warnings.append(f"only one value of {by} was tried: there is nothing to compare")
    return warnings + edge_warnings(study, by, best)


def edge_warnings(study: TrackedStudy, by: str, best: pd.DataFrame) -> list[str]:
    """Best trials whose value of a searched range lies at its end: the optimum may be outside it."""
    if study.config is None:
        return []
    trials = study.trials.set_index("trial")
    warnings = []
    for _, row in best.dropna(subset=["trial"]).iterrows():
        for name, hp in study.config.searched.items():
            if hp.low is None or hp.high is None or hp.high <= hp.low or name not in trials:
                continue
            value = trials.loc[row["trial"], name]
            scale = math.log if hp.log else float
            position = (scale(value) - scale(hp.low)) / (scale(hp.high) - scale(hp.low))
            if position <= EDGE or position >= 1 - EDGE:
                side = "lower" if position < 0.5 else "upper"
                warnings.append(f"the best trial for {by} = {row[by]} (trial {row['trial']}) has `{name}` = "
                                f"{value:.4g}, at the {side} edge of the searched range [{hp.low:g}, {hp.high:g}]: "
                                "the best setting may lie outside it; consider widening the range")
    return warnings


def caveats(study: TrackedStudy, replicated: bool = False, sizes: dict[str, int] | None = None,
            importance_draws: tuple[int, int] | None = None) -> list[str]:
    """The sweep's fixed settings (every comparison in the report holds only under them) and what
    the evidence does not cover: replicates or not, pruning or not, data sizes."""
    config = study.config
    if config is None:
        return ["the parent run holds no sweep definition: epochs, batch size, data split and sampler are unknown"]
    task = ", ".join(f"{k}={v}" for k, v in config.task.model_dump(exclude={"name"}).items() if v is not None)
    fixed = ", ".join(f"{k}={v}" for k, v in config.fixed_params().items())
    pruned = int((study.trials["state"] == "PRUNED").sum())
    stopping = ("no early stopping: every trial trains every epoch" if config.pruner.name == "none" else
                f"a {config.pruner.name} pruner stopped {pruned} trial(s) early; pruned trials are never a best "
                "trial, but their budgets were cut")
    split = ("unknown here (the task's data could not be loaded on this machine)" if not sizes else
             f"{sizes['train']} training, {sizes['validation']} validation and {sizes['test']} test examples")
    lines = [
        f"Epochs: {config.epochs} per trial; {stopping}. A trial's score is its best `{study.metric}` over its "
        "epochs; its test metrics are measured once, with that epoch's weights.",
        f"Batch size: {config.batch_size}.",
        f"Data: task `{config.task.name}` ({task}); {split}; the test set is never used for selection.",
        f"Sampler: {config.sampler}, seed {config.seed}; each trial trains from a seed derived from "
        "(sweep seed, trial number).",
        f"Fixed hyperparameters: {fixed or 'none'}.",
    ]
    if replicated:
        lines.append("Replicates: the best configuration of each value was retrained with new seeds (see "
                     "Replicates); other differences rest on one training run per trial.")
    else:
        lines.append("One training run per trial and no replicate seeds yet: differences smaller than the spread of "
                     "the top trials are not evidence.")
    if importance_draws is not None:
        trials, draws = importance_draws
        lines.append(f"Hyperparameter importance rests on {trials} completed trials with {draws} distinct nuisance "
                      "draws (values of the hyperparameters other than the compared one)" + (
                          ": with so few draws, read its ranking as rough." if draws < 20 else "."))
    return lines


def data_sizes(config: SweepConfig | None) -> dict[str, int] | None:
    """Train, validation and test sizes of the study's task, or None where it cannot be loaded here."""
    if config is None:
        return None
    from study.train.data import load_task  # cached per process; the confusion-matrix figure loads it too

    try:
        data = load_task(config.task)
    except Exception:  # noqa: BLE001 - e.g. MNIST offline: the caveat says the sizes are unknown
        return None
    return {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test)}


def distinct_draws(study: TrackedStudy, primary: str) -> tuple[int, int] | None:
    """(completed trials, distinct nuisance draws among them): what the importance figure rests on."""
    searched = list(study.config.searched) if study.config else varying_params(study.trials)
    done = study.trials[study.trials["state"] == "COMPLETE"]
    columns = [p for p in searched if p != primary and p in done]
    if not columns or done.empty:
        return None
    return len(done), len(done[columns].astype(str).drop_duplicates())


# --------------------------------------------------------------------------- report.md and report.html
