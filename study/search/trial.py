"""One trial: sample hyperparameters, seed, build, train with validation, score and record.

`train_and_evaluate` is plain Keras (no Optuna, no MLflow): it trains for the fixed epoch budget,
keeps the weights of the best validation epoch, scores the trial by that best value and measures
the test set once, at that epoch (reported, never used for selection). A trial whose model has the
architecture of an earlier one trains that earlier model again, reset to its own initial state, so
its training and test steps are not traced again (`TracedModels`). `Objective` is the glue Optuna
calls: it samples params, records everything on the Optuna trial and its MLflow run, and turns a
crash or a NaN loss into a failed trial with its reason.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import statistics
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import optuna

from study.train.backend import gpu_available, keras
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig
from study.train.data import TaskData
from study.train.interrupts import CTRL_C, Interrupted, interrupts_kept_through_native_code, on_hard_stop, reason_of
from study.train.models import ModelSpec, build_model, cudnn_eligible, resolve_jit_compile, units_for_budget
from study.search.progress import SilentReporter, SweepReporter
from study.store.locations import mask_passwords_in, store_failure
from study.store.tracking import SweepTracker, TrialRun

EpochCallback = Callable[[int, dict[str, float]], None]
PruneCheck = Callable[[int, float], bool]  # (epoch, validation value) -> stop this trial now?


class TrialFailed(Exception):
    """A trial that cannot produce a score (e.g. its loss became NaN); the sweep goes on."""


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


def trial_seed(sweep_seed: int, trial_number: int) -> int:
    """A training seed derived from (sweep seed, trial number): distinct per trial, reproducible."""
    return int(np.random.SeedSequence([sweep_seed, trial_number]).generate_state(1)[0] % (2**31 - 1))


def model_spec(data: TaskData) -> ModelSpec:
    return ModelSpec(
        input_shape=tuple(data.input_shape), kind=data.kind,
        num_classes=data.num_classes, vocab_size=data.vocab_size,
    )


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


# --------------------------------------------------------------------------- training


@dataclass
class TrainingResult:
    value: float  # best validation value of the objective metric over the epochs
    best_epoch: int  # counted from 1
    history: dict[str, list[float]]
    test_metrics: dict[str, float]  # test_loss, test_accuracy or test_mae, at best_epoch
    param_count: int
    train_seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    pruned_at: int | None = None  # the epoch a pruner stopped the trial at
    xla: bool = False  # whether training ran compiled with XLA
    # The Keras model holding the best epoch's weights; the next training of the same architecture
    # in this process trains it again (`TracedModels`), so save it before that.
    model: Any = field(default=None, repr=False)

    @property
    def seconds_per_epoch(self) -> float:
        # The median ignores the first epoch's one-off graph tracing.
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else float("nan")


class _BestEpochKeeper(keras.callbacks.Callback):
    """Keeps the weights of the best validation epoch, times epochs, stops on NaN or when pruned."""

    def __init__(self, metric: str, maximize: bool, on_epoch: EpochCallback | None, should_prune: PruneCheck | None):
        super().__init__()
        self.metric, self.maximize = metric, maximize
        self.on_epoch, self.should_prune = on_epoch, should_prune
        self.best_value: float | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.failure: str | None = None
        self.pruned_at: int | None = None
        self.epoch_seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._started)
        logs = {k: float(v) for k, v in (logs or {}).items()}
        number = epoch + 1
        if self.on_epoch is not None:
            self.on_epoch(number, logs)
        bad = [k for k in ("loss", self.metric) if not math.isfinite(logs.get(k, float("nan")))]
        if bad:
            self.failure = f"{bad[0]} became {logs.get(bad[0], 'missing')} at epoch {number}"
            self.model.stop_training = True
            return
        value = logs[self.metric]
        if self.best_value is None or (value > self.best_value if self.maximize else value < self.best_value):
            self.best_value, self.best_epoch = value, number
            self.best_weights = self.model.get_weights()
        if self.should_prune is not None and self.should_prune(number, value):
            self.pruned_at = number
            self.model.stop_training = True


def train_and_evaluate(
    data: TaskData,
    params: dict[str, Any],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    metric: str,
    direction: str,
    on_epoch: EpochCallback | None = None,
    should_prune: PruneCheck | None = None,
    jit_compile: bool | str = "auto",
) -> TrainingResult:
    """Train one model for `epochs` and score it by its best validation `metric`.

    `should_prune(epoch, value)` may stop a trial early; such a result has `pruned_at` set and no
    test metrics (a pruned trial is not a candidate, so the test set is not even looked at).
    `jit_compile` is the sweep's setting ("auto" is settled for this trial by `resolve_jit_compile`).
    """
    with interrupts_kept_through_native_code():  # a Ctrl-C in a callback of TensorFlow's C++ stays a Ctrl-C
        return _train_and_evaluate(data, params, epochs, batch_size, seed, metric, direction,
                                   on_epoch, should_prune, jit_compile)


def _train_and_evaluate(data, params, epochs, batch_size, seed, metric, direction,
                        on_epoch, should_prune, jit_compile) -> TrainingResult:
    with kernel_cache_kept():  # cleared below only when this trial builds a new model
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
    sequence_steps = len(data.x_train) * data.x_train.shape[1] * epochs
    jit_compile = resolve_jit_compile(jit_compile, params, sequence_steps, gpu=gpu_available())
    model = build_model(model_spec(data), params, jit_compile=jit_compile)
    model, kind = TRACED_MODELS.take(model, (data.x_train[:batch_size], data.y_train[:batch_size]))
    keeper = _BestEpochKeeper(metric, direction == "maximize", on_epoch, should_prune)
    started = time.perf_counter()
    history = model.fit(
        data.x_train, data.y_train,
        validation_data=batches(data.x_val, data.y_val, batch_size),
        epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[keeper],
    )
    train_seconds = time.perf_counter() - started
    if keeper.failure:
        raise TrialFailed(keeper.failure)

    model.set_weights(keeper.best_weights)
    test = {}
    if keeper.pruned_at is None:
        # A large batch only speeds evaluation up; the metrics do not depend on it.
        test = model.evaluate(batches(data.x_test, data.y_test, max(batch_size, 1024)), verbose=0, return_dict=True)
    TRACED_MODELS.keep(kind, model)  # only after a training that went through: a failed one may be half-traced
    return TrainingResult(
        value=keeper.best_value,
        best_epoch=keeper.best_epoch,
        history={k: [float(v) for v in values] for k, values in history.history.items()},
        test_metrics={f"test_{k}": float(v) for k, v in test.items()},
        param_count=model.count_params(),
        train_seconds=train_seconds,
        epoch_seconds=keeper.epoch_seconds,
        pruned_at=keeper.pruned_at,
        xla=bool(model.jit_compile),
        model=model,
    )


class TracedModels:
    """Compiled models whose training and test steps are traced, kept for later trials of the same
    architecture in this process (the least recently used dropped beyond `size`).

    Tracing and instantiating a new model's steps is most of what a trial costs besides its epochs
    (~1 s of a MNIST-1D trial, benchmarks/fixed_cost.py). A trial builds its model as always (so its initial
    weights come from its seed exactly as before); when a kept model has the same architecture
    (everything but the learning rate, which Keras holds in a variable), that model is loaded with
    the new one's whole initial state (weights, dropout seed states, a fresh optimizer with the
    new learning rate) and trained instead: the same computation, without tracing it again.
    """

    def __init__(self, size: int):
        self.size = size
        self.models: OrderedDict[str, keras.Model] = OrderedDict()

    def take(self, fresh: keras.Model, batch: tuple[np.ndarray, np.ndarray]) -> tuple[keras.Model, str]:
        """The model to train for `fresh` and its architecture key: a kept model holding `fresh`'s
        initial state, else `fresh` itself, with its optimizer and metric state built up front."""
        key = architecture(fresh)
        kept = self.models.pop(key, None)  # out of the cache while it trains; `keep` puts it back
        if kept is not None:
            fresh.optimizer.build(fresh.trainable_variables)  # Keras' own initial optimizer state
            if _state_layout(kept) == _state_layout(fresh):
                for target, source in zip([*kept.variables, *kept.optimizer.variables],
                                          [*fresh.variables, *fresh.optimizer.variables]):
                    target.assign(source.value)
                return kept, key
        # A new model: the steps TensorFlow instantiated for models no longer kept can go.
        _tensorflow_context().clear_kernel_cache()
        # Keras otherwise creates the optimizer and metric variables while tracing the first training
        # step, and TensorFlow traces a function whose first call created variables a second time.
        symbolic_build = getattr(fresh, "_symbolic_build", None)  # Keras' own, private: skipped if gone
        if symbolic_build is not None:
            symbolic_build(data_batch=batch)
        return fresh, key

    def keep(self, key: str, model: keras.Model) -> None:
        self.models[key] = model
        self.models.move_to_end(key)
        while len(self.models) > self.size:
            self.models.popitem(last=False)

    def clear(self) -> None:
        self.models.clear()


# A search usually varies a few architecture choices (cell x units: 6 in benchmarks/sweeps/pruning.yaml);
# a kept MNIST-1D model takes a few MiB, mostly its traced graphs.
TRACED_MODELS = TracedModels(size=8)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    """The batches Keras makes of arrays it is given to evaluate on, in order, as a dataset built once
    per process: Keras would build and trace a new input pipeline for every trial (~0.1 s of CPU each,
    for validation and for the test set). The training arrays are not cached: their shuffling depends
    on the trial's seed."""
    return _batches(_Arrays(x), _Arrays(y), batch_size)


