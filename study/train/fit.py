"""The fit loop: train one model for the fixed epoch budget and score it by its best validation epoch.

`train_and_evaluate` is plain Keras (no Optuna, no MLflow): it trains for the fixed epoch budget,
keeps the weights of the best validation epoch, scores the trial by that best value and measures
the test set once, at that epoch (reported, never used for selection). A model of an architecture
trained before in this process is reused (`study.train.reuse`).
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from study.train.backend import gpu_available, keras
from study.train.data import TaskData
from study.train.interrupts import interrupts_kept_through_native_code
from study.train.models import build_model, resolve_jit_compile
from study.train.reuse import TRACED_MODELS, kernel_cache_kept
from study.train.sizes import model_spec

EpochCallback = Callable[[int, dict[str, float]], None]
PruneCheck = Callable[[int, float], bool]  # (epoch, validation value) -> stop this trial now?


class TrialFailed(Exception):
    """A trial that cannot produce a score (e.g. its loss became NaN); the sweep goes on."""


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

