"""MLflow tracking: one experiment per sweep, a parent run per study, a nested run per trial.

This is the only module that uses MLflow's tracking API (a new local store is first copied from
an empty one by `study.store.mlflow_template`). It writes through `MlflowClient` (no fluent global
state), batches each epoch's metrics into one `log_batch` call, written on a background thread
while training goes on (in order, and waited for before the run's final write), and never leaves a
run RUNNING that no live process owns: runs of trials that died are closed as KILLED when the sweep
resumes. Metric steps are epoch numbers counted from 1, as Keras prints them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from study.spec.states import MLFLOW_STATUS
from study.store.locations import prepare_local_store, sqlite_path
from study.store.mlflow_template import new_sqlite_store
from study.store.owners import owner_alive, process_owner


def quiet_mlflow() -> None:
    """Silence MLflow's own output for this process; every client of ours calls it (never on import)."""
    # MLflow's SQL store runs alembic migrations on first use and logs each step at INFO level.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # On a failed SQL write it logs the caught error with its traceback, then raises it again; the sweep
    # says it in one line (`locations.store_failure`), so its own ERROR lines (10 tracebacks on a full disk) go.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # Downloading a run's artifacts (models, configs for reports) would print a tqdm bar per file.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def client_for(tracking_uri: str) -> MlflowClient:
    """An MLflow client that prints nothing of its own.

    With a tracking server MLflow writes "View run NAME at: URL" to stdout whenever a run ends, the
    URL with its password (`http://user:pw@host`); `study ui` prints the links this project shows.
    Set for every client (and inherited by `--jobs` workers), so no caller can turn it back on.
    A local SQLite store that does not exist yet starts as a copy of an empty one (`new_sqlite_store`).
    """
    quiet_mlflow()
    path = sqlite_path(tracking_uri)
    if path is not None and str(path) not in ("", ":memory:") and not path.exists():
        new_sqlite_store(path)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    # A tracking server that is gone is said in seconds, not after MLflow's minutes of retries
    # (7 with doubling waits); a sweep then stops with one line (study.store.locations.StoreFailed).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    return MlflowClient(tracking_uri=tracking_uri)


def preload(tracking_uri: str) -> None:
    """Import the code MLflow opens a database `tracking_uri` with (its SQL store, alembic: about 1 s
    of CPU), without opening the store: for a `--jobs` worker, while its parent creates the store."""
    if tracking_uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql"):
        with contextlib.suppress(ImportError):  # a module MLflow renamed: it is imported when used
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


EXPERIMENT_KIND, TRAINING = "mlflow.experimentKind", "custom_model_development"
ROLE_TAG = "run_role"  # "parent" for the study run, "trial" for a trial run, "rerun" or "replicate"
OWNER_TAG = "owner_process"  # host:pid:start time of the process that writes a run, to tell when it died
RETRAIN_ROLES = ("rerun", "replicate")


