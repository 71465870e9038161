"""Reading studies back from Optuna storage: every trial as a DataFrame row, the list of studies,
one trial's record (enough to retrain it), and hyperparameter importance.

These are the tables behind `study list`, `study show`, the sweep's closing summary, replicates
and the seeds table; for notebooks they are the same DataFrames:

    from study.store.stores import Stores
    Stores.resolve().trials("quick")   # the trials table: Optuna's, with MLflow's run ids joined in
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.states import FINISHED_STATES, TRIAL_STATES
from study.spec.sweep_file import SweepConfig, parse_config
from study.store.locations import StudyNotFound, mask_password

FINISHED = tuple(TrialState[state] for state in FINISHED_STATES)  # study.spec.states, as Optuna states


# A failed trial without a recorded reason was failed for want of heartbeats: its process died.
DIED = "its process stopped (killed, or its machine lost) before the trial ended"


def _load(study_name: str, storage: optuna.storages.RDBStorage) -> optuna.Study:
    names = optuna.get_all_study_names(storage)
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise StudyNotFound(f"no study named {study_name!r} in {mask_password(storage.url)} (studies: {known})")
    return optuna.load_study(study_name=study_name, storage=storage)


@dataclass
class TrialRecord:
    """What the study recorded about one trial: enough to retrain it exactly."""

    study_name: str
    number: int
    state: str
    params: dict[str, Any]
    seed: int
    value: float | None
    config: SweepConfig
    user_attrs: dict[str, Any]


def load_trial(study_name: str, number: int, storage: optuna.storages.RDBStorage) -> TrialRecord:
    study = _load(study_name, storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise StudyNotFound(f"study {study_name!r} has no trial {number} (trials 0 to {len(trials) - 1})")
    trial = trials[number]
    metric = study.user_attrs.get("metric", "value")
    return TrialRecord(
        study_name=study_name, number=number, state=trial.state.name,
        params=trial.user_attrs.get("params", trial.params), seed=trial.user_attrs.get("seed", 0),
        value=trial.value if trial.value is not None else trial.user_attrs.get(f"best_{metric}"),
        config=parse_config(json.loads(study.user_attrs["config"]), source=f"study {study_name}"),
        user_attrs=dict(trial.user_attrs),
    )


def study_configs(storage: optuna.storages.RDBStorage) -> dict[str, SweepConfig]:
    """The sweep config of every study in `storage` that rnn-study created."""
    configs = {}
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if "config" in summary.user_attrs:
            configs[summary.study_name] = parse_config(json.loads(summary.user_attrs["config"]), source=summary.study_name)
    return configs


def list_studies(storage: optuna.storages.RDBStorage) -> pd.DataFrame:
    """One row per study in `storage`: task, trial counts by state, best value."""
    rows = []
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        best = _best_trial(study)
        rows.append({
            "study": name,
            "task": study.user_attrs.get("task", ""),
            "metric": study.user_attrs.get("metric", "value"),
            **{state.lower(): n for state, n in state_counts(study).items()},
            "best_value": best.value if best else float("nan"),
            "best_trial": best.number if best else None,
        })
    columns = ["study", "task", "metric", "complete", "pruned", "fail", "running", "best_value", "best_trial"]
    return pd.DataFrame(rows, columns=columns)


def trials_table(study_name: str, storage: optuna.storages.RDBStorage) -> pd.DataFrame:
    """One row per trial, as Optuna recorded it: state, score, test metrics, every hyperparameter,
    size and speed, seed, fail reason, MLflow run id. (`study.store.stores.Stores.trials` is the
    study's trials table: this one, with MLflow joined in.)"""
    study = _load(study_name, storage)
    metric = study.user_attrs.get("metric", "value")
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        params = attrs.get("params", trial.params)
        rows.append({
            "trial": trial.number,
            "state": trial.state.name,
            f"best_{metric}": trial.value if trial.state == TrialState.COMPLETE else attrs.get(f"best_{metric}"),
            **{k: v for k, v in attrs.items() if k.startswith("test_")},
            **params,
            "param_count": attrs.get("param_count"),
            "seconds_per_epoch": attrs.get("seconds_per_epoch"),
            "train_seconds": attrs.get("train_seconds"),
            "best_epoch": attrs.get("best_epoch"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"),
            "seed": attrs.get("seed"),
            "fail_reason": attrs.get("fail_reason") or (DIED if trial.state == TrialState.FAIL else None),
            "mlflow_run_id": attrs.get("mlflow_run_id"),
        })
    return in_trial_order(pd.DataFrame(rows))


# The columns that close every trials table, in this order (the run id last: users copy it).
TRIAL_TAIL = ("param_count", "seconds_per_epoch", "train_seconds", "best_epoch", "pruned_at_epoch", "seed",
              "fail_reason", "mlflow_run_id")


def in_trial_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The column order every trials table shares (`study show --csv` from Optuna, the report's
    tables/trials.csv from MLflow): trial, state, the score, test metrics, the hyperparameters, then
    size, speed, seed, fail reason and MLflow run id."""
    head = [c for c in ("trial", "state") if c in frame]
    head += sorted(c for c in frame if c.startswith("best_") and c != "best_epoch")
    head += sorted(c for c in frame if c.startswith("test_"))
    tail = [c for c in TRIAL_TAIL if c in frame]
    rest = [c for c in frame if c not in head and c not in tail]
    params = [c for c in HYPERPARAMETERS if c in rest] + [c for c in rest if c not in HYPERPARAMETERS]
    return frame[head + params + tail]


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = dict.fromkeys(TRIAL_STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


IMPORTANCE_EVALUATORS = {
    # Optuna 5's default: compares the parameter distribution of the top trials with all trials.
    "ped-anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    # Classic fANOVA on a random forest of (params -> objective); seeded for stable figures.
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
}


def param_importances(study_name: str, storage: optuna.storages.RDBStorage, evaluator: str = "fanova") -> dict[str, float]:
    """Normalised importance of each searched hyperparameter over the completed trials.

    Returns {} when fewer than two completed trials exist or nothing was searched; the evaluator
    is named by the caller because PED-ANOVA and fANOVA can rank parameters very differently.
    """
    study = _load(study_name, storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = {name for trial in complete for name in trial.params}
    if len(complete) < 2 or not searched:
        return {}
    try:
        found = optuna.importance.get_param_importances(study, evaluator=IMPORTANCE_EVALUATORS[evaluator]())
        return {name: float(value) for name, value in found.items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}  # e.g. every completed trial has the same value: importance is undefined
