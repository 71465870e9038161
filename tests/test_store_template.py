"""A new local MLflow store starts as a copy of an empty one MLflow made once (study.store.mlflow_template.new_sqlite_store):
the same database MLflow's own migrations make, and MLflow's own path whenever the copy cannot be made."""

from __future__ import annotations

import random
import sqlite3

import pytest
from mlflow.tracking import MlflowClient

from study.store.locations import StudyNotFound
from study.store.mlflow_template import empty_store, store_template_folder
from study.store.tracking import client_for, study_runs


def _schema(path) -> list[tuple]:
    """Every table, index and trigger with its statement's lines sorted: MLflow's own migrations write a
    table's CHECK constraints in a different order from one run to the next (seen with MLflow 3.17.2:
    two fresh stores of the same process differ only there), so the order of lines is no difference."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master")
        return sorted((kind, name, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())) for kind, name, sql in rows)


def test_a_new_store_is_the_database_mlflow_makes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "copied").mkdir()
    MlflowClient(f"sqlite:///{tmp_path}/mlflow/mlflow.db").search_experiments()  # MLflow's migrations
    first = client_for(f"sqlite:///{tmp_path}/copied/first.db", create=True)  # makes the template, then copies it
    second = client_for(f"sqlite:///{tmp_path}/copied/second.db", create=True)  # copies it
    assert [p.name for p in store_template_folder().iterdir()] == [
        p.name for p in store_template_folder().glob("mlflow-*.db")]  # no half-made template left
    for client, name in ((first, "first.db"), (second, "second.db")):
        assert _schema(tmp_path / "copied" / name) == _schema(tmp_path / "mlflow" / "mlflow.db")
        assert [e.name for e in client.search_experiments()] == ["Default"]  # MLflow added it, as always
        experiment = client.create_experiment("works")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "loss", 0.5)
        assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    assert sorted(p.name for p in (tmp_path / "copied").iterdir()) == ["first.db", "second.db"]  # no leftovers


def test_without_a_writable_cache_mlflow_creates_the_store(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    (tmp_path / "store").mkdir()
    client = client_for(f"sqlite:///{tmp_path}/store/mlflow.db", create=True)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["mlflow.db"]


def test_a_corrupt_template_is_made_again_and_never_copied(tmp_path, monkeypatch):
    # Issue 24, item 4: random bytes in the cached template were copied into mlruns/mlflow.db, and
    # every later sweep failed on it ("file is not a database"), even once the cache was fixed.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "store").mkdir()
    client_for(f"sqlite:///{tmp_path}/store/first.db", create=True)  # makes the template
    [template] = store_template_folder().glob("mlflow-*.db")
    assert empty_store(template)
    template.write_bytes(random.Random(0).randbytes(200_000))
    assert not empty_store(template)
    client = client_for(f"sqlite:///{tmp_path}/store/mlflow.db", create=True)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert empty_store(template)  # made again from MLflow's migrations
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["first.db", "mlflow.db"]  # nothing half made


def test_reading_a_missing_store_creates_nothing(tmp_path):
    # Issue 24, item 14: `study doctor x` in a folder without stores made mlruns/mlflow.db (954 KB).
    with pytest.raises(StudyNotFound, match="no MLflow store"):
        client_for(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert study_runs(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "x") == []
    assert list(tmp_path.iterdir()) == []
