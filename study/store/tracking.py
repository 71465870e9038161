"""MLflow tracking: one experiment per sweep, a parent run per study, a nested run per trial.

This is the only module that uses MLflow's tracking API (a new local store is first copied from
an empty one by `study.store.mlflow_template`). It writes through `MlflowClient` (no fluent global
state), batches each epoch's metrics into one `log_batch` call, written on a background thread
while training goes on (in order, and waited for before the run's final write), and never leaves a
run RUNNING that no live process owns: runs of trials that died are closed as KILLED when the sweep
resumes. Only a sweep's tracker creates a local store; reading one that is not there finds nothing
and writes nothing. Metric steps are epoch numbers counted from 1, as Keras prints them. A trial's
model is an MLflow Model (`runs:/<run id>/model`), its data an MLflow dataset input shared by the
study's trials (one digest), and MLflow's system metrics are logged while it runs; the parent run
carries the study's summary metrics (`study.store.parent_summary`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import tempfile
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from study.spec.states import MLFLOW_STATUS
from study.store.locations import (
    StudyNotFound, check_store_kind, check_tracking_reachable, local_file_exists, prepare_local_store, sqlite_path,
)
from study.store.mlflow_template import new_sqlite_store
from study.store.owners import owner_alive, process_owner


def quiet_mlflow() -> None:
    """Silence MLflow's own output for this process; every client of ours calls it (never on import)."""
    # MLflow's SQL store runs alembic migrations on first use and logs each step at INFO level.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # On a failed SQL write it logs the caught error with its traceback, then raises it again; the sweep
    # says it in one line (`locations.store_failure`), so its own ERROR lines (10 tracebacks on a full disk) go.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # The system-metrics monitor says at INFO level each time it starts and stops (twice per trial).
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    # Downloading a run's artifacts (models, configs for reports) would print a tqdm bar per file.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


_SERVERS_ANSWERED: set[str] = set()  # tracking servers this process has seen answer once


def client_for(tracking_uri: str, create: bool = False) -> MlflowClient:
    """An MLflow client that prints nothing of its own.

    With a tracking server MLflow writes "View run NAME at: URL" to stdout whenever a run ends, the
    URL with its password (`http://user:pw@host`); `study ui` prints the links this project shows.
    Set for every client (and inherited by `--jobs` workers), so no caller can turn it back on.

    A local SQLite store is looked at first, read-only (`check_store_kind`): a file that is not a
    database, or is Optuna's, is refused in one line (StoreError) before MLflow opens it. One that
    does not exist yet is made, as a copy of an empty one (`new_sqlite_store`), only with `create`
    (a sweep's tracker); otherwise StudyNotFound, as MLflow would create it on first use and
    reading a study writes nothing.
    """
    quiet_mlflow()
    path = sqlite_path(tracking_uri)
    if path is not None and str(path) not in ("", ":memory:"):
        if not create and not local_file_exists(tracking_uri, "tracking URI", empty_is_absent=True):
            raise StudyNotFound(f"no MLflow store at {path}{' (an empty file)' if path.exists() else ''} (run `study "
                                "sweep <file>` first, or pass --tracking-uri)")
        if create and not path.exists():
            new_sqlite_store(path)
        check_store_kind(tracking_uri, "tracking URI")
    elif tracking_uri.startswith(("http://", "https://")) and tracking_uri not in _SERVERS_ANSWERED:
        check_tracking_reachable(tracking_uri)  # one line in seconds; MLflow would retry for minutes
        _SERVERS_ANSWERED.add(tracking_uri)
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
OPENED_TAG = "opened_at"  # on a parent run: when a sweep last opened it (ms since the epoch)
RETRAIN_ROLES = ("rerun", "replicate")


