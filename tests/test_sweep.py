"""Sweeps end to end: Optuna and MLflow records, resume, failures, refusals, pruning, budgets.

Two tests train real models on tiny offline data (the records of a real training, and a real NaN
loss); the others test the search logic around training with `scripted_training` (conftest), so
each of their trials takes milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

import study.search.progress
import study.search.sweep
import study.store.locations
import study.store.tracking
import study.train.data
import study.train.models
from study.analysis.scoring import best_per_value
from study.search.sweep import run_sweep
from study.spec.base import ConfigError
from study.spec.sweep_file import load_sweep
from study.store.stores import Stores
from study.store.trials import list_studies
from tests.conftest import scripted_accuracy, unique_name


def test_sweep_records_every_trial_in_optuna_and_mlflow(tiny_sweep, stores):
    result = run_sweep(load_sweep(tiny_sweep(trials=3, epochs=2)), **stores)

    assert result.counts["COMPLETE"] == 3 and result.started == 3
    table = result.trials
    assert list(table["state"]) == ["COMPLETE"] * 3
    for column in ["best_val_accuracy", "test_accuracy", "test_loss", "cell", "units", "learning_rate",
                   "param_count", "seconds_per_epoch", "best_epoch", "seed"]:
        assert table[column].notna().all(), column
    assert set(table["best_epoch"]) <= {1, 2}
    assert table["seed"].nunique() == 3  # each trial trains from its own seed

    client = MlflowClient(stores["tracking_uri"])
    experiment = client.get_experiment_by_name(result.study_name)
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.data.tags["run_role"] == "parent"]
    children = [r for r in runs if r.data.tags["run_role"] == "trial"]
    assert len(parent) == 1 and len(children) == 3
    assert parent[0].info.status == "FINISHED"
    best = table.loc[table["best_val_accuracy"].idxmax()]
    assert parent[0].data.tags["best_trial"] == str(best["trial"])
    assert "config.yaml" in [a.path for a in client.list_artifacts(parent[0].info.run_id)]

    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert run.data.tags["state"] == "COMPLETE"
        for tag in ("task", "cell", "trial_number", "study", "sweep_sha256", "seed", "version.keras"):
            assert tag in run.data.tags, tag
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1, 2]  # one point per epoch
        row = table[table["trial"] == int(run.data.tags["trial_number"])].iloc[0]
        assert run.data.params["cell"] == row["cell"]
        assert run.data.metrics["best_val_accuracy"] == pytest.approx(row["best_val_accuracy"])
        # the score is the best validation value over the epochs
        assert row["best_val_accuracy"] == pytest.approx(max(m.value for m in history))
        assert run.data.metrics["param_count"] == row["param_count"]
        assert "trial.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
        assert run.outputs.model_outputs  # the trial's model, logged as an MLflow Model (study.store.tracking)
        with open(client.download_artifacts(run.info.run_id, "trial.json")) as file:
            assert len(json.load(file)["history"]["val_accuracy"]) == 2


@pytest.mark.slow  # compiles a GRU with XLA
def test_auto_xla_is_decided_per_trial_and_tagged(tiny_sweep, stores, monkeypatch):
    # The digits trials are far below the XLA threshold; lowered, the GRU trial compiles with XLA.
    monkeypatch.setattr(study.train.models, "XLA_MIN_SEQUENCE_STEPS", 1)
    result = run_sweep(load_sweep(tiny_sweep(trials=3, epochs=1)), **stores)
    client = MlflowClient(stores["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name(result.study_name).experiment_id],
                              filter_string="tags.run_role = 'trial'")
    xla = {run.data.tags["cell"]: run.data.tags["xla"] for run in runs}
    assert xla == {"GRU": "True", "LSTM": "False", "SimpleRNN": "False"}


def test_resume_adds_nothing_when_done_and_exactly_the_difference_after_a_raise(tiny_sweep, stores, scripted_training):
    scripted_training()
    sweep = load_sweep(tiny_sweep(trials=2))
    assert run_sweep(sweep, **stores).started == 2

    again = run_sweep(sweep, **stores)
    assert again.started == 0 and again.counts["COMPLETE"] == 2

    raised = run_sweep(sweep, trials=4, **stores)
    assert raised.started == 2 and raised.counts["COMPLETE"] == 4
    assert sorted(raised.trials["trial"]) == [0, 1, 2, 3]
    client = MlflowClient(stores["tracking_uri"])
    runs = client.search_runs(
        [client.get_experiment_by_name(sweep.config.name).experiment_id], filter_string="tags.run_role = 'trial'",
    )
    assert len(runs) == 4  # one run per trial, none duplicated by the resumes


def test_a_crashing_trial_is_recorded_and_the_sweep_goes_on(tiny_sweep, stores, scripted_training):
    crashes = []

    def gru_crashes_twice(params, seed, epoch):
        # The first two GRU trials crash; with equal budgets the GRU slot is retried until one runs.
        if params["cell"] == "GRU" and len(crashes) < 2:
            crashes.append(params)
            raise RuntimeError("simulated crash in the GRU builder")
        return scripted_accuracy(params, seed, epoch)

    scripted_training(gru_crashes_twice)
    result = run_sweep(load_sweep(tiny_sweep(trials=4)), **stores)

    table = result.trials
    failed = table[table["state"] == "FAIL"]
    assert len(failed) == 2 and set(failed["cell"]) == {"GRU"}
    assert failed["fail_reason"].str.contains("simulated crash in the GRU builder").all()
    assert result.counts["COMPLETE"] == 4  # failures are replaced until 4 trials finish
    assert result.stopped_reason is None

    client = MlflowClient(stores["tracking_uri"])
    experiment = client.get_experiment_by_name(result.study_name)
    failed_runs = client.search_runs([experiment.experiment_id], filter_string="tags.state = 'FAIL'")
    assert len(failed_runs) == len(failed)
    assert all(r.info.status == "FAILED" and "simulated crash" in r.data.tags["fail_reason"] for r in failed_runs)


def test_nan_loss_fails_the_trial_and_a_failure_streak_stops_the_sweep(tiny_sweep, stores, monkeypatch):
    real = study.train.data.load_task(load_sweep(tiny_sweep()).config.task)
    poisoned = study.train.data.TaskData(**{**real.__dict__, "x_train": np.full_like(real.x_train, np.nan)})
    monkeypatch.setattr(study.search.sweep, "load_task", lambda task: poisoned)  # where the sweep loads it

    sweep = load_sweep(tiny_sweep(trials=10))
    result = run_sweep(sweep, **stores)

    assert result.counts["FAIL"] == sweep.config.max_consecutive_failures == 3
    assert result.counts["COMPLETE"] == 0
    assert "3 failed trials in a row" in result.stopped_reason
    assert result.trials["fail_reason"].str.contains("loss became nan at epoch 1").all()
    client = MlflowClient(stores["tracking_uri"])
    parent = client.search_runs(
        [client.get_experiment_by_name(result.study_name).experiment_id], filter_string="tags.run_role = 'parent'",
    )[0]
    assert parent.info.status == "KILLED"  # the target was not reached


def test_changed_search_space_is_refused_on_resume(tiny_sweep, write_sweep, stores, scripted_training):
    scripted_training()
    first = load_sweep(tiny_sweep(trials=1))
    run_sweep(first, **stores)
    changed = first.path.read_text().replace("value: 8", "value: 16")
    with pytest.raises(ConfigError, match=r"different sweep definition \(changed: space\)"):
        run_sweep(load_sweep(write_sweep(changed, "changed.yaml")), **stores)
    assert len(Stores(**stores).trials(first.config.name)) == 1  # nothing was added


def test_grid_sweep_visits_every_point_once(write_sweep, stores, scripted_training):
    scripted_training()
    path = write_sweep("""
        name: grid-points
        task: {name: digits}
        space:
          cell: {role: scientific, choices: [SimpleRNN, GRU]}
          units: {choices: [4, 8]}
        trials: 4
        epochs: 1
        batch_size: 256
        sampler: grid
    """)
    result = run_sweep(load_sweep(path), **stores)
    pairs = set(zip(result.trials["cell"], result.trials["units"]))
    assert pairs == {("SimpleRNN", 4), ("SimpleRNN", 8), ("GRU", 4), ("GRU", 8)}


def test_configurations_run_first_and_exactly(write_sweep, stores, scripted_training):
    scripted_training()
    path = write_sweep("""
        name: exact-configurations
        task: {name: digits}
        space:
          cell: {role: scientific, choices: [GRU, LSTM]}
          depth: {choices: [1, 2]}
          units: {value: 4}
        configurations:
          - {cell: LSTM, depth: 2}
          - {cell: GRU, depth: 1}
        trials: 2
        epochs: 1
        batch_size: 256
    """)
    table = run_sweep(load_sweep(path), **stores).trials
    assert list(zip(table["cell"], table["depth"])) == [("LSTM", 2), ("GRU", 1)]


def test_list_studies_and_best_per_cell(tiny_sweep, stores, scripted_training):
    scripted_training()
    run_sweep(load_sweep(tiny_sweep(name="list-one", trials=3)), **stores)
    run_sweep(load_sweep(tiny_sweep(name="list-two", trials=1)), **stores)

    listed = list_studies(Stores(**stores).optuna_storage()).set_index("study")
    assert listed.loc["list-one", "complete"] == 3 and listed.loc["list-two", "complete"] == 1
    table = Stores(**stores).trials("list-one")
    assert listed.loc["list-one", "best_value"] == pytest.approx(table["best_val_accuracy"].max())

    best = best_per_value(table, ["cell"])
    for _, row in best.iterrows():
        same_cell = table[table["cell"] == row["cell"]]
        assert row["best_val_accuracy"] == pytest.approx(same_cell["best_val_accuracy"].max())
        assert row["trials"] == len(same_cell)


def test_trial_seed_and_sampling_are_reproducible(tiny_sweep, stores, scripted_training):
    scripted_training()
    first = run_sweep(load_sweep(tiny_sweep(name="repro-a", trials=2)), **stores).trials
    second = run_sweep(load_sweep(tiny_sweep(name="repro-b", trials=2)), **stores).trials
    assert list(first["seed"]) == list(second["seed"])
    assert list(first["cell"]) == list(second["cell"])
    assert np.allclose(first["learning_rate"], second["learning_rate"])
    assert isinstance(optuna.load_study(study_name="repro-a", storage=stores["storage"]).user_attrs["fingerprint"], str)


def test_pruned_trial_is_recorded_as_pruned_in_both_stores(write_sweep, stores, scripted_training):
    # The first trial learns (lr 1e-2); the next two barely move (lr 1e-6, then a drawn rate below
    # 1e-2: the queue skips a repeated configuration), so after one epoch they fall below the median
    # of the first and the median pruner stops them.
    scripted_training(lambda params, seed, epoch: 0.9 if params["learning_rate"] >= 1e-2 else 0.1)
    path = write_sweep("""
        name: pruning
        task: {name: digits}
        space:
          cell: {value: GRU}
          units: {value: 16}
          learning_rate: {low: 1.0e-6, high: 1.0e-2, log: true}
        configurations:
          - {learning_rate: 1.0e-2}
          - {learning_rate: 1.0e-6}
          - {learning_rate: 1.0e-6}
        trials: 3
        epochs: 4
        batch_size: 64
        pruner: {name: median, startup_trials: 1, warmup_epochs: 0}
    """)
    result = run_sweep(load_sweep(path), **stores)

    table = result.trials.set_index("trial")
    assert table.loc[0, "state"] == "COMPLETE"
    assert list(table.loc[[1, 2], "state"]) == ["PRUNED", "PRUNED"]
    assert result.counts["PRUNED"] == 2 and result.reached_target  # pruned trials count as finished
    assert list(table.loc[[1, 2], "pruned_at_epoch"]) == [1, 1]
    assert list_studies(Stores(**stores).optuna_storage()).set_index("study").loc["pruning", "pruned"] == 2

    client = MlflowClient(stores["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("pruning").experiment_id],
                              filter_string="tags.state = 'PRUNED'")
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["pruned_at_epoch"] == "1"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1]


def test_equal_budget_gives_every_cell_the_same_trials_and_nuisance_draws(write_sweep, stores, scripted_training):
    scripted_training()
    path = write_sweep("""
        name: equal-budget
        task: {name: digits}
        space:
          cell: {role: scientific, choices: [SimpleRNN, GRU, LSTM]}
          units: {value: 4}
          learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
        trials: 6
        epochs: 1
        batch_size: 256
        sampler: random
    """)
    table = run_sweep(load_sweep(path), **stores).trials
    assert table["cell"].value_counts().to_dict() == {"SimpleRNN": 2, "GRU": 2, "LSTM": 2}
    # Each cell's sampler has the same seed, so the cells are compared on identical learning rates.
    rates = {cell: sorted(group["learning_rate"]) for cell, group in table.groupby("cell")}
    assert rates["SimpleRNN"] == rates["GRU"] == rates["LSTM"]


def test_equal_budget_replaces_failed_trials_of_the_same_cell(write_sweep, stores, scripted_training):
    crashed = []

    def first_lstm_crashes(params, seed, epoch):
        if params["cell"] == "LSTM" and not crashed:
            crashed.append(params)
            raise RuntimeError("one-off crash")
        return scripted_accuracy(params, seed, epoch)

    scripted_training(first_lstm_crashes)
    path = write_sweep("""
        name: equal-budget-failure
        task: {name: digits}
        space:
          cell: {role: scientific, choices: [GRU, LSTM]}
          units: {value: 4}
        trials: 4
        epochs: 1
        batch_size: 256
    """)
    table = run_sweep(load_sweep(path), **stores).trials
    complete = table[table["state"] == "COMPLETE"]
    assert complete["cell"].value_counts().to_dict() == {"GRU": 2, "LSTM": 2}
    assert table[table["state"] == "FAIL"]["cell"].tolist() == ["LSTM"]


def test_param_budget_sizes_every_cell_to_the_same_parameter_count(write_sweep, stores, scripted_training):
    scripted_training()  # the real models' sizes: study.train.models.parameter_count, checked against Keras in test_models
    path = write_sweep("""
        name: size-matched
        task: {name: digits}
        space:
          cell: {role: scientific, choices: [SimpleRNN, GRU, LSTM]}
        param_budget: 3000
        trials: 3
        epochs: 1
        batch_size: 256
    """)
    table = run_sweep(load_sweep(path), **stores).trials.set_index("cell")
    assert (abs(table["param_count"] - 3000) / 3000 < 0.1).all()
    assert table.loc["SimpleRNN", "units"] > table.loc["GRU", "units"] > table.loc["LSTM", "units"]


# --------------------------------------------------------------------------- one truth across both stores


def stores_disagree(name: str, stores: dict[str, str]) -> list[str]:
    """Every way Optuna and MLflow tell a different story about the trials of study `name`."""
    client = MlflowClient(stores["tracking_uri"])
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.run_role = 'trial'")
    by_number: dict[int, list] = {}
    for run in runs:
        by_number.setdefault(int(run.data.tags["trial_number"]), []).append(run)
    problems = []
    status = {"COMPLETE": {"FINISHED"}, "PRUNED": {"FINISHED"}, "FAIL": {"FAILED", "KILLED"}, "RUNNING": {"RUNNING"}}
    for trial in optuna.load_study(study_name=name, storage=stores["storage"]).trials:
        found = by_number.pop(trial.number, [])
        if len(found) != 1:
            problems.append(f"trial {trial.number}: {len(found)} runs")
            continue
        run = found[0]
        if run.data.tags.get("state") != trial.state.name or run.info.status not in status[trial.state.name]:
            problems.append(f"trial {trial.number}: Optuna {trial.state.name}, MLflow "
                            f"{run.data.tags.get('state')}/{run.info.status}")
    problems += [f"run of trial {n} without an Optuna trial" for n in by_number]
    return problems


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), SystemExit(1)])
def test_a_reporter_that_fails_never_fails_a_finished_trial(error, tiny_sweep, stores, scripted_training):
    # `study sweep ... | head -n 1`: printing raises BrokenPipeError (Rich: SystemExit) once MLflow has the trial.
    scripted_training()

    class BrokenPipe(study.search.progress.SilentReporter):
        def trial_ended(self, *args):
            raise error

    result = run_sweep(load_sweep(tiny_sweep(trials=3)), reporter=BrokenPipe(), **stores)
    assert result.counts["COMPLETE"] == 3 and result.counts["FAIL"] == 0
    assert stores_disagree(result.study_name, stores) == []


def test_a_failure_while_recording_a_finished_trial_fails_it_in_both_stores_with_its_reason(
        write_sweep, stores, scripted_training, monkeypatch, request):
    scripted_training()
    name = unique_name(request)
    sweep = write_sweep(f"""
        name: {name}
        task: {{name: digits}}
        space: {{units: {{value: 8}}}}
        trials: 1
        epochs: 1
        sampler: random
        max_consecutive_failures: 1
    """)

    def disk_full(self, model):
        raise ValueError("cannot save this model: No space left on device")

    monkeypatch.setattr(study.store.tracking.TrialRun, "log_model", disk_full)
    result = run_sweep(load_sweep(sweep), **stores)
    [reason] = result.trials["fail_reason"]
    assert "No space left on device" in reason
    assert stores_disagree(name, stores) == []


def test_a_process_woken_after_its_trial_was_failed_by_others_goes_on(tiny_sweep, stores, scripted_training):
    # SIGSTOP (a suspended laptop) past the grace period: meanwhile another worker failed the trial
    # and closed its run. When the process wakes it must not crash with "Cannot tell a FAIL trial".
    name = tiny_sweep(trials=2)
    stolen = []

    def failed_by_others_during_epoch_1(params, seed, epoch):
        if not stolen:
            storage = study.store.locations.open_storage(stores["storage"])
            [trial] = optuna.load_study(study_name=name.stem, storage=storage).get_trials(
                states=(optuna.trial.TrialState.RUNNING,))
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            client = MlflowClient(stores["tracking_uri"])
            client.set_tag(trial.user_attrs["mlflow_run_id"], "state", "FAIL")
            client.set_terminated(trial.user_attrs["mlflow_run_id"], "KILLED")
            stolen.append(trial.number)
        return scripted_accuracy(params, seed, epoch)

    scripted_training(failed_by_others_during_epoch_1)
    result = run_sweep(load_sweep(name), **stores)
    assert result.counts["COMPLETE"] == 2 and result.counts["FAIL"] == 1
    assert stores_disagree(name.stem, stores) == []
    assert any("failed by another process" in note for note in result.notes)


def test_an_optuna_store_that_lost_its_history_is_refused_while_mlflow_has_the_runs(tiny_sweep, stores, scripted_training):
    # A 0-byte optuna.db must not start the study again under the old MLflow parent run.
    scripted_training()
    sweep = load_sweep(tiny_sweep(trials=2))
    run_sweep(sweep, **stores)
    # A fresh 0-byte file stands for the emptied one (this process still holds the old one open).
    emptied = Path(stores["storage"][len("sqlite:///"):]).with_name("emptied.db")
    emptied.touch()

    with pytest.raises(ConfigError, match=r"(?s)no record of trial\(s\) 0, 1 .*study doctor"):
        run_sweep(sweep, storage=f"sqlite:///{emptied}", tracking_uri=stores["tracking_uri"])
    client = MlflowClient(stores["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name(sweep.config.name).experiment_id],
                              filter_string="tags.run_role = 'trial'")
    assert len(runs) == 2  # no second trial-0000


def test_runs_of_any_role_left_running_by_a_dead_process_are_closed(tiny_sweep, stores, scripted_training):
    # kill -9 of `study replicate` or `study rerun` left their runs RUNNING forever.
    import socket
    import subprocess

    scripted_training()
    sweep = load_sweep(tiny_sweep(trials=1))
    result = run_sweep(sweep, **stores)
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = MlflowClient(stores["tracking_uri"])
    leftovers = [
        client.create_run(result.experiment_id, tags={
            "mlflow.parentRunId": result.parent_run_id, "run_role": role, "trial_number": "0", "state": "RUNNING",
            "study": result.study_name, "owner_process": f"{socket.gethostname()}:{dead.pid}:0",
        }).info.run_id
        for role in ("rerun", "replicate")
    ]
    from study.search.replicate import rerun_trial

    rerun_trial(result.study_name, 0, Stores(**stores))
    for run_id in leftovers:
        run = client.get_run(run_id)
        assert (run.info.status, run.data.tags["state"]) == ("KILLED", "FAIL")
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"


def test_a_full_disk_under_the_optuna_store_stops_the_sweep_with_one_line(tiny_sweep, stores, scripted_training,
                                                                          monkeypatch):
    # It used to print 15 tracebacks ("database or disk is full", "AssertionError: Should not reach.").
    import sqlite3

    import sqlalchemy
    from typer.testing import CliRunner

    from study.app.cli import app

    scripted_training()
    told = []
    tell = optuna.storages.RDBStorage.set_trial_state_values

    def full_after_the_first_trial(self, trial_id, state, values=None):
        if told:
            raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, sqlite3.OperationalError("database or disk is full"))
        told.append(trial_id)
        return tell(self, trial_id, state, values)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", full_after_the_first_trial)
    path = tiny_sweep(trials=3)
    out = CliRunner().invoke(app, ["sweep", str(path), *[f"--{k.replace('_', '-')}={v}" for k, v in stores.items()]])
    assert out.exit_code == 1, out.output
    [line] = [line for line in out.output.splitlines() if line.startswith("error:")]
    assert "database or disk is full (the disk is full: free some space)" in line and "resume" in line
    assert "Traceback" not in out.output and "Should not reach" not in out.output


def test_a_tracking_server_gone_mid_sweep_stops_it_at_once_with_one_masked_line(tiny_sweep, stores,
                                                                                scripted_training, monkeypatch):
    from mlflow.exceptions import MlflowException

    scripted_training()
    logged = []
    log_epoch = study.store.tracking.TrialRun.log_epoch

    def gone_after_the_first_trial(self, epoch, metrics):
        if len(logged) >= 1 and self.run_id not in logged:
            raise MlflowException("API request to http://study:pw-Secret@127.0.0.1:5000/api/2.0/mlflow/runs/log-batch "
                                  "failed with exception ConnectionError: Connection refused")
        logged.append(self.run_id)
        return log_epoch(self, epoch, metrics)

    monkeypatch.setattr(study.store.tracking.TrialRun, "log_epoch", gone_after_the_first_trial)
    with pytest.raises(study.store.locations.StoreFailed, match="the tracking store .* failed: MlflowException") as stopped:
        run_sweep(load_sweep(tiny_sweep(trials=4)), **stores)
    assert "pw-Secret" not in str(stopped.value) and "study:***@127.0.0.1" in str(stopped.value)
    trials = optuna.load_study(study_name=tiny_sweep().stem, storage=stores["storage"]).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]  # stopped at once, not after a streak


def test_the_mlflow_ui_opens_training_runs_named_by_their_model_and_the_metric_is_named(tiny_sweep, stores,
                                                                                      scripted_training):
    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=3)), **stores)
    client = MlflowClient(stores["tracking_uri"])
    experiment = client.get_experiment(result.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI overview
    runs = client.search_runs([result.experiment_id], filter_string="tags.run_role = 'trial'")
    names = {run.data.tags["trial_number"]: run.info.run_name for run in runs}
    for _, row in result.trials.iterrows():
        assert names[str(row["trial"])] == f"trial-{row['trial']:04d} {row['cell']}-8x1"
    assert optuna.load_study(study_name=result.study_name, storage=stores["storage"]).metric_names == ["val_accuracy"]
