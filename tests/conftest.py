"""Shared fixtures: every store lives under a temporary directory, and nothing reads the network."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """Ignore a developer's own store settings; tests pass explicit stores."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RNN_STUDY_STORAGE", raising=False)


@pytest.fixture(scope="session")
def shared_tracking_uri(tmp_path_factory) -> str:
    # Creating an MLflow database costs ~3 s of migrations, so tests share one and keep apart by
    # using their own experiment (= study) names.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def stores(tmp_path, shared_tracking_uri) -> dict[str, str]:
    """A fresh Optuna store for one test and the session's MLflow store."""
    return {"storage": f"sqlite:///{tmp_path}/store/optuna.db", "tracking_uri": shared_tracking_uri}


def unique_name(request) -> str:
    """A study name unique to the running test (its MLflow experiment name too)."""
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in request.node.name)[:90]


@pytest.fixture
def write_sweep(tmp_path):
    """Write a sweep file from YAML text and return its path."""

    def write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


TINY_DIGITS = """
    name: {name}
    task: {{name: digits}}
    space:
      cell: {{role: scientific, choices: [SimpleRNN, GRU, LSTM]}}
      units: {{value: 8}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
    trials: {trials}
    epochs: {epochs}
    batch_size: 128
    sampler: random
    max_consecutive_failures: 3
"""


@pytest.fixture
def tiny_sweep(write_sweep, request):
    """A tiny offline digits sweep: cells compared, 8 units, random sampler; named after the test."""

    def make(name: str = "", trials: int = 3, epochs: int = 1) -> Path:
        name = name or unique_name(request)
        return write_sweep(TINY_DIGITS.format(name=name, trials=trials, epochs=epochs), f"{name}.yaml")

    return make


def write_mnist_npz(path: Path, train: int = 60, test: int = 20, seed: int = 0) -> Path:
    """A tiny Keras-format mnist.npz (random 28x28 uint8 images, labels 0-9)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (train, 28, 28), dtype=np.uint8), y_train=np.arange(train, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (test, 28, 28), dtype=np.uint8), y_test=np.arange(test, dtype=np.uint8) % 10,
    )
    return path


def write_imdb_npz(path: Path, train: int = 60, test: int = 20, seed: int = 0) -> Path:
    """A tiny Keras-format imdb.npz: object arrays of word-index lists of varying length, labels 0/1."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def reviews(n):
        data = np.empty(n, dtype=object)
        for i in range(n):
            data[i] = [int(w) for w in rng.integers(1, 20000, rng.integers(5, 300))]
        return data

    np.savez(path, x_train=reviews(train), y_train=np.arange(train) % 2, x_test=reviews(test), y_test=np.arange(test) % 2)
    return path


# --------------------------------------------------------------------------- scripted training


def scripted_accuracy(params: dict, seed: int, epoch: int) -> float:
    """A validation accuracy that depends on the hyperparameters like a real one, without training:
    it rises with the epochs towards a ceiling that peaks at a learning rate of 3e-3, with a small
    bonus per cell and a little seed noise."""
    import math

    import numpy as np

    distance = abs(math.log10(params.get("learning_rate", 1e-3)) - math.log10(3e-3))
    ceiling = 0.95 - 0.15 * distance + {"SimpleRNN": 0.0, "GRU": 0.02, "LSTM": 0.01}.get(params.get("cell"), 0.0)
    noise = np.random.default_rng([seed, epoch]).normal(0, 0.005)
    return float(min(0.999, max(0.0, ceiling * (1 - 0.5 ** epoch) + noise)))


class ScriptedModel:
    """What a scripted training hands back as its model: it can be saved, as `log_models` does."""

    def save(self, path) -> None:
        Path(path).write_bytes(b"scripted model")


@pytest.fixture
def scripted_training(monkeypatch):
    """Replace Keras training with a script, for tests of the search logic around it (samplers,
    pruning, failures, resume, equal budgets, replicates): a trial then takes milliseconds.

    `install(script)` patches `train_and_evaluate` where trials (`study.search.trial`) and retrainings
    (`study.train.fit`, imported when a retraining starts) look it up; `script(params, seed, epoch)` gives
    each epoch's validation accuracy (default `scripted_accuracy`), may raise to crash the trial or
    return NaN to fail it as a NaN loss would. The fake keeps the real one's contract: per-epoch
    callbacks, pruning checks, best epoch, test metrics at the best epoch (none when pruned), the
    parameter count of the real model (`study.train.models.parameter_count`). Regression tasks get a
    validation loss of 1 - accuracy. Returns the list of (params, seed) it trained, in order.
    """
    import math

    import study.search.trial
    import study.train.fit
    from study.train.fit import TrainingResult, TrialFailed
    from study.train.sizes import model_spec, parameter_count

    trained: list[tuple[dict, int]] = []

    def install(script=scripted_accuracy):
        def train(data, params, *, epochs, batch_size, seed, metric, direction, on_epoch=None,
                  should_prune=None, jit_compile="auto"):
            trained.append((dict(params), seed))
            maximize = direction == "maximize"
            history: dict[str, list[float]] = {}
            best, best_epoch, pruned_at = None, 0, None
            for epoch in range(1, epochs + 1):
                accuracy = script(params, seed, epoch)
                if not math.isfinite(accuracy):
                    raise TrialFailed(f"loss became nan at epoch {epoch}")
                logs = {"loss": 1 - accuracy + 0.01, "val_loss": 1 - accuracy}
                if metric == "val_accuracy":
                    logs |= {"accuracy": accuracy + 0.01, "val_accuracy": accuracy}
                elif metric == "val_mae":
                    logs |= {"mae": 1 - accuracy + 0.01, "val_mae": 1 - accuracy}
                for key, value in logs.items():
                    history.setdefault(key, []).append(value)
                if on_epoch is not None:
                    on_epoch(epoch, logs)
                value = logs[metric]
                if best is None or (value > best if maximize else value < best):
                    best, best_epoch = value, epoch
                if should_prune is not None and should_prune(epoch, value):
                    pruned_at = epoch
                    break
            test = {}
            if pruned_at is None:
                score = history["val_loss"][best_epoch - 1]
                test = {"test_loss": score + 0.02}
                if data.kind == "regression":
                    test["test_mae"] = score + 0.03
                else:
                    test["test_accuracy"] = 1 - score - 0.01
            return TrainingResult(
                value=best, best_epoch=best_epoch, history=history, test_metrics=test,
                param_count=parameter_count(model_spec(data), params), train_seconds=0.01 * epochs,
                epoch_seconds=[0.01] * len(history["loss"]), pruned_at=pruned_at, model=ScriptedModel(),
            )

        monkeypatch.setattr(study.search.trial, "train_and_evaluate", train)
        monkeypatch.setattr(study.train.fit, "train_and_evaluate", train)
        return trained

    return install