class SweepTracker:
    """Writes one sweep's runs: the study's parent run and one nested run per trial."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        prepare_local_store(tracking_uri)
        self.tracking_uri = tracking_uri
        self.client = client_for(tracking_uri, create=True)
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
        owner = ""
        if runs:
            run_id = runs[0].info.run_id
            owner = runs[0].data.tags.get(OWNER_TAG, "")
            self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=study_name, tags={ROLE_TAG: "parent", "study": study_name},
            )
            run_id = run.info.run_id
        # Whose sweep this is, and since when, so that `study doctor` never takes a live sweep's parent
        # for a leftover before its first trial runs. The first live owner keeps it: the `--jobs` parent
        # outlives its workers, which open the run after it.
        tags = {**tags, OPENED_TAG: _millis()}
        if owner_alive(owner) is not True:
            tags[OWNER_TAG] = process_owner()
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
        """Record the sweep's counts, summary metrics (`study.store.parent_summary`) and best trial
        on the parent run."""
        assert self.parent_run_id is not None, "open_parent() first"
        now = _millis()
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if _finite(v)]
        tags = []
        if best is not None:
            tags = [RunTag(f"best_{k}", str(v)) for k, v in best.items()]
        self.client.log_batch(self.parent_run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.parent_run_id, "FINISHED" if finished else "KILLED")

    # ----------------------------------------------------------------- trial runs

    def start_trial(
        self, number: int, params: dict[str, Any], tags: dict[str, str], role: str = "trial", run_name: str = "",
        dataset: TaskDataset | None = None,
    ) -> TrialRun:
        """A nested run for one trial; `role` "rerun" or "replicate" marks a retraining of trial `number`.

        `dataset` (see `task_dataset`) is logged as its input; system metrics are logged while it runs
        when `system_metrics_enabled()`."""
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
        trial_run = TrialRun(self.client, run_id)
        if dataset is not None:
            trial_run.log_dataset(dataset)
        if system_metrics_enabled():
            trial_run.start_system_metrics(self.tracking_uri)
        return trial_run

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
        self._monitor = None  # MLflow's system-metrics monitor, while one runs
        self.input_example: Any = None  # set by `log_dataset`

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

    def log_model(self, model: Any) -> str:
        """Log a Keras model (the best epoch's weights) as an MLflow Model named `model`; return its id.

        It is an MLflow 3 logged model of the Keras flavour, with a signature (from the model's own
        input and output shapes) and an input example (`log_dataset`), so `mlflow.keras.load_model(
        "runs:/<id>/model")` and `mlflow.pyfunc.load_model` load it and the runs table's Models
        column shows it. Written
        through the client rather than `mlflow.keras.log_model`, which needs an active fluent run (global
        state), fails in MLflow 3.17.2 when given an input example (it writes the example before making
        the model's folder), and copies the run's metric histories onto the model: 0.032 s per model
        here, 0.048 s for `log_model` without an example, 0.014 s for the plain `model.keras` of before
        (a GRU-32 on 2 cores). The requirements are given (`model_requirements`), not inferred (an import
        trace of the model: seconds). Studies logged before this saved a plain `model.keras` artifact
        instead; `load_model` below reads both.
        """
        import mlflow.keras
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import Model

        self.flush()
        run = self.client.get_run(self.run_id)
        logged = self.client.create_logged_model(
            run.info.experiment_id, name=MODEL_NAME, source_run_id=self.run_id,
            params=dict(run.data.params), tags={"trial_run": run.info.run_name or ""},
        )
        self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        try:
            with tempfile.TemporaryDirectory() as path:  # the model's own folder: MLmodel, data/model.keras, ...
                mlflow.keras.save_model(
                    model, path, signature=keras_signature(model), input_example=self.input_example,
                    pip_requirements=model_requirements(),
                    mlflow_model=Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id,
                                       run_id=self.run_id, model_id=logged.model_id),
                )
                self.client.log_model_artifacts(logged.model_id, path)
        except BaseException:
            with contextlib.suppress(Exception):  # the trial fails with the first error, not this one
                self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.finalize_logged_model(logged.model_id, "READY")
        return logged.model_id

    def log_dataset(self, dataset: TaskDataset) -> None:
        """Record the task's data as this run's dataset input (the runs table's Dataset column); its
        first sequences become the input example of the model this run logs."""
        self.client.log_inputs(self.run_id, [dataset.entity])
        self.input_example = dataset.example

    def start_system_metrics(self, tracking_uri: str) -> None:
        """Log CPU, memory, disk, network (and GPU with NVIDIA's `pynvml`) as `system/*` metrics
        while this run trains, with MLflow's own monitor (a thread sampling every few seconds)."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = SystemMetricsMonitor(self.run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S,
                                             tracking_uri=tracking_uri)
        self._monitor.start()

    def stop_system_metrics(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            with contextlib.suppress(Exception):  # a failed sample must not fail the trial
                monitor.finish()

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
        self.stop_system_metrics()
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


MODEL_NAME = "model"  # a trial's logged model: `runs:/<run id>/model`
LEGACY_MODEL_FILE = "model.keras"  # what trials logged before their models were MLflow Models
# MLflow's own switch (its fluent `start_run` reads it too, off when unset); here on unless set to
# false: on 2 shared cores the monitor costs ~5 ms per trial to start and stop and ~5 ms of CPU per
# sample (0.5% of one core at one sample per 2 s), measured beside benchmarks/fixed_cost.py.
SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
# MLflow's default, 10 s, takes no sample of a trial shorter than that; its own
# MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides this. A trial shorter than one interval logs none.
SYSTEM_METRICS_INTERVAL_S = 2.0


def system_metrics_enabled() -> bool:
    """Whether trial runs log system metrics: yes unless MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING is false."""
    return os.environ.get(SYSTEM_METRICS_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def keras_signature(model: Any):
    """The MLflow signature of a Keras model: its input and output tensors, batch dimension free
    (None for what is no built Keras model, e.g. the stand-in of tests' scripted trainings)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(tensor) -> TensorSpec:
        dtype = np.dtype(getattr(tensor.dtype, "name", None) or str(tensor.dtype))
        return TensorSpec(dtype, (-1, *[-1 if d is None else int(d) for d in tuple(tensor.shape)[1:]]))

    if not getattr(model, "inputs", None):
        return None
    return ModelSignature(inputs=Schema([spec(t) for t in model.inputs]),
                          outputs=Schema([spec(t) for t in model.outputs]))


@functools.cache
def model_requirements() -> list[str]:
    """The pip requirements of a trial's model, pinned to this environment: given, since inferring
    them traces the model's imports in a subprocess (seconds per trial)."""
    from importlib import metadata

    found = []
    for package in ("mlflow", "keras", "tensorflow", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{package}=={metadata.version(package)}")
    return found


@dataclass(frozen=True)
class TaskDataset:
    """A task's data as an MLflow dataset input: one per study, built once (`task_dataset`)."""

    name: str
    digest: str
    entity: Any  # mlflow.entities.DatasetInput
    example: Any = None  # the first validation sequences: each logged model's input example


INPUT_EXAMPLE_ROWS = 2


def task_dataset(name: str, source: str | dict[str, Any], splits: dict[str, tuple[Any, Any]]) -> TaskDataset:
    """The dataset input every trial of a study logs: its digest covers every split (train,
    validation, test: features and targets), its schema and profile are the training split's
    (steps x features), and the sizes of all splits are tags of the input. `source` is a file or
    URL the data were read from, or (a dict) the loader and options that made them."""
    import hashlib

    import numpy as np
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.numpy_dataset import NumpyDataset
    from mlflow.entities import DatasetInput, InputTag

    from study.store.mlflow_private import dataset_entity

    hashed = hashlib.sha256()  # once per process: ~0.1 s for MNIST's 190 MB of float32
    for split, (x, y) in splits.items():
        for array in (x, y):
            array = np.ascontiguousarray(array)  # no copy of what is contiguous already
            hashed.update(f"{split}{array.dtype}{array.shape}".encode())
            hashed.update(array.data)
    digest = hashed.hexdigest()[:12]
    example = np.ascontiguousarray(splits.get("validation", splits["train"])[0][:INPUT_EXAMPLE_ROWS])
    x_train, y_train = splits["train"]
    if isinstance(source, dict):
        origin = CodeDatasetSource(tags={k: str(v) for k, v in source.items()})
    elif source.startswith(("http://", "https://")):
        origin = HTTPDatasetSource(source)
    else:
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": a local file either way
            warnings.simplefilter("ignore")
            origin = resolve_dataset_source(source)
    dataset = NumpyDataset(features=x_train, targets=y_train, source=origin, name=name, digest=digest)
    tags = [InputTag("mlflow.data.context", "train")]
    tags += [InputTag(f"rows.{split}", str(len(x))) for split, (x, _) in splits.items()]
    return TaskDataset(name, digest, DatasetInput(dataset_entity(dataset), tags=tags), example)


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


def _absent(tracking_uri: str) -> bool:
    """Whether `tracking_uri` is a local SQLite store that does not exist (read: it holds nothing)."""
    return local_file_exists(tracking_uri, "tracking URI", empty_is_absent=True) is False


def experiment_id(tracking_uri: str, study_name: str) -> str | None:
    if _absent(tracking_uri):
        return None
    experiment = client_for(tracking_uri).get_experiment_by_name(study_name)
    return None if experiment is None else experiment.experiment_id


def tracked_trial_numbers(tracking_uri: str, study_name: str) -> set[int]:
    """The trial numbers that have a trial run of `study_name` in MLflow (read only; none if no experiment)."""
    if _absent(tracking_uri):
        return set()
    client = client_for(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        return set()
    runs = _all_runs(client, experiment.experiment_id, f"tags.{ROLE_TAG} = 'trial' and tags.study = '{study_name}'")
    return {int(run.data.tags["trial_number"]) for run in runs if run.data.tags.get("trial_number", "").isdigit()}


def study_runs(tracking_uri: str, study_name: str) -> list[dict[str, Any]]:
    """Every run of a study's experiment, of any role and deleted ones too, as plain rows (for
    `study doctor`): run_id, role, status, state, trial_number, parent, deleted, owner, study, tags,
    start_time, metrics. Empty for a local store that does not exist (it is not created)."""
    from mlflow.entities import ViewType

    if _absent(tracking_uri):
        return []
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
                "start_time": run.info.start_time,
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
    found = experiment_id(tracking_uri, study_name)
    if found is None:
        return pd.DataFrame()
    client = client_for(tracking_uri)
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


def load_model(tracking_uri: str, run_id: str, destination: str | Path) -> Any:
    """A trial's logged Keras model, uncompiled: its MLflow Model (`runs:/<run id>/model`), or the
    plain `model.keras` artifact of a study logged before trials logged MLflow Models.

    Raises where the run logged neither (a sweep with `log_models: false`).
    """
    import mlflow.artifacts
    import mlflow.keras

    client = client_for(tracking_uri)
    Path(destination).mkdir(parents=True, exist_ok=True)
    model_id = next((m.model_id for m in (client.get_run(run_id).outputs.model_outputs or [])), None)
    if model_id is not None:
        # Straight to the logged model's artifacts: `runs:/<id>/model` would page through every model of
        # the experiment, and `models:/<id>` is looked up in the global tracking URI, not this one.
        location = client.get_logged_model(model_id).artifact_location
        local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(destination),
                                                    tracking_uri=tracking_uri)
        return mlflow.keras.load_model(local, load_model_kwargs={"compile": False})
    import keras

    path = client.download_artifacts(run_id, LEGACY_MODEL_FILE, dst_path=str(destination))
    return keras.saving.load_model(path, compile=False)


def log_parent_summary(tracking_uri: str, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Summary metrics (`study.store.parent_summary.summary_metrics`) and tags (the verdict's headline)
    on a study's parent run, so that its row in the runs table says what the study found."""
    now = _millis()
    client_for(tracking_uri).log_batch(
        run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)],
        tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
    )


def log_folder(tracking_uri: str, run_id: str, folder: str | Path, artifact_path: str) -> None:
    """Attach every file of `folder` to a run (e.g. a generated report on the study's parent run)."""
    client_for(tracking_uri).log_artifacts(run_id, str(folder), artifact_path)


def set_description(tracking_uri: str, run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI (the `mlflow.note.content` tag, shown as Markdown on
    the run's page), e.g. a study's verdict and best table on its parent run."""
    client_for(tracking_uri).set_tag(run_id, "mlflow.note.content", markdown)
