"""What a study's parent run says in the MLflow runs table: its summary metrics and headline.

MLflow shows a parent run's metrics in its row, so the row answers at a glance which compared value
did best: `best_<score>.<value>` and `mean_<score>.<value>` over the completed trials of each value,
`trials.<value>` and `trials_complete.<value>` per value, and the headline of the latest verdict as
the `verdict` tag (set by `study report`). Computed from the trials table, plain data in and out;
`study.store.tracking.log_parent_summary` writes it.
"""

from __future__ import annotations

import pandas as pd

VERDICT_TAG = "verdict"


def summary_metrics(trials: pd.DataFrame, by: list[str], score: str, maximize: bool) -> dict[str, float]:
    """Best and mean `score` and trial counts per value of the compared dimensions `by`.

    A value of several dimensions is joined with `-` (`GRU-64`); with no dimension the study's
    own best and mean are given (`best_val_accuracy`). Values without a completed trial get counts only.
    """
    keys = [d for d in by if d in trials.columns]
    if trials.empty or score not in trials:
        return {}
    metrics: dict[str, float] = {}
    groups = trials.groupby(keys, sort=False, dropna=False) if keys else [((), trials)]
    for value, group in groups:
        value = value if isinstance(value, tuple) else (value,)
        suffix = "." + "-".join(str(v) for v in value) if keys else ""
        done = group[(group["state"] == "COMPLETE") & group[score].notna()][score]
        metrics[f"trials{suffix}"] = float(len(group))
        metrics[f"trials_complete{suffix}"] = float(len(done))
        if not done.empty:
            metrics[f"best_{_bare(score)}{suffix}"] = float(done.max() if maximize else done.min())
            metrics[f"mean_{_bare(score)}{suffix}"] = float(done.mean())
    return metrics


def _bare(score: str) -> str:
    """`val_accuracy` from the trials table's `best_val_accuracy` (the best epoch's value per trial)."""
    return score[len("best_"):] if score.startswith("best_") else score
