"""MLflow as its users know it: trial models as MLflow Models, datasets, a parent run that answers,
system metrics and the Model Registry, read back through MLflow's own API.

One real tiny digits sweep (8 units, 1 epoch, 4 trials: a few seconds each) and its report are shared
by the module; system metrics use a scripted training that takes a known time."""

from __future__ import annotations

import json
import textwrap
import time

import mlflow
import mlflow.keras
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.reporting.build import build_report
from study.reporting.figure_data import predict_best
from study.search.sweep import run_sweep
from study.spec.sweep_file import load_sweep, parse_config
from study.store import tracking
from study.store.parent_summary import VERDICT_TAG, summary_metrics
from study.store.registry import alias_for, register_best
from study.store.stores import Stores
from study.train.data import load_task
from tests.conftest import unique_name

DIGITS = """
    name: conventions
    task: {name: digits}
    space:
      cell: {role: scientific, choices: [SimpleRNN, GRU]}
      units: {value: 8}
      learning_rate: {choices: [3.0e-3, 1.0e-2]}
    trials: 4
    epochs: 1
    batch_size: 128
    sampler: grid
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real 4-trial digits sweep (2 cells) in its own stores, then its report."""
    folder = tmp_path_factory.mktemp("conventions")
    path = folder / "conventions.yaml"
    path.write_text(textwrap.dedent(DIGITS))
    stores = {"storage": f"sqlite:///{folder}/optuna.db", "tracking_uri": f"sqlite:///{folder}/mlflow.db"}
    sweep = run_sweep(load_sweep(path), **stores)
    client = MlflowClient(stores["tracking_uri"])
    after_sweep = client.get_run(sweep.parent_run_id).data
    report = build_report(str(path), out=folder / "report", formats=("png",), **stores)
    return {"sweep": sweep, "report": report, "client": client, "after_sweep": after_sweep, "folder": folder,
            "path": path, **stores}


def trial_runs(study):
    client, table = study["client"], study["sweep"].trials
    return [(row, client.get_run(row["mlflow_run_id"])) for _, row in table.iterrows()]


