"""One trial's fixed cost: models reused across trials of one architecture and epoch metrics written
off the training thread, with results exactly as before.

Real (tiny) Keras trainings on the offline digits task: a few seconds each."""

from __future__ import annotations

import threading
import time

import keras
import pytest
from mlflow.tracking import MlflowClient

from study.spec.sweep_file import parse_config
from study.train.data import load_task
from study.store.tracking import SweepTracker
from study.train.fit import train_and_evaluate
from study.train.reuse import TRACED_MODELS
from tests.conftest import unique_name


@pytest.fixture(scope="module")
def digits():
    return load_task(parse_config({"name": "t", "task": {"name": "digits"}, "trials": 1, "epochs": 1}, "t").task)


# Dropout in and after the cell: its seed states must be reset too, or a reused model would differ.
RNN = {"cell": "SimpleRNN", "units": 4, "output_dropout": 0.2, "recurrent_dropout": 0.1}


def train(data, params, seed, **kwargs):
    return train_and_evaluate(data, params, epochs=2, batch_size=128, seed=seed, metric="val_accuracy",
                              direction="maximize", jit_compile=False, **kwargs)


@pytest.fixture
def traces(monkeypatch):
    """How many times a training step was traced (Keras runs `train_step` only while tracing)."""
    counted = {"train": 0}
    original = keras.Sequential.train_step

    def train_step(self, data):
        counted["train"] += 1
        return original(self, data)

    monkeypatch.setattr(keras.Sequential, "train_step", train_step)
    TRACED_MODELS.clear()
    yield counted
    TRACED_MODELS.clear()


def test_a_trial_of_an_architecture_trained_before_reuses_its_model_and_trains_exactly_as_a_new_one(digits, traces):
    first = train(digits, {**RNN, "learning_rate": 0.01}, seed=1)
    second = train(digits, {**RNN, "learning_rate": 0.003}, seed=2)  # same architecture, its own lr and seed
    other = train(digits, {**RNN, "units": 5, "learning_rate": 0.003}, seed=2)

    assert second.model is first.model and other.model is not first.model
    assert traces["train"] == 2  # once per architecture: not twice per model, not again when reused
    assert second.model.optimizer.learning_rate.numpy() == pytest.approx(0.003)
    TRACED_MODELS.clear()
    alone = train(digits, {**RNN, "learning_rate": 0.003}, seed=2)  # a new model, as before models were reused
    assert alone.model is not first.model
    assert (second.history, second.test_metrics, second.value, second.best_epoch, second.param_count) == \
           (alone.history, alone.test_metrics, alone.value, alone.best_epoch, alone.param_count)

    def crash(epoch, logs):
        raise RuntimeError("the tracking store went away")

    with pytest.raises(RuntimeError):  # trains the kept model, and fails: it is not kept for the next trial
        train(digits, {**RNN, "learning_rate": 0.02}, seed=3, on_epoch=crash)
    assert train(digits, {**RNN, "learning_rate": 0.02}, seed=3).model is not alone.model


def test_a_pruned_trial_is_not_evaluated_on_the_test_set(digits, monkeypatch):
    evaluate, batches = keras.Model.evaluate, []

    def recorded(self, *args, **kwargs):
        batches.append(kwargs.get("batch_size"))
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "evaluate", recorded)
    result = train(digits, {**RNN, "learning_rate": 0.01}, seed=1, should_prune=lambda epoch, value: True)
    assert result.pruned_at == 1 and result.test_metrics == {}
    assert batches == [128]  # the validation inside its one epoch; no test batch of 1024


# --------------------------------------------------------------------------- epochs off the training thread


@pytest.fixture
def run(shared_tracking_uri, request):
    name = unique_name(request)
    tracker = SweepTracker(shared_tracking_uri, experiment_name=name)
    tracker.open_parent(name, tags={}, config={})
    return tracker.start_trial(0, params={"cell": "GRU"}, tags={})


def test_epochs_are_written_while_training_goes_on_and_all_in_order_before_the_run_ends(run, monkeypatch):
    log_batch, writers = run.client.log_batch, []

    def slow(*args, **kwargs):
        writers.append(threading.current_thread().name)
        time.sleep(0.3)
        return log_batch(*args, **kwargs)

    monkeypatch.setattr(run.client, "log_batch", slow)
    started = time.perf_counter()
    run.log_epoch(1, {"loss": 1.0, "val_accuracy": 0.5})
    assert time.perf_counter() - started < 0.2  # the epoch's write does not hold training up
    for epoch in range(2, 6):
        run.log_epoch(epoch, {"loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 100})
    run.finish("COMPLETE", metrics={"best_val_accuracy": 0.55}, tags={})

    assert writers[:5] == ["mlflow-epochs_0"] * 5
    client = MlflowClient(run.client.tracking_uri)
    history = client.get_metric_history(run.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3, 4, 5]
    assert [m.value for m in history] == pytest.approx([0.5, 0.52, 0.53, 0.54, 0.55])
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_a_failed_epoch_write_raises_at_the_next_write_and_a_failed_trial_is_still_closed(run, monkeypatch):
    log_batch = run.client.log_batch

    def fails_at_epoch_2(run_id, metrics=(), **kwargs):
        if any(m.step == 2 for m in metrics):
            raise OSError(28, "No space left on device")
        return log_batch(run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(run.client, "log_batch", fails_at_epoch_2)
    run.log_epoch(1, {"loss": 1.0})
    run.log_epoch(2, {"loss": 0.5})  # queued: its failure is not known yet
    with pytest.raises(OSError, match="No space left"):  # the store's own error, for the one-line reason
        run.log_epoch(3, {"loss": 0.4})
    monkeypatch.setattr(run.client, "log_batch", log_batch)
    run.finish("FAIL", metrics={}, tags={"fail_reason": "the disk is full"}, status="FAILED")
    assert MlflowClient(run.client.tracking_uri).get_run(run.run_id).info.status == "FAILED"


def test_a_finished_trial_whose_last_epoch_was_not_written_fails(run, monkeypatch):
    log_batch = run.client.log_batch

    def fails(run_id, metrics=(), **kwargs):
        if metrics and all(m.step == 3 for m in metrics):
            raise OSError(28, "No space left on device")
        return log_batch(run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(run.client, "log_batch", fails)
    run.log_epoch(3, {"loss": 0.4})
    with pytest.raises(OSError):
        run.finish("COMPLETE", metrics={"best_val_accuracy": 0.5}, tags={})
