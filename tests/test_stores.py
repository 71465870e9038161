"""The Stores handle: one rule for where a study lives, Optuna opened once, and the one trials table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from study.spec.base import ConfigError
from study.spec.settings import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, STORAGE_ENV, TRACKING_ENV
from study.spec.sweep_file import parse_config
from study.store.locations import StudyNotFound
from study.store.stores import Stores

FILE = parse_config({"name": "where", "task": {"name": "digits"}, "trials": 1, "epochs": 1,
                     "storage": "sqlite:///from/file/optuna.db", "tracking_uri": "sqlite:///from/file/mlflow.db"})


def test_flag_then_environment_then_file_then_recorded_then_default(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    assert Stores.resolve() == Stores(DEFAULT_STORAGE, DEFAULT_TRACKING_URI)
    assert Stores.resolve(recorded_storage="sqlite:///recorded.db").storage == "sqlite:///recorded.db"
    # A recorded URL whose password was masked cannot be used: the default stands.
    assert Stores.resolve(recorded_storage="postgresql://u:***@h/db").storage == DEFAULT_STORAGE
    assert Stores.resolve(config=FILE, recorded_storage="sqlite:///recorded.db") == Stores(
        "sqlite:///from/file/optuna.db", "sqlite:///from/file/mlflow.db")
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///from/env/optuna.db")
    monkeypatch.setenv(TRACKING_ENV, "sqlite:///from/env/mlflow.db")
    assert Stores.resolve(config=FILE) == Stores("sqlite:///from/env/optuna.db", "sqlite:///from/env/mlflow.db")
    assert Stores.resolve("sqlite:///flag.db", "sqlite:///flag-mlflow.db", FILE) == Stores(
        "sqlite:///flag.db", "sqlite:///flag-mlflow.db")


def test_masked_forms_and_a_bad_url_named_once():
    stores = Stores.resolve("postgresql://study:secret@db/optuna", "http://user:pw@mlflow:5000")
    assert stores.storage_shown == "postgresql://study:***@db/optuna"
    assert stores.tracking_shown == "http://user:***@mlflow:5000"
    assert stores.storage == "postgresql://study:secret@db/optuna"  # the URL itself is kept, to open the store
    with pytest.raises(ConfigError, match="not a supported URL"):
        Stores.resolve("mlruns/optuna.db")


def test_optuna_is_opened_once_and_a_missing_store_is_not_created(tmp_path):
    stores = Stores(f"sqlite:///{tmp_path}/absent/optuna.db", f"sqlite:///{tmp_path}/absent/mlflow.db")
    with pytest.raises(StudyNotFound, match="no study storage"):
        stores.optuna_storage()
    assert not (tmp_path / "absent").exists()
    made = Stores(f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
    first = made.optuna_storage(create=True)
    assert made.optuna_storage() is first  # kept: a report opens it once
    made.close()
    assert made.optuna_storage() is not first


def test_a_study_in_neither_store_says_what_each_one_said(tmp_path):
    stores = Stores(f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
    stores.optuna_storage(create=True)
    with pytest.raises(StudyNotFound) as raised:
        stores.trials("nowhere")
    message = str(raised.value)
    assert "no study named 'nowhere'" in message and "and in MLflow: no MLflow store at" in message
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates the MLflow store


def test_the_handle_and_the_size_arithmetic_import_no_heavy_library():
    # `study sweep --jobs N` resolves its stores, and refuses a too-large space, before these load.
    code = ("import sys, study.store.stores, study.train.sizes; "
            "print(sorted(m for m in ('pandas', 'optuna', 'mlflow', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
