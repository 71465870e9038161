"""One trial as Optuna runs it: sample hyperparameters, seed, train, score and record.

The training itself is plain Keras (`study.train.fit.train_and_evaluate`). `Objective` is the glue
Optuna calls: it samples params, records everything on the Optuna trial and its MLflow run, and
turns a crash or a NaN loss into a failed trial with its reason.
"""

from __future__ import annotations

import contextlib
import gc
import traceback
from dataclasses import dataclass
from typing import Any, Iterator

import optuna

from study.search.progress import SilentReporter, SweepReporter
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.seeds import trial_seed
from study.spec.sweep_file import SweepConfig
from study.store.locations import mask_passwords_in, store_failure
from study.store.optuna_private import storage_of, trial_id_of
from study.store.tracking import SweepTracker, TaskDataset, TrialRun, task_dataset
from study.train.data import TaskData
from study.train.fit import TrainingResult, TrialFailed, train_and_evaluate
from study.train.interrupts import CTRL_C, Interrupted, on_hard_stop, reason_of
from study.train.models import cudnn_eligible
from study.train.sizes import model_spec, units_for_budget


# --------------------------------------------------------------------------- sampling and seeds


def sample_params(trial: optuna.Trial, config: SweepConfig) -> dict[str, Any]:
    """All hyperparameters of one trial: fixed values and defaults, plus what Optuna suggests."""
    params = config.fixed_params()
    for name, hp in config.searched.items():
        if hp.choices is not None:
            params[name] = trial.suggest_categorical(name, list(hp.choices))
        elif HYPERPARAMETERS[name].kind == "int":
            params[name] = trial.suggest_int(name, int(hp.low), int(hp.high), step=int(hp.step or 1), log=hp.log)
        else:
            params[name] = trial.suggest_float(name, hp.low, hp.high, step=hp.step, log=hp.log)
    return {name: params[name] for name in HYPERPARAMETERS if name in params}


def study_dataset(config: SweepConfig, data: TaskData) -> TaskDataset:
    """The task's data as an MLflow dataset: named after the task, its source the task's file, or
    the loader and the task's options (one digest per study: the same options give the same arrays)."""
    path = getattr(config.task, "path", None)
    source = str(path) if path else {"loader": "study.train.data.load_task",
                                     **config.task.model_dump(exclude={"path"})}
    return task_dataset(config.task.name, source, {"train": (data.x_train, data.y_train),
                                                   "validation": (data.x_val, data.y_val),
                                                   "test": (data.x_test, data.y_test)})


def fixed_settings(config: SweepConfig) -> dict[str, Any]:
    """The fixed settings every trial of a sweep shares, logged beside its hyperparameters."""
    task = config.task.model_dump(exclude={"name"})
    return {
        "task": config.task.name,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        **{f"task.{k}": v for k, v in task.items()},
    }