@dataclass(frozen=True, eq=False)
class _Arrays:
    """An array hashed by identity, so a cached dataset belongs to the very arrays it was made of."""

    array: np.ndarray

    def __hash__(self) -> int:
        return id(self.array)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Arrays) and other.array is self.array


@functools.lru_cache(maxsize=8)
def _batches(x: _Arrays, y: _Arrays, batch_size: int):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x.array, y.array)).batch(batch_size)


@contextlib.contextmanager
def kernel_cache_kept() -> Iterator[None]:
    """Keep TensorFlow's kernel cache through Keras' `clear_session()` and `set_random_seed()`.

    Both clear it (with the state of stateful kernels, which this project's models do not use:
    Keras 3 draws dropout masks from seeded stateless ops). It holds the instantiated steps of the
    kept models, which a reused model's first epoch would otherwise instantiate and optimise again
    (~0.4 s of CPU on MNIST-1D). `TracedModels.take` clears it when a trial builds a new model.
    """
    from tensorflow.python import pywrap_tfe

    clear = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear


def _tensorflow_context():
    from tensorflow.python.eager import context

    return context.context()


def architecture(model: keras.Model) -> str:
    """What decides a compiled model's traced steps: its layers, its optimizer's settings but the
    learning rate, its loss, metrics and XLA setting."""
    optimizer = {k: v for k, v in model.optimizer.get_config().items() if k != "learning_rate"}
    compiled = {k: v for k, v in model.get_compile_config().items() if k != "optimizer"}
    return json.dumps([model.get_config(), type(model.optimizer).__name__, optimizer, compiled, model.jit_compile],
                      sort_keys=True, default=repr)


def _state_layout(model: keras.Model) -> list[tuple[str, tuple, str]]:
    return [(v.path, tuple(v.shape), str(v.dtype)) for v in [*model.variables, *model.optimizer.variables]]


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
    return trial.study._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING


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
            self.outcome = TrialOutcome(trial.number, trial._trial_id, "FAIL", None, reason, taken_over,
                                        tracking_failed=isinstance(err, TrackingFailed))
            raise
        self.outcome = TrialOutcome(trial.number, trial._trial_id, state, result.value, None)
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
    and, with `log_model`, the best epoch's model; return its state, COMPLETE or PRUNED."""
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
