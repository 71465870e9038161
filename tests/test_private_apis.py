"""The private library APIs the package relies on are still there and behave as its wrappers expect.

Each private name the package uses is wrapped once, in `study.store.optuna_private`,
`study.store.mlflow_private` or `study.train.tensorflow_private`; one test per wrapper here, on real
objects (in-memory and SQLite Optuna studies, an MLflow SQLite store under tmp_path, a tiny Keras
model), in seconds. Checked against Optuna 5.1.0, MLflow 3.17.2, TensorFlow 2.21.0 and Keras 3.15.1.
If one fails, a new version changed what the package relies on: adapt the wrapper (and the modules
its docstring names), then widen that library's range in pyproject.toml.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import warnings

import numpy as np
import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from study.search.samplers import EQUAL_BUDGET_ATTR, _Hyperband, _TrialsOfValue, scientific_value
from study.store import optuna_private
from study.store.mlflow_private import create_tables, dataset_entity
from study.store.optuna_private import (
    HyperbandWithBracketStudy, stale_trial_ids, storage_of, study_id_of, trial_id_of, trials_as_samplers_read_them,
)

# --------------------------------------------------------------------------- Optuna


def test_storage_and_ids_of_a_study_and_its_trials():
    """`Study._storage`, `Study._study_id`, `Trial._trial_id`, `FrozenTrial._trial_id`: what the
    equal-budget sampler records a trial's assigned value with and counts every trial by."""
    study = optuna.create_study()
    trial = study.ask()
    storage = storage_of(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    frozen = storage.get_trial(trial_id_of(trial))
    assert isinstance(frozen, FrozenTrial) and frozen.number == trial.number == 0
    assert trial_id_of(frozen) == trial_id_of(trial)
    assert [t.number for t in storage.get_all_trials(study_id_of(study), deepcopy=False)] == [0]
    storage.set_trial_system_attr(trial_id_of(frozen), EQUAL_BUDGET_ATTR, {"value": ["GRU"], "index": 0})
    assert scientific_value(storage.get_trial(trial_id_of(trial)), ["cell"]) == ("GRU",)
    # A view of the study (what a pruner hands a sampler) has the same storage.
    assert storage_of(_TrialsOfValue(study, ["cell"], ("LSTM",))) is storage


def test_samplers_read_trials_through_get_trials_with_use_cache():
    """`Study._get_trials(use_cache=)`: what TPE calls on the study (or view) it is given, so the
    within-value view answers it through `SamplersReadTrialsThrough`."""
    assert "use_cache" in inspect.signature(optuna.Study._get_trials).parameters
    tpe_module = inspect.getsource(inspect.getmodule(optuna.samplers.TPESampler))
    assert "study._get_trials(" in tpe_module
    study = optuna.create_study()
    trial = study.ask()
    storage_of(study).set_trial_system_attr(trial_id_of(trial), EQUAL_BUDGET_ATTR, {"value": ["GRU"], "index": 0})
    assert [t.number for t in trials_as_samplers_read_them(study, False, None, True)] == [0]
    assert len(trials_as_samplers_read_them(study, False, (TrialState.COMPLETE,), False)) == 0
    # The view filters there: TPE would see no trial of LSTM, the one trial of GRU.
    assert study._get_trials(deepcopy=False, use_cache=False) != []
    assert _TrialsOfValue(study, ["cell"], ("LSTM",))._get_trials(deepcopy=False, use_cache=False) == []
    assert len(_TrialsOfValue(study, ["cell"], ("GRU",))._get_trials(deepcopy=False, use_cache=True)) == 1


def test_hyperband_makes_a_brackets_study_with_create_bracket_study():
    """`HyperbandPruner._create_bracket_study(study, bracket_id)`: the one place Hyperband makes a
    bracket's study (for its own `prune` and for the samplers it filters), which `HyperbandWithBracketStudy`
    opens to `_Hyperband` as `bracket_study`."""
    assert list(inspect.signature(optuna.pruners.HyperbandPruner._create_bracket_study).parameters) == [
        "self", "study", "bracket_id"]
    assert "self._create_bracket_study(" in inspect.getsource(optuna.pruners.HyperbandPruner.prune)
    assert "pruner._create_bracket_study(" in inspect.getsource(optuna.pruners)  # the study samplers see
    study = optuna.create_study(direction="maximize")
    for cell in ("GRU", "LSTM"):
        trial = study.ask()
        storage_of(study).set_trial_system_attr(trial_id_of(trial), EQUAL_BUDGET_ATTR, {"value": [cell], "index": 0})
        study.tell(trial, 0.5)
    view = _TrialsOfValue(study, ["cell"], ("GRU",))
    optunas = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9)._create_bracket_study(view, 0)
    plain = HyperbandWithBracketStudy(min_resource=1, max_resource=9)._create_bracket_study(view, 0)
    ours = _Hyperband(min_resource=1, max_resource=9)._create_bracket_study(view, 0)
    assert len(optunas.get_trials(deepcopy=False)) == len(plain.get_trials(deepcopy=False)) == 2  # the view lost
    assert [scientific_value(t, ["cell"]) for t in ours.get_trials(deepcopy=False)] == [("GRU",)]
    assert ours.direction == study.direction and storage_of(ours) is storage_of(study)


