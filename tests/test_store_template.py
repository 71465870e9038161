"""A new local MLflow store starts as a copy of an empty one MLflow made once (study.store.mlflow_template.new_sqlite_store):
the same database MLflow's own migrations make, and MLflow's own path whenever the copy cannot be made."""

from __future__ import annotations

import sqlite3

from mlflow.tracking import MlflowClient

from study.store.mlflow_template import store_template_folder
from study.store.tracking import client_for


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
    first = client_for(f"sqlite:///{tmp_path}/copied/first.db")  # makes the template, then copies it
    second = client_for(f"sqlite:///{tmp_path}/copied/second.db")  # copies it
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
    client = client_for(f"sqlite:///{tmp_path}/store/mlflow.db")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["mlflow.db"]
