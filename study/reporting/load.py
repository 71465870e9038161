"""Reading a study back for its report: its trials and runs from MLflow, per-epoch histories, the
sweep definition its parent run recorded, and its replicate runs."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from study.spec.base import ConfigError
from study.spec.errors import StudyError
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.settings import STORAGE_ENV
from study.spec.sweep_file import SweepConfig, metric_direction, parse_config
from study.store import tracking
from study.store.locations import mask_password, resolve_storage, resolve_tracking_uri
from study.store.trials import in_trial_order, trials_table


SUMMARY_METRICS = ("param_count", "seconds_per_epoch", "train_seconds", "best_epoch", "pruned_at_epoch")
INTEGER_METRICS = {"param_count", "best_epoch", "pruned_at_epoch"}


class ReportError(StudyError):
    """A report that cannot be made (unknown or empty study, bad option); nothing was written."""


def load_trials(study_name: str, tracking_uri: str | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """One row per trial run of a study in MLflow, with the columns of `study show --csv` (read
    from Optuna) in the same order (`study.store.trials.in_trial_order`): trial, state, score
    (`best_<metric>`), `test_*`, every hyperparameter (typed), size and speed, seed, fail_reason,
    mlflow_run_id. A trial with several runs (an Optuna store that was emptied and the study run
    again) keeps its latest one; `notes` gets a line naming the others."""
    try:
        uri = resolve_tracking_uri(tracking_uri)
    except ConfigError as err:
        raise ReportError(str(err)) from None
    _require_store(uri)
    runs = tracking.load_runs(uri, study_name, "trial")
    if runs.empty:
        if tracking.experiment_id(uri, study_name) is None:
            raise ReportError(f"no study named {study_name!r} in the MLflow store {mask_password(uri)}; "
                              "run `study sweep` first, or pass --tracking-uri")
        raise ReportError(f"study {study_name!r} has no trial runs yet: nothing to report")
    return trials_frame(_one_run_per_trial(runs, study_name, notes if notes is not None else []))


def _one_run_per_trial(runs: pd.DataFrame, study_name: str, notes: list[str]) -> pd.DataFrame:
    latest = runs.sort_values("start_time").drop_duplicates(subset="tags.trial_number", keep="last")
    extra = runs[~runs["run_id"].isin(latest["run_id"])]
    if not extra.empty:
        trials = sorted({int(t) for t in extra["tags.trial_number"]})
        notes.append(f"{len(extra)} trial run(s) in MLflow repeat trial(s) {', '.join(map(str, trials))} "
                     f"(runs {', '.join(extra['run_id'])}); the report uses each trial's latest run. "
                     f"`study doctor {study_name}` says which run Optuna recorded, and --repair sets the others aside")
    return latest


EPOCH_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae")


def epoch_history(study_name: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every trial's per-epoch metrics as one tidy DataFrame, for your own notebooks and plots:
    one row per (trial, epoch) with study, trial, cell, units, depth, state, epoch (from 1) and a
    column per logged metric (loss, val_loss, and accuracy / val_accuracy or mae / val_mae).

        from study.reporting.load import epoch_history
        epoch_history("quick")   # `study history quick --csv history.csv` writes the same table
    """
    trials = load_trials(study_name, tracking_uri)
    uri = resolve_tracking_uri(tracking_uri)
    long = tracking.load_histories(uri, list(trials["mlflow_run_id"]), list(EPOCH_METRICS))
    wide = long.pivot_table(index=["run_id", "epoch"], columns="key", values="value", aggfunc="last").reset_index()
    described = [c for c in ("trial", "cell", "units", "depth", "state") if c in trials]
    table = trials[[*described, "mlflow_run_id"]].merge(wide, left_on="mlflow_run_id", right_on="run_id")
    metrics = [m for m in EPOCH_METRICS if m in table]
    table = table.assign(study=study_name)[["study", *described, "epoch", *metrics]]
    return table.astype({"epoch": int}).sort_values(["trial", "epoch"]).reset_index(drop=True)


def _require_store(uri: str) -> None:
    # Opening a missing SQLite file would create an empty store: a report must write nothing.
    path = tracking.sqlite_path(uri)
    if path is not None and not path.exists():
        raise ReportError(f"no MLflow store at {path} (run `study sweep <file>` first, or pass --tracking-uri)")


def trials_frame(runs: pd.DataFrame) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "trial": pd.to_numeric(runs["tags.trial_number"]).astype(int),
        "state": _column(runs, "tags.state").fillna("RUNNING"),
    }
    for name, dim in HYPERPARAMETERS.items():
        if f"params.{name}" in runs:
            columns[name] = _typed(runs[f"params.{name}"], dim.kind)
    metrics = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    scores = sorted(m for m in metrics if m.startswith("best_") and m != "best_epoch")
    for metric in scores + sorted(m for m in metrics if m.startswith("test_")) + list(SUMMARY_METRICS):
        values = pd.to_numeric(_column(runs, f"metrics.{metric}"))
        columns[metric] = values.round().astype("Int64") if metric in INTEGER_METRICS else values.astype(float)
    columns["seed"] = pd.to_numeric(_column(runs, "tags.seed")).astype("Int64")
    columns["fail_reason"] = _column(runs, "tags.fail_reason")
    columns["mlflow_run_id"] = runs["run_id"]
    return in_trial_order(pd.DataFrame(columns).sort_values("trial").reset_index(drop=True))


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)