def test_stale_trial_ids_are_the_running_trials_whose_heartbeat_ran_out(tmp_path):
    """`RDBStorage._get_stale_trial_ids(study_id)`: the trials `fail_stale_trials` would fail, read
    without failing them (what `study doctor` reports before it repairs)."""
    assert list(inspect.signature(optuna.storages.RDBStorage._get_stale_trial_ids).parameters) == ["self", "study_id"]
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Heartbeat of storage is supposed to be used with Study.optimize"
        beating, silent, finished = study.ask(), study.ask(), study.ask()
    study.tell(finished, 1.0)
    storage.record_heartbeat(trial_id_of(beating))
    assert stale_trial_ids(storage, study) == set()
    time.sleep(2.1)  # the database clock counts whole seconds: past the 1 s grace period for sure
    assert stale_trial_ids(storage, study) == {trial_id_of(beating)}  # a trial that never beat is not stale
    optuna.storages.fail_stale_trials(study)
    failed = {trial_id_of(t) for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    assert failed == {trial_id_of(beating)} and storage.get_trial(trial_id_of(silent)).state == TrialState.RUNNING


def test_the_rdb_storage_code_is_the_module_of_optunas_tables():
    """`optuna.storages._rdb.models`: the module a worker imports ahead of opening its storage."""
    optuna_private.import_rdb_storage_code()
    models = sys.modules["optuna.storages._rdb.models"]
    assert models is importlib.import_module("optuna.storages._rdb.models")
    assert {"StudyModel", "TrialModel", "TrialHeartbeatModel"} <= set(vars(models))
    assert "models" in vars(importlib.import_module("optuna.storages._rdb.storage"))


def test_a_trials_last_write_runs_in_the_module_optuna_study_tell():
    """`optuna.study._tell`, by name only: `study.train.interrupts` holds a Ctrl-C back while a frame
    of that module runs (the write that ends a trial, from `Study.tell` and from `Study.optimize`),
    so a trial is never left half-recorded. Nothing of it is called."""
    import optuna.study._optimize
    import optuna.study._tell

    from study.train.interrupts import _BOOKKEEPING

    assert "optuna.study._tell" in _BOOKKEEPING and optuna.study._tell.__name__ == "optuna.study._tell"
    assert "_tell_with_warning(" in inspect.getsource(optuna.Study.tell)
    assert "_tell_with_warning(" in inspect.getsource(optuna.study._optimize)


# --------------------------------------------------------------------------- MLflow


def test_create_tables_makes_a_tracking_store_mlflow_opens_as_is(tmp_path):
    """`mlflow.store.db.utils._initialize_tables(engine)`: the template of a new tracking store
    (`new_sqlite_store`), which MLflow must then open without migrating it and add its Default
    experiment to."""
    from mlflow.store.db import utils
    from mlflow.tracking import MlflowClient

    assert list(inspect.signature(utils._initialize_tables).parameters) == ["engine"]
    path = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        create_tables(engine)
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        with engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()
    assert {"experiments", "runs", "metrics", "params", "tags", "alembic_version"} <= tables
    assert revision
    with sqlalchemy.create_engine(f"sqlite:///{path}").connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM experiments").scalar() == 0  # MLflow adds it later
    client = MlflowClient(f"sqlite:///{path}")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    run = client.create_run(client.create_experiment("contract"))
    client.log_metric(run.info.run_id, "val_accuracy", 0.5, step=1)
    assert client.get_run(run.info.run_id).data.metrics == {"val_accuracy": 0.5}


def test_dataset_entity_is_what_mlflow_client_log_inputs_takes(tmp_path):
    """`Dataset._to_mlflow_entity()`: an `mlflow.data` dataset as the entity `MlflowClient.log_inputs`
    logs, read back with its name, digest and schema."""
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput
    from mlflow.tracking import MlflowClient

    dataset = mlflow.data.from_numpy(np.zeros((4, 3, 2), dtype="float32"), name="contract")
    entity = dataset_entity(dataset)
    assert isinstance(entity, Dataset) and (entity.name, entity.digest) == ("contract", dataset.digest)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("contract"))
    client.log_inputs(run.info.run_id, datasets=[DatasetInput(entity)])
    logged = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in logged] == [("contract", dataset.digest)]
    assert logged[0].dataset.schema


