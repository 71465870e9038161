"""The rules every table of results shares: which column is a study's score, which way is better,
the order in which compared values are read, and which trial is the best of each value.

The sweep's closing summary, `study show`, `study replicate`, `study report` and `study seeds`
all pick "the best trial per value" through `best_per_value`, so they always name the same trial:
the completed trial with the best score, the lowest trial number among equal scores. Pure
functions of DataFrames with one row per trial (`study.store.trials.trials_table` from Optuna, or
`study.reporting.load.load_trials` from MLflow: both have `trial`, `state` and `best_<metric>`).
"""

from __future__ import annotations

import pandas as pd

from study.spec.hyperparameters import CELLS, HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig, metric_direction

COUNTS = ("trials", "complete", "pruned", "failed")


def score_column(trials: pd.DataFrame) -> str:
    """The score of a trials table: its `best_<metric>` column (`best_epoch` is not a score)."""
    found = [c for c in trials.columns if c.startswith("best_") and c != "best_epoch"]
    if not found:
        raise ValueError("the table has no score column (best_<metric>)")
    return found[0]


def direction_of(score: str) -> str:
    """`maximize` or `minimize` for a score column such as `best_val_accuracy` or `best_val_loss`."""
    return metric_direction(score.removeprefix("best_"))


def value_order(trials: pd.DataFrame, dimension: str, config: SweepConfig | None = None) -> list:
    """Values of a dimension in reading order: the sweep file's choices, cells as CELLS, else sorted."""
    present = list(trials[dimension].dropna().unique())
    hp = config.hyperparameters.get(dimension) if config else None
    listed = list(hp.choices) if hp is not None and hp.choices else list(CELLS) if dimension == "cell" else []
    return [v for v in listed if v in present] + sorted(v for v in present if v not in listed)


def varying_params(trials: pd.DataFrame) -> list[str]:
    """The hyperparameters that take more than one value among the trials."""
    return [p for p in HYPERPARAMETERS if p in trials and trials[p].nunique(dropna=True) > 1]


def best_per_value(
    trials: pd.DataFrame,
    by: str | list[str],
    score: str | None = None,
    direction: str | None = None,
    config: SweepConfig | None = None,
) -> pd.DataFrame:
    """The best completed trial for each value of `by` (one dimension or several; none: the study).

    One row per value in reading order, also for values without a completed trial (their score is
    empty): the value(s), `trial`, score, `test_*` and `best_epoch` of the best trial, the other
    hyperparameters that vary, `param_count`, `seconds_per_epoch`, and how many trials ran,
    completed, were pruned or failed. Ties go to the lowest trial number.
    """
    keys = [by] if isinstance(by, str) else [d for d in by if d in trials.columns]
    if trials.empty:
        return pd.DataFrame(columns=[*keys, "trial", *COUNTS])
    score = score or score_column(trials)
    direction = direction or direction_of(score)
    done = trials[(trials["state"] == "COMPLETE") & trials[score].notna()]
    ranked = done.sort_values([score, "trial"], ascending=[direction == "minimize", True])
    params = [p for p in varying_params(trials) if p not in keys]
    tests = [c for c in trials.columns if c.startswith("test_")]
    shown = ["trial", score, *tests, *[c for c in ("best_epoch",) if c in trials],
             *params, *[c for c in ("param_count", "seconds_per_epoch") if c in trials]]
    if not keys:
        best = ranked.head(1)[shown].reset_index(drop=True)
        if best.empty:
            best = pd.DataFrame([{c: None for c in shown}])
        for column, value in _counts(trials["state"]).items():
            best[column] = value
        return best.astype({"trial": "Int64"})
    best = ranked.groupby(keys, sort=False).head(1).set_index(keys)[shown]
    counts = trials.groupby(keys)["state"].apply(lambda states: pd.Series(_counts(states))).unstack()
    table = counts.join(best)
    index = _reading_index(trials, keys, config)
    table = table.reindex(index).reset_index()
    table["trial"] = table["trial"].astype("Int64")
    for column in COUNTS:
        table[column] = table[column].astype(int)
    return table[[*keys, *shown, *COUNTS]]


def _counts(states: pd.Series) -> dict[str, int]:
    return {"trials": len(states), "complete": int((states == "COMPLETE").sum()),
            "pruned": int((states == "PRUNED").sum()), "failed": int((states == "FAIL").sum())}


def _reading_index(trials: pd.DataFrame, keys: list[str], config: SweepConfig | None) -> pd.Index:
    """The values (or combinations) that occur, in reading order."""
    if len(keys) == 1:
        return pd.Index(value_order(trials, keys[0], config), name=keys[0])
    orders = {key: {value: rank for rank, value in enumerate(value_order(trials, key, config))} for key in keys}
    present = trials[keys].dropna().drop_duplicates()
    rows = sorted(map(tuple, present.to_numpy().tolist()), key=lambda row: [orders[k][v] for k, v in zip(keys, row)])
    return pd.MultiIndex.from_tuples(rows, names=keys)


def best_summary_columns(best: pd.DataFrame) -> list[str]:
    """The columns of a `best_per_value` table worth a short summary (terminal, MLflow description):
    the value(s), trial, scores, size, speed and counts."""
    keys = list(best.columns[:list(best.columns).index("trial")])
    wanted = [*keys, "trial", *[c for c in best.columns if c.startswith(("best_val", "test_"))],
              "param_count", "seconds_per_epoch", "trials", "failed"]
    return [c for c in wanted if c in best]