class SweepTracker:
    """Writes one sweep's runs: the study's parent run and one nested run per trial."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        prepare_local_store(tracking_uri)
        self.tracking_uri = tracking_uri
        self.client = client_for(tracking_uri)
        self.experiment_id = self._experiment(experiment_name)
        self.parent_run_id: str | None = None

    def _experiment(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            if experiment.tags.get(EXPERIMENT_KIND) != TRAINING:  # made by an older rnn-study
                self.client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, TRAINING)
            return experiment.experiment_id
        # With a local SQLite store, keep artifacts beside the database (mlruns/artifacts/...)
        # rather than wherever the current directory happens to be.
        db = sqlite_path(self.tracking_uri)
        location = (db.parent.resolve() / "artifacts" / name).as_uri() if db else None
        # The MLflow UI opens an experiment of this kind on its training-runs table, not the GenAI view.
        return self.client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND: TRAINING})

    # ----------------------------------------------------------------- parent run

    def open_parent(self, study_name: str, tags: dict[str, str], config: dict[str, Any]) -> str:
        """Find this study's parent run (a resumed sweep) or create it; log the resolved config."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{ROLE_TAG} = 'parent' and tags.study = '{study_name}'",
            max_results=1,
        )
        if runs:
            run_id = runs[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=study_name, tags={ROLE_TAG: "parent", "study": study_name},
            )
            run_id = run.info.run_id
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.log_dict(run_id, config, "config.yaml")
        self.parent_run_id = run_id
        return run_id

    def attach_parent(self, study_name: str) -> str:
        """Use an existing study's parent run (to add reruns or replicates) without reopening it."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{ROLE_TAG} = 'parent' and tags.study = '{study_name}'",
            max_results=1,
        )
        if not runs:
            raise LookupError(f"no MLflow parent run for study {study_name!r} in {self.tracking_uri}")
        self.parent_run_id = runs[0].info.run_id
        return self.parent_run_id

    def close_parent(self, summary: dict[str, float], best: dict[str, Any] | None, finished: bool) -> None:
        """Record the sweep's counts and best trial on the parent run."""
        assert self.parent_run_id is not None, "open_parent() first"
        now = _millis()
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items()]
        tags = []
        if best is not None:
            tags = [RunTag(f"best_{k}", str(v)) for k, v in best.items()]
        self.client.log_batch(self.parent_run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.parent_run_id, "FINISHED" if finished else "KILLED")

    # ----------------------------------------------------------------- trial runs

    def start_trial(
        self, number: int, params: dict[str, Any], tags: dict[str, str], role: str = "trial", run_name: str = "",
    ) -> TrialRun:
        """A nested run for one trial; `role` "rerun" or "replicate" marks a retraining of trial `number`."""
        assert self.parent_run_id is not None, "open_parent() or attach_parent() first"
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name or f"trial-{number:04d} {model_name(params)}".strip(),
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                ROLE_TAG: role,
                "trial_number": str(number),
                "state": "RUNNING",
                OWNER_TAG: process_owner(),
                **{k: str(v) for k, v in tags.items()},
            },
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return TrialRun(self.client, run_id)

    def close_orphaned_trial_runs(self, live_trial_numbers: set[int] | Callable[[], set[int]]) -> int:
        """Mark KILLED the trial runs left RUNNING by a process that died; return how many.

        With other workers running, pass a function: it is called after the search, so a trial
        that another worker starts meanwhile is seen as live, not closed.
        """
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.{ROLE_TAG} = 'trial' and tags.`mlflow.parentRunId` = '{self.parent_run_id}'"
                " and attributes.status = 'RUNNING'"
            ),
        )
        if not runs:
            return 0
        live = live_trial_numbers() if callable(live_trial_numbers) else live_trial_numbers
        closed = 0
        for run in runs:
            if int(run.data.tags.get("trial_number", -1)) not in live:
                close_run(self.client, run.info.run_id, "the process running this trial died")
                closed += 1
        return closed


    def close_dead_retrain_runs(self) -> int:
        """Mark KILLED the reruns and replicates left RUNNING by a process of this machine that died.

        They have no Optuna trial and so no heartbeat: their run names its process (`owner_process`),
        which is looked up. A run of another machine is left alone (`study doctor` lists it).
        """
        closed = 0
        for role in RETRAIN_ROLES:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=(f"tags.{ROLE_TAG} = '{role}' and tags.`mlflow.parentRunId` = '{self.parent_run_id}'"
                               " and attributes.status = 'RUNNING'"),
            )
            for run in runs:
                if owner_alive(run.data.tags.get(OWNER_TAG, "")) is False:
                    close_run(self.client, run.info.run_id, f"the process running this {role} died")
                    closed += 1
        return closed

    def fail_finished_trial_runs(self, numbers: set[int], reason: str) -> int:
        """Mark FAIL (status KILLED) the finished runs of trials that Optuna failed; return how many.

        A process that died after MLflow recorded its trial but before Optuna did leaves a FINISHED
        run for a trial that Optuna then fails for want of heartbeats. Optuna decides what counts
        (the trial is run again), so the run says FAIL too, and reports agree with `study show`.
        """
        aligned = 0
        for number in sorted(numbers):
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.{ROLE_TAG} = 'trial' and tags.`mlflow.parentRunId` = '{self.parent_run_id}'"
                    f" and tags.trial_number = '{number}' and attributes.status = 'FINISHED'"
                ),
            )
            for run in runs:
                close_run(self.client, run.info.run_id, reason)
                aligned += 1
        return aligned


