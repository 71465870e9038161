"""Reading a study back for its report: its trials table (`study.store.stores`), per-epoch
histories, the sweep definition its parent run recorded, and its replicate runs."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from study.spec.base import ConfigError
from study.spec.errors import StudyError
from study.spec.sweep_file import SweepConfig, metric_direction, parse_config
from study.store import tracking
from study.store.locations import StudyNotFound
from study.store.stores import Stores, replicate_runs, require_mlflow_store


class ReportError(StudyError):
    """A report that cannot be made (unknown or empty study, bad option); nothing was written."""


def load_trials(study_name: str, storage: str | None = None, tracking_uri: str | None = None,
                notes: list[str] | None = None) -> pd.DataFrame:
    """The study's trials table (`study.store.stores.Stores.trials`), the rows `study show --csv`
    writes: trial, state, score (`best_<metric>`), `test_*`, every hyperparameter (typed), size and
    speed, seed, fail_reason, mlflow_run_id. Optuna decides each trial's state; MLflow's runs stand
    in where the Optuna study cannot be read. `notes` gets a line for what the stores disagree on."""
    return _trials(study_name, _stores(storage, tracking_uri), notes)


def _stores(storage: str | None, tracking_uri: str | None) -> Stores:
    try:
        stores = Stores.resolve(storage, tracking_uri)
        require_mlflow_store(stores.tracking_uri)
    except (ConfigError, StudyNotFound) as err:
        raise ReportError(str(err)) from None
    return stores


def _trials(study_name: str, stores: Stores, notes: list[str] | None = None) -> pd.DataFrame:
    try:
        return stores.trials(study_name, notes)
    except StudyNotFound as err:
        raise ReportError(str(err)) from None


EPOCH_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae")


def epoch_history(study_name: str, storage: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every trial's per-epoch metrics as one tidy DataFrame, for your own notebooks and plots:
    one row per (trial, epoch) with study, trial, cell, units, depth, state, epoch (from 1) and a
    column per logged metric (loss, val_loss, and accuracy / val_accuracy or mae / val_mae).

        from study.reporting.load import epoch_history
        epoch_history("quick")   # `study history quick --csv history.csv` writes the same table
    """
    stores = _stores(storage, tracking_uri)
    trials = _trials(study_name, stores)
    trials = trials[trials["mlflow_run_id"].notna()]
    long = tracking.load_histories(stores.tracking_uri, list(trials["mlflow_run_id"]), list(EPOCH_METRICS))
    wide = long.pivot_table(index=["run_id", "epoch"], columns="key", values="value", aggfunc="last").reset_index()
    described = [c for c in ("trial", "cell", "units", "depth", "state") if c in trials]
    table = trials[[*described, "mlflow_run_id"]].merge(wide, left_on="mlflow_run_id", right_on="run_id")
    metrics = [m for m in EPOCH_METRICS if m in table]
    table = table.assign(study=study_name)[["study", *described, "epoch", *metrics]]
    return table.astype({"epoch": int}).sort_values(["trial", "epoch"]).reset_index(drop=True)


@dataclass
class TrackedStudy:
    """What a report reads of a study: its stores, its trials table, its parent run and config."""

    name: str
    stores: Stores
    trials: pd.DataFrame
    parent: dict[str, Any]  # the parent run's row of tracking.load_runs, {} if there is none
    config: SweepConfig | None  # the resolved sweep definition the parent run recorded
    metric: str
    direction: str
    notes: list[str] = field(default_factory=list)  # what the stores say is off (disagreements, duplicate runs)

    @property
    def tracking_uri(self) -> str:
        return self.stores.tracking_uri

    @property
    def score(self) -> str:
        return f"best_{self.metric}"

    @property
    def kind(self) -> str:
        if self.config is not None:
            return self.config.task.kind
        return "regression" if "test_mae" in self.trials else "multiclass"


def open_study(name: str, storage: str | None, tracking_uri: str | None, sweep_config: SweepConfig | None) -> TrackedStudy:
    """Read a study for its report. Its stores are resolved as for a sweep, except that a report
    naming no storage reads the one its parent run recorded. Raises ReportError when neither store
    holds the study, or a URL is unusable."""
    try:
        stores = Stores.resolve(storage, tracking_uri, sweep_config)
        require_mlflow_store(stores.tracking_uri)
        parents = tracking.load_runs(stores.tracking_uri, name, "parent")
        parent = parents.iloc[0].to_dict() if not parents.empty else {}
        stores = Stores.resolve(storage, tracking_uri, sweep_config, recorded_storage=parent.get("tags.optuna_storage"))
        notes: list[str] = []
        trials = stores.trials(name, notes, check_states=True)
    except (ConfigError, StudyNotFound) as err:
        raise ReportError(str(err)) from None
    config = _recorded_config(stores.tracking_uri, parent) or sweep_config
    scores = [c for c in trials if c.startswith("best_") and c != "best_epoch"]
    metric = parent.get("tags.metric") or (config.objective.metric if config else None) or (
        scores[0].removeprefix("best_") if scores else "val_accuracy")
    direction = config.objective.direction if config else metric_direction(metric)
    if f"best_{metric}" not in trials:
        trials[f"best_{metric}"] = np.nan  # no trial completed yet
    return TrackedStudy(name, stores, trials, parent, config, metric, direction, notes)


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


def replicate_trials(study_name: str, tracking_uri: str) -> pd.DataFrame:
    """The finished replicate runs of a study (see `study replicate`), one row each like the trials table."""
    return replicate_runs(study_name, tracking_uri)
