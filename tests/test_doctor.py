"""`study doctor`: the two stores checked against each other, and repaired where one settles it."""

from __future__ import annotations

import socket
import subprocess

import optuna
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from study.app.cli import app
from study.search.sweep import run_sweep
from study.spec.sweep_file import load_sweep
from study.store.doctor import check_study
from study.store.locations import open_storage
from study.store.stores import Stores


def doctor(name, stores, *flags):
    return CliRunner().invoke(app, ["doctor", name, "--storage", stores["storage"],
                                    "--tracking-uri", stores["tracking_uri"], *flags])


def test_a_clean_study_passes(tiny_sweep, stores, scripted_training):
    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=2)), **stores)
    assert check_study(result.study_name, Stores(**stores)).findings == []
    out = doctor(result.study_name, stores)
    assert out.exit_code == 0 and "the two stores agree" in out.output


def _closed_in_mlflow_only(result, stores):
    """A new trial whose MLflow run was closed as COMPLETE while Optuna still has it RUNNING: what a
    process that died between the two stores' writes leaves. Returns (study, trial, run id)."""
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(stores["storage"]))
    client = MlflowClient(stores["tracking_uri"])
    trial = study.ask()
    run = client.create_run(result.experiment_id, tags={
        "mlflow.parentRunId": result.parent_run_id, "run_role": "trial", "trial_number": str(trial.number),
        "state": "COMPLETE", "study": result.study_name}).info.run_id
    client.set_terminated(run, "FINISHED")
    trial.set_user_attr("mlflow_run_id", run)
    return study, trial, run


def test_damage_of_items_1_and_4_is_found_then_repaired(tiny_sweep, stores, scripted_training):
    # Item 1: MLflow closed the trial as COMPLETE, then the process died before Optuna's tell, and
    # Optuna failed the trial for want of heartbeats. Item 4: a replicate's process was killed.
    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=2)), **stores)
    study, trial, run = _closed_in_mlflow_only(result, stores)
    client = MlflowClient(stores["tracking_uri"])
    study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    dead = subprocess.Popen(["true"])
    dead.wait()
    replicate = client.create_run(result.experiment_id, tags={
        "mlflow.parentRunId": result.parent_run_id, "run_role": "replicate", "trial_number": "0",
        "state": "RUNNING", "owner_process": f"{socket.gethostname()}:{dead.pid}:0"}).info.run_id

    found = check_study(result.study_name, Stores(**stores))
    assert {(f.problem, f.run_id) for f in found.problems} == {("state-mismatch", run), ("running-leftover", replicate)}
    out = doctor(result.study_name, stores)
    assert out.exit_code == 1 and "state-mismatch" in out.output and "--repair" in out.output

    repaired = doctor(result.study_name, stores, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert (client.get_run(run).info.status, client.get_run(run).data.tags["state"]) == ("KILLED", "FAIL")
    assert client.get_run(replicate).info.status == "KILLED"
    assert doctor(result.study_name, stores).exit_code == 0


def test_duplicate_runs_and_a_deleted_run_are_repaired_and_lost_history_reported(
        tiny_sweep, stores, scripted_training, tmp_path):
    # Item 3 as it used to end: the study started again under the old parent, trial-0000 twice;
    # and a trial run deleted in the MLflow UI.
    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=2)), **stores)
    client = MlflowClient(stores["tracking_uri"])
    duplicate = client.create_run(result.experiment_id, tags={
        "mlflow.parentRunId": result.parent_run_id, "run_role": "trial", "trial_number": "0",
        "state": "COMPLETE", "study": result.study_name}).info.run_id
    client.set_terminated(duplicate, "FINISHED")
    deleted = result.trials.set_index("trial").loc[1, "mlflow_run_id"]
    client.delete_run(deleted)

    found = check_study(result.study_name, Stores(**stores))
    assert {(f.problem, f.run_id) for f in found.problems} == {("duplicate-run", duplicate), ("missing-run", deleted)}
    assert doctor(result.study_name, stores, "--repair").exit_code == 0
    assert client.get_run(duplicate).data.tags["run_role"] == "orphan"
    assert client.get_run(deleted).info.lifecycle_stage == "active"
    assert check_study(result.study_name, Stores(**stores)).findings == []

    emptied = tmp_path / "emptied.db"
    emptied.touch()
    lost = {"storage": f"sqlite:///{emptied}", "tracking_uri": stores["tracking_uri"]}
    out = doctor(result.study_name, lost, "--repair")
    assert out.exit_code == 1 and "lost-history" in out.output
    assert emptied.stat().st_size == 0  # the doctor wrote nothing there


def test_a_trial_running_in_optuna_but_closed_in_mlflow_is_reported(tiny_sweep, stores, scripted_training):
    # Item 1 before its fix: `study sweep ... | head -n 1` closed the run, then died before Optuna's tell.
    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=1)), **stores)
    _, _, run = _closed_in_mlflow_only(result, stores)
    [finding] = check_study(result.study_name, Stores(**stores), repair=True).problems
    assert (finding.problem, finding.run_id, finding.repaired) == ("state-mismatch", run, False)
    assert "Optuna RUNNING, MLflow COMPLETE/FINISHED" in finding.detail