# --------------------------------------------------------------------------- TensorFlow and Keras


def _tiny_model():
    from study.train.backend import keras

    model = keras.Sequential([keras.Input(shape=(4, 3)), keras.layers.SimpleRNN(2), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def test_every_clearing_of_the_kernel_cache_goes_through_tfe_context_clear_caches(monkeypatch):
    """`pywrap_tfe.TFE_ContextClearCaches`, looked up when called: Keras' `clear_session()` and
    `set_random_seed()` both clear TensorFlow's kernel cache through it, which
    `kernel_cache_clearing_disabled` turns off meanwhile and `clear_kernel_cache` calls."""
    from study.train.backend import keras
    from study.train.tensorflow_private import clear_kernel_cache, kernel_cache_clearing_disabled
    from tensorflow.python import pywrap_tfe
    from tensorflow.python.eager import context

    assert context.pywrap_tfe is pywrap_tfe
    for method in (context.Context.clear_kernel_cache, context.Context._set_global_seed):
        assert "pywrap_tfe.TFE_ContextClearCaches(" in inspect.getsource(method), method
    context.ensure_initialized()  # before, there is no kernel cache to clear, and nothing calls it
    original, calls = pywrap_tfe.TFE_ContextClearCaches, []

    def counted(handle):
        calls.append(handle)
        return original(handle)

    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", counted)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    assert len(calls) == 2
    clear_kernel_cache()
    assert len(calls) == 3
    with kernel_cache_clearing_disabled():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        clear_kernel_cache()
    assert len(calls) == 3 and pywrap_tfe.TFE_ContextClearCaches is counted  # restored on the way out


def test_symbolic_build_creates_the_optimizer_and_metric_variables_before_the_first_step():
    """Keras' `Model._symbolic_build(data_batch=)`: what `TracedModels.take` runs on a new model,
    so its first training step is traced once (skipped, returning False, where Keras lacks it)."""
    from study.train.tensorflow_private import build_optimizer_and_metrics

    assert "data_batch" in inspect.signature(_tiny_model()._symbolic_build).parameters
    model = _tiny_model()
    assert not model.optimizer.built and not model._compile_metrics.built
    batch = (np.zeros((2, 4, 3), dtype="float32"), np.zeros((2,), dtype="int32"))
    assert build_optimizer_and_metrics(model, batch) is True
    assert model.optimizer.built and model._compile_metrics.built and model.built
    assert len(model.optimizer.variables) > 2  # slots for every weight, besides the step counter and learning rate
    assert build_optimizer_and_metrics(object(), batch) is False