def _typed(values: pd.Series, kind: str) -> pd.Series:
    """MLflow stores params as strings; give them back their hyperparameter's type."""
    if kind == "bool":
        return values.map({"True": True, "False": False})
    if kind == "int":
        numbers = pd.to_numeric(values)
        return numbers.astype(int) if numbers.notna().all() else numbers.astype("Int64")
    if kind == "float":
        return pd.to_numeric(values).astype(float)
    return values.astype(object)


@dataclass
class TrackedStudy:
    """What a report needs to know about a study besides its trials."""

    name: str
    tracking_uri: str
    trials: pd.DataFrame
    parent: dict[str, Any]  # the parent run's row of tracking.load_runs, {} if there is none
    config: SweepConfig | None  # the resolved sweep definition the parent run recorded
    metric: str
    direction: str
    notes: list[str] = field(default_factory=list)  # what the MLflow store itself says is off (duplicate runs)

    @property
    def score(self) -> str:
        return f"best_{self.metric}"

    @property
    def kind(self) -> str:
        if self.config is not None:
            return self.config.task.kind
        return "regression" if "test_mae" in self.trials else "multiclass"


def open_study(name: str, tracking_uri: str, sweep_config: SweepConfig | None) -> TrackedStudy:
    notes: list[str] = []
    trials = load_trials(name, tracking_uri, notes)
    parents = tracking.load_runs(tracking_uri, name, "parent")
    parent = parents.iloc[0].to_dict() if not parents.empty else {}
    config = _recorded_config(tracking_uri, parent) or sweep_config
    scores = [c for c in trials if c.startswith("best_") and c != "best_epoch"]
    metric = parent.get("tags.metric") or (config.objective.metric if config else None) or (
        scores[0].removeprefix("best_") if scores else "val_accuracy")
    direction = config.objective.direction if config else metric_direction(metric)
    if f"best_{metric}" not in trials:
        trials[f"best_{metric}"] = np.nan  # no trial completed yet
    return TrackedStudy(name, tracking_uri, trials, parent, config, metric, direction, notes)


def _recorded_config(tracking_uri: str, parent: dict[str, Any]) -> SweepConfig | None:
    """The sweep definition the parent run logged (`config.yaml`), or None if it cannot be read."""
    if not parent:
        return None
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = tracking.download_artifact(tracking_uri, parent["run_id"], "config.yaml", folder)
            return parse_config(yaml.safe_load(path.read_text()), source="the parent run's config.yaml")
        except Exception:  # noqa: BLE001 - a missing or outdated artifact: fall back to the sweep file
            return None


# --------------------------------------------------------------------------- tables


def agree_with_optuna(study: TrackedStudy, storage: str) -> None:
    """Where the Optuna study can be read, a trial counts as finished only if both stores say so:
    a trial whose states differ takes Optuna's (what `study show` says), and a note names it."""
    try:
        optuna_states = trials_table(study.name, storage).set_index("trial")["state"]
    except Exception:  # noqa: BLE001 - no Optuna study here: the importance section says so
        return
    trials = study.trials
    mlflow_states = trials.set_index("trial")["state"]
    differ = [(t, mlflow_states[t], optuna_states[t]) for t in mlflow_states.index
              if t in optuna_states.index and mlflow_states[t] != optuna_states[t]]
    if not differ:
        return
    for number, _, state in differ:
        trials.loc[trials["trial"] == number, "state"] = state
    study.notes.append(
        f"MLflow and Optuna disagree on {len(differ)} trial(s) ("
        + "; ".join(f"trial {t}: MLflow {m}, Optuna {o}" for t, m, o in differ)
        + "): the report takes Optuna's state, as `study show` does; "
        f"`study doctor {study.name}` says why, and --repair fixes what it safely can")


def importance_storage(flag: str | None, sweep_config: SweepConfig | None, parent: dict[str, Any]) -> str:
    """Flag, environment or sweep file as for a sweep; else the storage the parent run recorded."""
    chosen = flag or os.environ.get(STORAGE_ENV) or (sweep_config.storage if sweep_config else None)
    recorded = parent.get("tags.optuna_storage")
    if not chosen and isinstance(recorded, str) and "***" not in recorded:  # a masked password is unusable
        chosen = recorded
    return resolve_storage(chosen, sweep_config)


def replicate_trials(study_name: str, tracking_uri: str) -> pd.DataFrame:
    """The finished replicate runs of a study (see `study replicate`), one row each like `load_trials`."""
    runs = tracking.load_runs(tracking_uri, study_name, role="replicate")
    if runs.empty:
        return pd.DataFrame()
    frame = trials_frame(runs)
    return frame[(frame["state"] == "COMPLETE") & (runs.set_index(frame.index)["status"] == "FINISHED")]