def test_trial_models_load_with_mlflow_and_score_the_test_set_as_recorded(study, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", study["tracking_uri"])
    data = load_task(load_sweep(study["path"]).config.task)
    assert study["sweep"].counts["COMPLETE"] == 4
    for row, run in trial_runs(study):
        [output] = run.outputs.model_outputs  # the runs table's Models column
        logged = study["client"].get_logged_model(output.model_id)
        assert (logged.name, logged.source_run_id, str(logged.status)) == ("model", run.info.run_id, "READY")
        uri = f"runs:/{run.info.run_id}/model"
        model = mlflow.keras.load_model(uri)
        _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
        assert accuracy == pytest.approx(row["test_accuracy"], abs=1e-6)

        pyfunc = mlflow.pyfunc.load_model(uri)
        signature = pyfunc.metadata.signature
        assert [s.shape for s in signature.inputs.inputs] == [(-1, 8, 8)]
        assert [s.shape for s in signature.outputs.inputs] == [(-1, 10)]
        assert pyfunc.metadata.saved_input_example_info is not None  # the first validation sequences
        example = data.x_val[:2]
        assert np.allclose(pyfunc.predict(example), model.predict(example, verbose=0), atol=1e-6)
        requirements = mlflow.pyfunc.get_model_dependencies(uri)
        with open(requirements) as file:
            pinned = file.read()
        assert "keras==" in pinned and "tensorflow==" in pinned and "mlflow==" in pinned


def test_the_report_loads_mlflow_models_and_older_model_keras_artifacts(study):
    """`predict_best` (the report's confusion matrices): a logged MLflow Model, a raw `model.keras`
    of a study logged before, and None for a run that logged neither."""
    import keras

    data = load_task(load_sweep(study["path"]).config.task)
    client, uri = study["client"], study["tracking_uri"]
    new_run = study["sweep"].trials["mlflow_run_id"].iloc[0]
    model = tracking.load_model(uri, new_run, study["folder"] / "new")
    expected = model.predict(data.x_test, verbose=0)

    experiment = client.get_experiment_by_name("conventions").experiment_id
    legacy = client.create_run(experiment, run_name="legacy").info.run_id  # as trials logged models before
    path = study["folder"] / "model.keras"
    model.save(path)
    client.log_artifact(legacy, str(path))
    bare = client.create_run(experiment, run_name="no model").info.run_id

    new, old, none = predict_best(uri, [new_run, legacy, bare], data.x_test)
    assert np.allclose(new, expected, atol=1e-6) and np.allclose(old, expected, atol=1e-6)
    assert none is None
    assert isinstance(tracking.load_model(uri, legacy, study["folder"] / "legacy"), keras.Model)
    for run_id in (legacy, bare):
        client.delete_run(run_id)


def test_every_trial_logs_the_task_as_one_dataset(study):
    data = load_task(load_sweep(study["path"]).config.task)
    inputs = [run.inputs.dataset_inputs for _, run in trial_runs(study)]
    assert all(len(found) == 1 for found in inputs)
    datasets = [found[0].dataset for found in inputs]
    assert len({d.digest for d in datasets}) == 1  # one digest per study
    assert {d.name for d in datasets} == {"digits"}
    [features] = json.loads(json.loads(datasets[0].schema)["mlflow_tensorspec"]["features"])
    assert features["tensor-spec"] == {"dtype": "float32", "shape": [-1, 8, 8]}  # steps x features
    assert datasets[0].source_type == "code"
    task = load_sweep(study["path"]).config.task
    assert json.loads(datasets[0].source)["tags"] == {
        "loader": "study.train.data.load_task", **{k: str(v) for k, v in task.model_dump().items()}}
    tags = {t.key: t.value for t in inputs[0][0].tags}
    assert tags == {"mlflow.data.context": "train", "rows.train": str(len(data.x_train)),
                    "rows.validation": str(len(data.x_val)), "rows.test": str(len(data.x_test))}

    # Other data, another digest: one array changed by one value.
    changed = data.x_test.copy()
    changed[0, 0, 0] += 1
    splits = {"train": (data.x_train, data.y_train), "validation": (data.x_val, data.y_val)}
    same = tracking.task_dataset("digits", {"loader": "x"}, {**splits, "test": (data.x_test, data.y_test)})
    other = tracking.task_dataset("digits", {"loader": "x"}, {**splits, "test": (changed, data.y_test)})
    assert same.digest == datasets[0].digest and other.digest != same.digest


def expected_summary(table: pd.DataFrame) -> dict[str, float]:
    expected = {}
    for cell, group in table.groupby("cell"):
        scores = group["best_val_accuracy"]
        expected |= {f"trials.{cell}": float(len(group)), f"trials_complete.{cell}": float(len(group)),
                     f"best_val_accuracy.{cell}": float(scores.max()),
                     f"mean_val_accuracy.{cell}": float(scores.mean())}
    return expected


def test_the_parent_run_answers_after_the_sweep_and_after_the_report(study):
    table = study["sweep"].trials
    expected = expected_summary(table)
    after_sweep = study["after_sweep"].metrics
    assert {k: after_sweep[k] for k in expected} == pytest.approx(expected)
    assert after_sweep["trials_complete"] == 4
    parent = study["client"].get_run(study["sweep"].parent_run_id).data
    assert {k: parent.metrics[k] for k in expected} == pytest.approx(expected)
    assert parent.tags[VERDICT_TAG] == study["report"].verdict.headline


def test_summary_metrics_of_a_hand_built_table():
    table = pd.DataFrame({
        "trial": [0, 1, 2, 3, 4], "cell": ["GRU", "GRU", "LSTM", "GRU", "LSTM"],
        "state": ["COMPLETE", "COMPLETE", "FAIL", "PRUNED", "COMPLETE"],
        "best_val_accuracy": [0.5, 0.7, None, 0.9, 0.4],
    })
    assert summary_metrics(table, ["cell"], "best_val_accuracy", maximize=True) == {
        "trials.GRU": 3.0, "trials_complete.GRU": 2.0, "best_val_accuracy.GRU": 0.7, "mean_val_accuracy.GRU": 0.6,
        "trials.LSTM": 2.0, "trials_complete.LSTM": 1.0, "best_val_accuracy.LSTM": 0.4,
        "mean_val_accuracy.LSTM": 0.4,
    }
    assert summary_metrics(table, [], "best_val_accuracy", maximize=False) == {
        "trials": 5.0, "trials_complete": 3.0, "best_val_accuracy": 0.4, "mean_val_accuracy": pytest.approx(1.6 / 3),
    }


def test_register_best_registers_one_version_per_cell_with_aliases(study, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", study["tracking_uri"])
    stores = Stores(study["storage"], study["tracking_uri"])
    verdict = study["report"].verdict.headline
    registered = register_best("conventions", stores)  # the verdict line the report put on the parent run
    table = study["sweep"].trials
    best = table.loc[table.groupby("cell")["best_val_accuracy"].idxmax()]
    assert {(r.value, r.trial, r.alias) for r in registered} == {
        (cell, int(trial), alias_for(cell)) for cell, trial in zip(best["cell"], best["trial"])}
    client = study["client"]
    for r in registered:
        version = client.get_model_version_by_alias("conventions", f"best-{r.value}")
        assert (str(version.version), version.run_id, version.description) == (r.version, r.run_id, verdict)
        logged = client.get_logged_model(client.get_run(r.run_id).outputs.model_outputs[0].model_id)
        assert version.source == logged.artifact_location
        model = mlflow.keras.load_model(f"models:/conventions@best-{r.value}")  # as a user would
        assert model.count_params() == table.loc[table["trial"] == r.trial, "param_count"].iloc[0]
    # Asked again: the same versions, none added.
    again = register_best("conventions", stores, description=verdict)
    assert sorted(r.version for r in again) == sorted(r.version for r in registered)
    assert len(client.search_model_versions("name = 'conventions'")) == len(registered)
    # From the command line: one line per version, still none added.
    from typer.testing import CliRunner

    from study.app.cli import app

    done = CliRunner().invoke(app, ["register", "conventions", "--storage", study["storage"],
                                    "--tracking-uri", study["tracking_uri"]])
    assert done.exit_code == 0 and all(f"@best-{r.value}: trial {r.trial}" in done.output for r in registered), done.output
    assert len(client.search_model_versions("name = 'conventions'")) == len(registered)


def test_register_best_refuses_a_study_without_logged_models(write_sweep, stores, scripted_training, request):
    scripted_training()
    name = unique_name(request)
    path = write_sweep(f"""
        name: {name}
        task: {{name: digits}}
        space: {{cell: {{role: scientific, choices: [GRU]}}, units: {{value: 8}}}}
        trials: 1
        epochs: 1
        log_models: false
    """)
    run_sweep(load_sweep(path), **stores)
    with pytest.raises(LookupError, match="no trial .* has a logged MLflow Model"):
        register_best(name, Stores(stores["storage"], stores["tracking_uri"]))


def test_system_metrics_are_logged_per_trial_unless_switched_off(tiny_sweep, stores, scripted_training, monkeypatch):
    monkeypatch.delenv(tracking.SYSTEM_METRICS_ENV, raising=False)  # on by default
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")

    def slow(params, seed, epoch):  # long enough for a few samples
        time.sleep(0.3)
        return 0.5

    scripted_training(slow)
    result = run_sweep(load_sweep(tiny_sweep(trials=1, epochs=3)), **stores)
    metrics = MlflowClient(stores["tracking_uri"]).get_run(result.trials["mlflow_run_id"].iloc[0]).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)

    monkeypatch.setenv(tracking.SYSTEM_METRICS_ENV, "false")
    result = run_sweep(load_sweep(tiny_sweep(name=unique_name_off(result), trials=1, epochs=3)), **stores)
    metrics = MlflowClient(stores["tracking_uri"]).get_run(result.trials["mlflow_run_id"].iloc[0]).data.metrics
    assert not [k for k in metrics if k.startswith("system/")]


def unique_name_off(result) -> str:
    return f"{result.study_name}-off"


def test_a_sweep_file_asking_to_register_registers_when_it_ends(study):
    """`register: true` in the sweep file registers when the sweep ends."""
    from study.search.sweep import register_if_asked

    result = study["sweep"]
    assert load_sweep(study["path"]).config.register_models is False  # opt-in
    config = parse_config({**yaml.safe_load(study["path"].read_text()), "register": True}, source="conventions.yaml")
    assert config.register_models is True
    notes = list(result.notes)
    register_if_asked(result, config, Stores(study["storage"], study["tracking_uri"]))
    assert result.notes[len(notes):] == [
        "registered in the Model Registry as 'conventions': " + ", ".join(
            f"best-{v.tags['value']} = version {v.version} (trial {v.tags['trial']})"
            for v in sorted(study["client"].search_model_versions("name = 'conventions'"),
                            key=lambda v: ["SimpleRNN", "GRU"].index(v.tags["value"])))]
