"""Every shipped sweep file runs, shrunk to one epoch on tiny data (real MNIST/IMDB replaced by small local files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from study.spec.sweep_file import Sweep, load_sweep, parse_config
from study.search.sweep import run_sweep
from tests.conftest import write_imdb_npz, write_mnist_npz

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("datasets")
    return {
        "mnist": str(write_mnist_npz(folder / "mnist.npz")),
        "fashion_mnist": str(write_mnist_npz(folder / "fashion.npz", seed=1)),
        "imdb": str(write_imdb_npz(folder / "imdb.npz")),
    }


@pytest.fixture(scope="module")
def files_tracking_uri(tmp_path_factory) -> str:
    """An MLflow store of this module's own: other tests run studies of the same names (the seeds'),
    and a study's runs in a shared store would make a fresh Optuna store look like a lost one."""
    return f"sqlite:///{tmp_path_factory.mktemp('files-mlflow')}/mlflow.db"


def shrink(data: dict, files: dict[str, str]) -> dict:
    """The same sweep at test size: one epoch, as few trials as the file allows, tiny data."""
    task = dict(data["task"])
    if task["name"] in files:
        task["path"] = files[task["name"]]
    if task["name"] == "sine":
        task["length"] = 200
    if task["name"] == "mnist1d":
        task["num_samples"] = 200
    if "decide" in data:  # one round of paired draws, and the cap right there: no look can add more
        return {**data, "task": task, "epochs": 1, "trials": 3, "decide": {**data["decide"], "max_trials": 3}}
    return {**data, "task": task, "epochs": 1, "trials": max(1, len(data.get("configurations", [])))}


def test_there_are_sweep_files():
    names = {path.stem for path in SWEEP_FILES}
    assert "quick" in names and DEFAULT_RUN <= names
    assert len(names) >= 10


# One file per kind of model input runs in the default test run: digits rows (the main job), IMDB
# word ids (embedding) and the sine series (regression); the rest are marked slow and run in CI's
# full run (the MNIST layouts, the other models). test_config validates every file; test_data
# loads every task.
DEFAULT_RUN = {"quick", "seed001_imdb_gru", "seed001_sine_lstm"}


@pytest.mark.parametrize("path", [
    pytest.param(path, id=path.stem, marks=() if path.stem in DEFAULT_RUN else pytest.mark.slow) for path in SWEEP_FILES
])
def test_sweep_file_runs_shrunk(path, tiny_files, tmp_path, files_tracking_uri):
    original = load_sweep(path)
    data = shrink(yaml.safe_load(path.read_text()), tiny_files)
    sweep = Sweep(config=parse_config(data, source=str(path)), path=path, file_sha256=original.file_sha256)

    result = run_sweep(sweep, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=files_tracking_uri)

    assert result.counts["FAIL"] == 0, result.trials["fail_reason"].tolist()
    assert result.counts["COMPLETE"] == sweep.config.trials
    metric = f"best_{sweep.config.objective.metric}"
    assert result.trials[metric].notna().all()
    assert (result.trials["param_count"] > 0).all()