def close_run(client: MlflowClient, run_id: str, reason: str, status: str = "KILLED") -> None:
    """End a run as a failed trial (state tag FAIL) with `reason`, whatever it said before."""
    client.log_batch(run_id, tags=[RunTag("state", "FAIL"), RunTag("fail_reason", reason[:5000])])
    client.set_terminated(run_id, status)


# Each epoch's metrics are written on this one thread while the next epoch trains: a write to a
# SQLite store takes 10-40 ms, paid every epoch of every trial. One thread keeps epochs in order.
_EPOCH_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-epochs")


class TrialRun:
    """One trial's MLflow run: per-epoch metrics while training, then the final figures."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self._pending: Future | None = None  # the last epoch's write, on the writer thread

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Queue one epoch's metrics, written while training goes on.

        The previous epoch's write is waited for first (it ended during this epoch), so epochs are
        written one at a time and in order, and a write that failed raises here, one epoch later.
        `finish` and `log_model` wait for the last one, so a run never ends before its epochs are in.
        """
        self.flush()
        now = _millis()
        batch = [Metric(k, float(v), now, epoch) for k, v in metrics.items() if _finite(v)]
        if batch:
            self._pending = _EPOCH_WRITER.submit(self.client.log_batch, self.run_id, metrics=batch)

    def flush(self) -> None:
        """Wait until the last queued epoch is written; raise what its write raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def log_model(self, model: Any) -> None:
        """Save a Keras model (the best epoch's weights) as `model.keras`, for reports and reuse."""
        self.flush()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            self.client.log_artifact(self.run_id, str(path))

    def finish(
        self,
        state: str,
        metrics: dict[str, float],
        tags: dict[str, Any],
        artifacts: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> None:
        """Log final figures, tags and JSON artifacts, then end the run with the trial's state.

        `status` overrides the MLflow status derived from `state` (KILLED for an interrupted trial).
        An epoch whose write failed fails a finished trial; a failed trial's run is ended anyway.
        """
        try:
            self.flush()
        except Exception:
            if state != "FAIL":
                raise
        now = _millis()
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)],
            tags=[RunTag("state", state)] + [RunTag(k, str(v)) for k, v in tags.items()],
        )
        for name, content in (artifacts or {}).items():
            self.client.log_text(self.run_id, json.dumps(content, indent=2, default=str), name)
        self.client.set_terminated(self.run_id, status or MLFLOW_STATUS.get(state, "FAILED"))


def model_name(params: dict[str, Any]) -> str:
    """`GRU-64x2` (cell, units, depth; `bi-` when bidirectional): a trial's model, readable in the
    MLflow runs table without adding columns."""
    if "cell" not in params:
        return ""
    bidirectional = "bi-" if str(params.get("bidirectional")) == "True" else ""
    return f"{bidirectional}{params['cell']}-{params.get('units', '?')}x{params.get('depth', 1)}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _millis() -> int:
    return int(time.time() * 1000)


def experiment_links(tracking_uri: str, base_url: str) -> dict[str, str]:
    """Each experiment's training-runs page in the MLflow UI.

    MLflow 3.17 opens an experiment on its GenAI overview; the runs table is at `#/experiments/<id>/runs`.
    """
    client = client_for(tracking_uri)
    return {
        experiment.name: f"{base_url}/#/experiments/{experiment.experiment_id}/runs"
        for experiment in client.search_experiments()
        if experiment.name != "Default"
    }


# --------------------------------------------------------------------------- reading back


def experiment_id(tracking_uri: str, study_name: str) -> str | None:
    experiment = client_for(tracking_uri).get_experiment_by_name(study_name)
    return None if experiment is None else experiment.experiment_id


