"""The Stores handle: a study's two store URLs resolved once, Optuna's storage opened once, and the
one trials table both stores are read into.

The URLs follow one rule: the flag, then the environment (`RNN_STUDY_STORAGE`,
`MLFLOW_TRACKING_URI`), then the sweep file, then the embedded default under `mlruns/`; a report
that names no storage falls back to the one the study's parent run recorded before the default.
Every command resolves a `Stores` once and hands it down; nothing below it reads a flag.

The trials table (`Stores.trials`) has one row per trial. Optuna decides each trial's state and
values (`study.store.trials.trials_table`, what `study show` prints); MLflow is joined in for the
run ids Optuna lacks, and (for a report) a note names any trial whose MLflow state says otherwise.
Only where the Optuna study cannot be read are the trials those MLflow recorded
(`study.store.tracking`), with a note that says so.

Importing this module is light (no pandas, Optuna or MLflow until a table is read): `study sweep
--jobs N` resolves its stores before those imports, while its workers start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from study.spec.errors import StudyError
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.settings import STORAGE_ENV
from study.spec.sweep_file import SweepConfig
from study.store.locations import (
    StudyNotFound, check_apart, mask_password, open_storage, resolve_storage, resolve_tracking_uri,
)

if TYPE_CHECKING:
    import optuna
    import pandas as pd

# What MLflow holds of a trial besides Optuna's user attributes, as the trials table's columns.
SUMMARY_METRICS = ("param_count", "seconds_per_epoch", "train_seconds", "best_epoch", "pruned_at_epoch")
INTEGER_METRICS = {"param_count", "best_epoch", "pruned_at_epoch"}


@dataclass
class Stores:
    """Where a study lives: the Optuna storage URL and the MLflow tracking URI, checked, with
    `storage_shown` / `tracking_shown` (passwords masked) for messages. Optuna's storage is opened
    on first use and then kept (`optuna_storage`)."""

    storage: str
    tracking_uri: str
    _optuna: optuna.storages.RDBStorage | None = field(default=None, init=False, repr=False, compare=False)
    trials_read_from: str = field(default="", init=False, compare=False)  # "Optuna" or "MLflow": see `trials`

    @classmethod
    def resolve(cls, storage: str | None = None, tracking_uri: str | None = None,
                config: SweepConfig | None = None, recorded_storage: str | None = None) -> Stores:
        """The stores of the flags given: flag, environment, sweep file, then `recorded_storage` (what
        a study's parent run recorded; unusable when its password was masked), then the default."""
        chosen = storage or os.environ.get(STORAGE_ENV) or (config.storage if config else None)
        if not chosen and isinstance(recorded_storage, str) and "***" not in recorded_storage:
            chosen = recorded_storage
        storage_url, tracking = resolve_storage(chosen, config), resolve_tracking_uri(tracking_uri, config)
        check_apart(storage_url, tracking)  # one file for both, or one's file where the other's folder goes
        return cls(storage_url, tracking)

    @property
    def storage_shown(self) -> str:
        return mask_password(self.storage)

    @property
    def tracking_shown(self) -> str:
        return mask_password(self.tracking_uri)

    def optuna_storage(self, create: bool = False, on_stale_trial=None) -> optuna.storages.RDBStorage:
        """Optuna's storage, opened the first time it is asked for and then kept: to read (a missing
        SQLite file raises StudyNotFound and is not created) or, with `create`, to write, as a sweep
        does (`on_stale_trial`: see `study.store.locations.open_storage`)."""
        if self._optuna is None:
            self._optuna = open_storage(self.storage, create=create, on_stale_trial=on_stale_trial)
        return self._optuna

    def close(self) -> None:
        """Close Optuna's connections (a command that ends closes them anyway)."""
        if self._optuna is not None:
            self._optuna.engine.dispose()
            self._optuna = None

    def trials(self, study_name: str, notes: list[str] | None = None, check_states: bool = False) -> pd.DataFrame:
        """The study's trials table: Optuna's, with MLflow's run ids joined in; MLflow's alone when the
        Optuna study cannot be read. `notes` gets a line for whatever the two stores disagree on;
        with `check_states` (a report) that includes each trial whose MLflow state differs. MLflow is
        read only when that is asked or a run id is missing (`study show` stays a ~2 s command)."""
        from study.store.trials import trials_table

        notes = notes if notes is not None else []
        try:
            table = trials_table(study_name, self.optuna_storage())
        except Exception as err:  # noqa: BLE001 - no Optuna study here (gone, unreachable): MLflow alone
            try:
                table = tracked_trials(study_name, self.tracking_uri, notes)
            except StudyNotFound as missing:  # in neither store: say what each one said
                if isinstance(err, StudyError):
                    raise StudyNotFound(f"{err}; and in MLflow: {missing}") from None
                raise
            reason = str(err) if isinstance(err, StudyError) else type(err).__name__  # ours are masked
            notes.append(f"the trials are as MLflow recorded them: the Optuna study could not be read ({reason})")
            self.trials_read_from = "MLflow"
            return table
        self.trials_read_from = "Optuna"
        if table.empty or not (check_states or table["mlflow_run_id"].isna().any()):
            return table
        return _joined(table, study_name, self.tracking_uri, notes)


def _joined(table: pd.DataFrame, study_name: str, tracking_uri: str, notes: list[str]) -> pd.DataFrame:
    """Optuna's table with MLflow's run ids filled in where Optuna has none, and a note naming each
    trial whose MLflow state differs (Optuna's state stands: it is what `study show` says)."""
    from study.store import tracking

    try:
        require_mlflow_store(tracking_uri)
        runs = tracking.load_runs(tracking_uri, study_name, "trial")
    except Exception:  # noqa: BLE001 - no MLflow store to join: Optuna's table stands alone
        return table
    if runs.empty:
        return table
    by_trial = {int(row["tags.trial_number"]): row for _, row in _latest_run_per_trial(runs).iterrows()}
    missing = table["mlflow_run_id"].isna() & table["trial"].isin(list(by_trial))
    table.loc[missing, "mlflow_run_id"] = [by_trial[int(t)]["run_id"] for t in table.loc[missing, "trial"]]
    recorded = {t: row.get("tags.state") for t, row in by_trial.items()}
    differ = [(int(t), recorded[int(t)], state) for t, state in zip(table["trial"], table["state"])
              if isinstance(recorded.get(int(t)), str) and recorded[int(t)] != state]
    if differ:
        notes.append(
            f"MLflow and Optuna disagree on {len(differ)} trial(s) ("
            + "; ".join(f"trial {t}: MLflow {m}, Optuna {o}" for t, m, o in differ)
            + "): the report takes Optuna's state, as `study show` does; "
            f"`study doctor {study_name}` says why, and --repair fixes what it safely can")
    return table


def require_mlflow_store(tracking_uri: str) -> None:
    """Refuse a local MLflow store that does not exist: opening it would create an empty one, and
    reading a study must write nothing."""
    from study.store.locations import local_file_exists, sqlite_path

    path = sqlite_path(tracking_uri)
    if local_file_exists(tracking_uri, "tracking URI", empty_is_absent=True) is False:
        raise StudyNotFound(f"no MLflow store at {path} (run `study sweep <file>` first, or pass --tracking-uri)")


def tracked_trials(study_name: str, tracking_uri: str, notes: list[str]) -> pd.DataFrame:
    """The trials as MLflow recorded them, in the trials table's columns and order, for a study whose
    Optuna store is gone. A trial with several runs keeps its latest one; `notes` gets a line naming
    the others. Raises StudyNotFound when MLflow has no such study or no run of it."""
    from study.store import tracking

    require_mlflow_store(tracking_uri)
    runs = tracking.load_runs(tracking_uri, study_name, "trial")
    if runs.empty:
        if tracking.experiment_id(tracking_uri, study_name) is None:
            raise StudyNotFound(f"no study named {study_name!r} in the MLflow store {mask_password(tracking_uri)}; "
                                "run `study sweep` first, or pass --tracking-uri")
        raise StudyNotFound(f"study {study_name!r} has no trial runs yet: nothing to report")
    return runs_frame(_one_run_per_trial(runs, study_name, notes))


def _latest_run_per_trial(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.sort_values("start_time").drop_duplicates(subset="tags.trial_number", keep="last")


def _one_run_per_trial(runs: pd.DataFrame, study_name: str, notes: list[str]) -> pd.DataFrame:
    latest = _latest_run_per_trial(runs)
    extra = runs[~runs["run_id"].isin(latest["run_id"])]
    if not extra.empty:
        trials = sorted({int(t) for t in extra["tags.trial_number"]})
        notes.append(f"{len(extra)} trial run(s) in MLflow repeat trial(s) {', '.join(map(str, trials))} "
                     f"(runs {', '.join(extra['run_id'])}); the report uses each trial's latest run. "
                     f"`study doctor {study_name}` says which run Optuna recorded, and --repair sets the others aside")
    return latest


def replicate_runs(study_name: str, tracking_uri: str) -> pd.DataFrame:
    """The finished replicate runs of a study (see `study replicate`), one row each like the trials
    table, with `replicate_index`: which of its value's seeds it is (the same index pairs values)."""
    import pandas as pd

    from study.store.tracking import load_runs

    runs = load_runs(tracking_uri, study_name, role="replicate")
    if runs.empty:
        return pd.DataFrame()
    frame = runs_frame(runs)
    frame["replicate_index"] = pd.to_numeric(runs.set_index(frame.index)["tags.replicate_index"]).astype("Int64")
    return frame[(frame["state"] == "COMPLETE") & (runs.set_index(frame.index)["status"] == "FINISHED")]


def runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow runs (rows of `study.store.tracking.load_runs`) as trials-table rows, typed as Optuna's."""
    import pandas as pd

    from study.store.trials import in_trial_order

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
    import pandas as pd

    return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)


def _typed(values: pd.Series, kind: str) -> pd.Series:
    """MLflow stores params as strings; give them back their hyperparameter's type."""
    import pandas as pd

    if kind == "bool":
        return values.map({"True": True, "False": False})
    if kind == "int":
        numbers = pd.to_numeric(values)
        return numbers.astype(int) if numbers.notna().all() else numbers.astype("Int64")
    if kind == "float":
        return pd.to_numeric(values).astype(float)
    return values.astype(object)
