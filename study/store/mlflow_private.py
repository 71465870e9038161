"""MLflow's private parts this project relies on, each behind one small function.

Checked against MLflow 3.17.2; `tests/test_private_apis.py` fails when one of them changes. The names
are `mlflow.store.db.utils._initialize_tables`, what MLflow runs on a new tracking database,
which `study.store.mlflow_template.new_sqlite_store` runs once per machine to keep a template of an empty
store, and `Dataset._to_mlflow_entity`, the one way to log a dataset input through `MlflowClient`
rather than the fluent `mlflow.log_input` (`tests/test_mlflow_conventions.py` reads one back). Nothing
else in the package uses a private MLflow name.
"""

from __future__ import annotations

from typing import Any


def create_tables(engine: Any) -> None:
    """`mlflow.store.db.utils._initialize_tables(engine)`: create MLflow's tables in the empty database
    of a SQLAlchemy `engine` and run every schema migration, as MLflow does for a new store (it adds
    its Default experiment afterwards, itself, when it opens the store)."""
    from mlflow.store.db.utils import _initialize_tables

    _initialize_tables(engine)


def dataset_entity(dataset: Any) -> Any:
    """`dataset._to_mlflow_entity()`: an `mlflow.data` dataset as the `mlflow.entities.Dataset` that
    `MlflowClient.log_inputs` takes (inside a `DatasetInput`); what `mlflow.log_input` does itself."""
    return dataset._to_mlflow_entity()