def configure_threads(threads: int | None) -> int | None:
    """Limit TensorFlow to `threads` CPU threads in this process (None keeps TensorFlow's default).

    Several workers on one machine each get a share of the cores instead of all of them, which
    oversubscribes the CPU. It must happen before TensorFlow runs its first operation; later calls
    cannot change it and return the setting already in force.
    """
    import tensorflow as tf

    if threads is None:
        from study.store.locations import threads_setting

        threads = threads_setting()  # RNN_STUDY_THREADS, checked before the sweep started
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # TensorFlow already initialised in this process
            pass
    return tf.config.threading.get_intra_op_parallelism_threads() or None


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector's full collections off objects that live for the whole sweep.

    Keras' `clear_session()` runs a full collection before every model; with TensorFlow, MLflow,
    Optuna and the data loaded, that walks millions of objects (~0.5 s per trial on 2 cores).
    Freezing what exists once the sweep is set up leaves each collection the trials' own objects.
    """
    gc.collect()  # garbage that exists now is freed, not frozen
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# --------------------------------------------------------------------------- the Optuna objective


# Why a trial failed when another process failed it first: this process was stopped (SIGSTOP, a
# suspended machine) for longer than the heartbeat grace period and found its trial taken when it woke.
TAKEN_OVER = ("this process was stopped longer than the heartbeat grace period; its trial was failed by another "
              "process meanwhile (and is run again)")


@dataclass
class TrialOutcome:
    """How the last trial an `Objective` ran ended, for reporting once Optuna has been told."""

    number: int
    trial_id: int
    state: str  # COMPLETE, PRUNED or FAIL as this process recorded it in MLflow
    value: float | None
    reason: str | None
    taken_over: bool = False  # another process had failed the trial already (see TAKEN_OVER)
    tracking_failed: bool = False  # MLflow failed: the sweep stops (see TrackingFailed)


class TrackingFailed(Exception):
    """The tracking store failed while this trial ran (a server gone, a full disk): the sweep stops,
    since every further trial would fail the same way."""


class TrialTakenOver(Exception):
    """The Optuna trial this process runs is no longer RUNNING: another process failed it."""


@contextlib.contextmanager
def _tracking() -> Iterator[None]:
    """Writes to MLflow: a failure of the tracking store itself becomes TrackingFailed.

    A model that cannot be saved (a Keras error) is the trial's own failure; what MLflow and its
    transport raise (a server gone, a full disk under its database) would fail every trial alike.
    """
    try:
        yield
    except Exception as err:
        if store_failure(err) is None:
            raise
        raise TrackingFailed(failure_reason(err)) from err


def _still_claimed(trial: optuna.Trial) -> bool:
    """Whether the trial is still RUNNING in Optuna (no other process failed it for want of heartbeats)."""
    return storage_of(trial.study).get_trial(trial_id_of(trial)).state == optuna.trial.TrialState.RUNNING


class Objective:
    """What Optuna calls once per trial; records the trial in Optuna and MLflow.

    The order of the writes makes every crash point recoverable: the trial's figures go to Optuna
    as user attributes, then its MLflow run is closed (the last write before Optuna's own `tell`,
    which `study.optimize` does when this returns). A process that dies in between leaves the
    trial RUNNING in Optuna; its heartbeat runs out, it is failed, and its MLflow run is marked
    FAIL too (`SweepTracker.close_orphaned_trial_runs`). Nothing is printed here: the sweep reports
    a trial once Optuna has it (`outcome`), so a failed print never fails a recorded trial.
    """

    def __init__(
        self,
        config: SweepConfig,
        data: TaskData,
        tracker: SweepTracker,
        run_tags: dict[str, str],
        reporter: SweepReporter | None = None,
    ):
        self.config, self.data, self.tracker = config, data, tracker
        self.run_tags = run_tags
        self.reporter = reporter or SilentReporter()
        self.outcome: TrialOutcome | None = None
        self._dataset: TaskDataset | None = None

    @property
    def dataset(self) -> TaskDataset:
        """The task's data as every trial's MLflow dataset input (its digest hashed once per process)."""
        if self._dataset is None:
            self._dataset = study_dataset(self.config, self.data)
        return self._dataset

    def __call__(self, trial: optuna.Trial) -> float:
        config = self.config
        metric = config.objective.metric
        self.outcome = None
        params = sample_params(trial, config)
        if config.param_budget is not None:
            # Size-matched: an LSTM gets fewer units than a SimpleRNN for the same parameter count.
            params["units"] = units_for_budget(model_spec(self.data), params, config.param_budget)
        seed = trial_seed(config.seed, trial.number)
        trial.set_user_attr("params", params)
        trial.set_user_attr("seed", seed)
        self.reporter.trial_started(trial.number, params, config.epochs)
        run = None
        try:
            with _tracking():
                run = self.tracker.start_trial(
                    trial.number,
                    params={**params, **fixed_settings(config)},
                    tags={**self.run_tags, "cell": params["cell"], "seed": seed,
                          "cudnn_eligible": cudnn_eligible(params)},
                    dataset=self.dataset,
                )
            trial.set_user_attr("mlflow_run_id", run.run_id)

            def on_epoch(epoch: int, logs: dict[str, float]) -> None:
                with _tracking():
                    run.log_epoch(epoch, logs)
                self.reporter.epoch_ended(trial.number, epoch, logs)

            def should_prune(epoch: int, value: float) -> bool:
                trial.report(value, epoch)
                return trial.should_prune()

            with on_hard_stop(lambda: self._abandon(trial, run)):
                result = train_and_evaluate(
                    self.data, params, epochs=config.epochs, batch_size=config.batch_size,
                    seed=seed, metric=metric, direction=config.objective.direction,
                    on_epoch=on_epoch, should_prune=should_prune, jit_compile=config.jit_compile,
                )
            summary = result_metrics(result, metric)
            for key, value in summary.items():
                trial.set_user_attr(key, value)
            if not _still_claimed(trial):
                raise TrialTakenOver(TAKEN_OVER)
            with _tracking():
                state = record_result(run, result, params, seed, summary, log_model=config.log_models)
        except (Exception, KeyboardInterrupt) as err:  # fails this trial only; Ctrl-C then stops the sweep
            taken_over = isinstance(err, TrialTakenOver)
            with contextlib.suppress(Exception):
                taken_over = taken_over or not _still_claimed(trial)
            reason = TAKEN_OVER if taken_over else failure_reason(err)
            if not taken_over:  # a finished trial's attributes cannot change any more
                with contextlib.suppress(Exception):
                    trial.set_user_attr("fail_reason", reason)
            if run is not None:  # None when the tracking store itself failed
                with contextlib.suppress(Exception):  # else left RUNNING: closed once Optuna has failed the trial
                    record_failure(run, err, reason)
            self.outcome = TrialOutcome(trial.number, trial_id_of(trial), "FAIL", None, reason, taken_over,
                                        tracking_failed=isinstance(err, TrackingFailed))
            raise
        self.outcome = TrialOutcome(trial.number, trial_id_of(trial), state, result.value, None)
        if result.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at epoch {result.pruned_at}")
        return result.value

    @staticmethod
    def _abandon(trial: optuna.Trial, run: TrialRun) -> None:
        """A hard stop (`study.train.interrupts`) during training: mark the trial as a Ctrl-C would."""
        trial.set_user_attr("fail_reason", CTRL_C)
        record_failure(run, Interrupted(), CTRL_C)
        trial.study.tell(trial, state=optuna.trial.TrialState.FAIL)


# --------------------------------------------------------------------------- recording a training


def result_metrics(result: TrainingResult, metric: str) -> dict[str, float]:
    """The figures of a finished training, recorded alike on Optuna trials and MLflow runs."""
    summary = {
        f"best_{metric}": result.value,
        "best_epoch": result.best_epoch,
        **result.test_metrics,
        "param_count": result.param_count,
        "train_seconds": result.train_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
    }
    if result.pruned_at is not None:
        summary["pruned_at_epoch"] = result.pruned_at
    return summary


def record_result(run: TrialRun, result: TrainingResult, params: dict[str, Any], seed: int,
                  summary: dict[str, float], log_model: bool) -> str:
    """End a training's MLflow run (a trial, rerun or replicate) with its figures, tags, `trial.json`
    and, with `log_model`, the best epoch's model as an MLflow Model (its input example taken from
    the run's dataset); return its state, COMPLETE or PRUNED."""
    state = "COMPLETE" if result.pruned_at is None else "PRUNED"
    if log_model and state == "COMPLETE":
        run.log_model(result.model)
    run.finish(
        state,
        metrics=summary,
        tags={"param_count": result.param_count, "xla": result.xla,
              **({"pruned_at_epoch": result.pruned_at} if result.pruned_at is not None else {})},
        artifacts={"trial.json": {"params": params, "seed": seed, **summary, "history": result.history}},
    )
    return state


def failure_reason(err: BaseException) -> str:
    """One line saying why a training failed (its traceback goes to `failure.json`)."""
    if isinstance(err, KeyboardInterrupt):
        return reason_of(err)
    if isinstance(err, TrackingFailed) and err.__cause__ is not None:
        err = err.__cause__
    reason = str(err) if isinstance(err, TrialFailed) else f"{type(err).__name__}: {err}".strip()
    return mask_passwords_in(reason.splitlines()[0] if reason else type(err).__name__)


def record_failure(run: TrialRun, err: BaseException, reason: str) -> None:
    """End a training's MLflow run as failed (KILLED when interrupted), with its reason and traceback."""
    interrupted = isinstance(err, KeyboardInterrupt)
    details = "" if interrupted else "".join(traceback.format_exception(err))
    run.finish("FAIL", metrics={}, tags={"fail_reason": reason[:5000]},
               artifacts={"failure.json": {"reason": reason, "traceback": details}},
               status="KILLED" if interrupted else "FAILED")
