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