def tracked_trial_numbers(tracking_uri: str, study_name: str) -> set[int]:
    """The trial numbers that have a trial run of `study_name` in MLflow (read only; none if no experiment)."""
    client = client_for(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        return set()
    runs = _all_runs(client, experiment.experiment_id, f"tags.{ROLE_TAG} = 'trial' and tags.study = '{study_name}'")
    return {int(run.data.tags["trial_number"]) for run in runs if run.data.tags.get("trial_number", "").isdigit()}


def study_runs(tracking_uri: str, study_name: str) -> list[dict[str, Any]]:
    """Every run of a study's experiment, of any role and deleted ones too, as plain rows (for
    `study doctor`): run_id, role, status, state, trial_number, parent, deleted, owner, tags, metrics."""
    from mlflow.entities import ViewType

    client = client_for(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        return []
    rows, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000,
                                  page_token=token)
        for run in page:
            tags = run.data.tags
            number = tags.get("trial_number", "")
            rows.append({
                "run_id": run.info.run_id, "role": tags.get(ROLE_TAG, ""), "status": run.info.status,
                "state": tags.get("state", ""), "trial_number": int(number) if number.isdigit() else None,
                "parent": tags.get("mlflow.parentRunId"), "deleted": run.info.lifecycle_stage == "deleted",
                "owner": tags.get(OWNER_TAG, ""), "study": tags.get("study", ""), "tags": dict(tags),
                "metrics": dict(run.data.metrics),
            })
        token = page.token
        if not token:
            return rows


def repair_run(tracking_uri: str, run_id: str, *, state: str | None = None, status: str | None = None,
               reason: str | None = None, metrics: dict[str, float] | None = None, role: str | None = None,
               restore: bool = False) -> None:
    """Change what a run says (for `study doctor --repair`): restore a deleted run, set its state tag,
    reason, role, final metrics, and end it with `status`."""
    client = client_for(tracking_uri)
    if restore:
        client.restore_run(run_id)
    tags = [RunTag(k, v) for k, v in (("state", state), ("fail_reason", reason), (ROLE_TAG, role)) if v is not None]
    now = _millis()
    batch = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if _finite(v)]
    if tags or batch:
        client.log_batch(run_id, metrics=batch, tags=tags)
    if status is not None:
        client.set_terminated(run_id, status)


def load_runs(tracking_uri: str, study_name: str, role: str = "trial") -> pd.DataFrame:
    """Every run of a study with `run_role` = role: one row each, columns run_id, status,
    start_time, end_time, `params.<name>`, `metrics.<name>` (last value) and `tags.<name>`."""
    client = client_for(tracking_uri)
    found = experiment_id(tracking_uri, study_name)
    if found is None:
        return pd.DataFrame()
    rows = []
    for run in _all_runs(client, found, f"tags.{ROLE_TAG} = '{role}'"):
        rows.append({
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            **{f"params.{k}": v for k, v in run.data.params.items()},
            **{f"metrics.{k}": v for k, v in run.data.metrics.items()},
            **{f"tags.{k}": v for k, v in run.data.tags.items()},
        })
    return pd.DataFrame(rows)


def _all_runs(client: MlflowClient, experiment: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_histories(tracking_uri: str, run_ids: list[str], keys: list[str]) -> pd.DataFrame:
    """Per-epoch metric histories: columns run_id, key, epoch, value."""
    client = client_for(tracking_uri)
    rows = [
        {"run_id": run_id, "key": key, "epoch": metric.step, "value": metric.value}
        for run_id in run_ids
        for key in keys
        for metric in client.get_metric_history(run_id, key)
    ]
    return pd.DataFrame(rows, columns=["run_id", "key", "epoch", "value"])


def download_artifact(tracking_uri: str, run_id: str, path: str, destination: str | Path) -> Path:
    """Copy one artifact of a run (e.g. `model.keras`, `trial.json`) into `destination`."""
    client = client_for(tracking_uri)
    return Path(client.download_artifacts(run_id, path, dst_path=str(destination)))


def log_folder(tracking_uri: str, run_id: str, folder: str | Path, artifact_path: str) -> None:
    """Attach every file of `folder` to a run (e.g. a generated report on the study's parent run)."""
    client_for(tracking_uri).log_artifacts(run_id, str(folder), artifact_path)


def set_description(tracking_uri: str, run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI (the `mlflow.note.content` tag, shown as Markdown on
    the run's page), e.g. a study's verdict and best table on its parent run."""
    client_for(tracking_uri).set_tag(run_id, "mlflow.note.content", markdown)
