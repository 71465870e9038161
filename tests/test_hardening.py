"""Hardening II (issue 24): faults a hostile user found in the stores, the doctor and the workers.

Each test names its item; every one of a fault failed before its fix (the rest guard what a fix
must not break). Training is scripted wherever the fault is not in training itself
(`scripted_training`), and every store lives under `tmp_path`.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from study.app.cli import app
from study.search.replicate import replicate_best
from study.search.sweep import open_sweep, run_sweep
from study.spec.sweep_file import load_sweep
from study.store.doctor import check_study
from study.store.locations import StudyLock, redact
from study.store.stores import Stores, replicate_runs

runner = CliRunner()
PASSWORD = "postgresql://study:top@secret@127.0.0.1:5432/optuna"


def local_stores(folder: Path) -> dict[str, str]:
    return {"storage": f"sqlite:///{folder}/optuna.db", "tracking_uri": f"sqlite:///{folder}/mlflow.db"}


def one_error_line(result, expected: str) -> None:
    """The command ended with exit 2 and one `error:` line that says `expected`; no traceback."""
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- 1: replicates claimed once


def test_two_replications_at_once_train_each_replicate_once(tiny_sweep, tmp_path, scripted_training):
    # Two `study replicate tiny --seeds 2` at once used to record all 6 replicates twice (12 runs),
    # and the report counted n = 4 from 2 seeds. Here the second replication starts while the
    # first trains its first replicate, as a second terminal would.
    stores = local_stores(tmp_path)
    second: list = []

    def script(params, seed, epoch):
        if replicating and not second:
            second.append(None)  # once: the second replication starts now, inside the first one's training
            second.extend(replicate_best(result.study_name, 2, None, Stores(**stores)))
        return 0.5

    scripted_training(script)
    replicating = False
    result = run_sweep(load_sweep(tiny_sweep()), **stores)
    replicating = True
    first = replicate_best(result.study_name, 2, None, Stores(**stores))
    made = first + second[1:]
    assert len(made) == 6 and len({(r.trial, r.seed) for r in made}) == 6
    runs = replicate_runs(result.study_name, stores["tracking_uri"])
    assert len(runs) == 6 and runs.groupby("trial")["seed"].nunique().tolist() == [2, 2, 2]
    assert check_study(result.study_name, Stores(**stores)).findings == []


def test_a_replicate_left_running_by_a_dead_process_is_free_again(tiny_sweep, tmp_path, scripted_training):
    # The claim must not hold a replicate forever: one RUNNING in a process that died is closed and run.
    scripted_training()
    stores = local_stores(tmp_path)
    result = run_sweep(load_sweep(tiny_sweep()), **stores)
    trial = int(result.best["trial"].iloc[0])
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = MlflowClient(stores["tracking_uri"])
    left = client.create_run(result.experiment_id, tags={
        "mlflow.parentRunId": result.parent_run_id, "run_role": "replicate", "trial_number": str(trial),
        "replicate_of_trial": str(trial), "replicate_index": "0", "state": "RUNNING", "study": result.study_name,
        "owner_process": f"{socket.gethostname()}:{dead.pid}:0"}).info.run_id
    made = replicate_best(result.study_name, 1, None, Stores(**stores))
    assert sorted(r.trial for r in made) == sorted(result.best["trial"])  # trial's replicate 0 too
    assert client.get_run(left).info.status == "KILLED"


def test_doctor_finds_duplicate_replicates_and_repair_sets_them_aside(tiny_sweep, tmp_path, scripted_training):
    # What two replications that raced left before replicates were claimed: the same (trial,
    # index, seed) twice. The doctor said the stores agree.
    scripted_training()
    stores = local_stores(tmp_path)
    result = run_sweep(load_sweep(tiny_sweep()), **stores)
    replicate_best(result.study_name, 1, None, Stores(**stores))
    client = MlflowClient(stores["tracking_uri"])
    [original, *_] = client.search_runs([result.experiment_id], "tags.run_role = 'replicate'", order_by=["start_time"])
    copy = client.create_run(result.experiment_id, tags=dict(original.data.tags)).info.run_id
    client.log_metric(copy, "best_val_accuracy", 0.5)
    client.set_terminated(copy, "FINISHED")
    assert len(replicate_runs(result.study_name, stores["tracking_uri"])) == 4  # one seed counted twice

    [finding] = check_study(result.study_name, Stores(**stores)).problems
    assert (finding.problem, finding.run_id) == ("duplicate-replicate", copy)
    assert original.info.run_id in finding.detail
    out = runner.invoke(app, ["doctor", result.study_name, "--storage", stores["storage"],
                              "--tracking-uri", stores["tracking_uri"], "--repair"])
    assert out.exit_code == 0, out.output
    assert client.get_run(copy).data.tags["run_role"] == "orphan"  # set aside, not deleted
    assert len(replicate_runs(result.study_name, stores["tracking_uri"])) == 3
    assert check_study(result.study_name, Stores(**stores)).findings == []


# --------------------------------------------------------------------------- 2: a live sweep is no leftover


def test_doctor_repair_leaves_a_live_sweep_alone_before_its_first_trial(tiny_sweep, tmp_path):
    # `study doctor NAME --repair` in the first seconds of `study sweep` (the study and its parent
    # run exist, TensorFlow is still loading) ended the live parent run as KILLED.
    stores = local_stores(tmp_path)
    opened = open_sweep(load_sweep(tiny_sweep()), **stores)
    name, parent = opened.config.name, opened.tracker.parent_run_id
    assert check_study(name, Stores(**stores), repair=True).findings == []
    out = runner.invoke(app, ["doctor", name, "--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"]])
    assert out.exit_code == 0 and "the two stores agree" in out.output, out.output
    assert MlflowClient(stores["tracking_uri"]).get_run(parent).info.status == "RUNNING"


def test_a_dead_sweeps_parent_run_is_still_repaired_unless_the_study_lock_is_held(tiny_sweep, tmp_path):
    stores = local_stores(tmp_path)
    opened = open_sweep(load_sweep(tiny_sweep()), **stores)
    name, parent = opened.config.name, opened.tracker.parent_run_id
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = MlflowClient(stores["tracking_uri"])
    client.set_tag(parent, "owner_process", f"{socket.gethostname()}:{dead.pid}:0")
    client.set_tag(parent, "opened_at", str(int((time.time() - 3600) * 1000)))  # an hour ago
    with StudyLock(Stores(**stores).optuna_storage(), stores["storage"], name):  # a worker claiming a trial
        assert check_study(name, Stores(**stores), repair=True).findings == []
    [finding] = check_study(name, Stores(**stores), repair=True).findings
    assert (finding.problem, finding.run_id, finding.repaired) == ("running-leftover", parent, True)
    assert client.get_run(parent).info.status == "KILLED"


# --------------------------------------------------------------------------- 3, 16: each store its own file


@pytest.fixture
def swept(tiny_sweep, tmp_path, scripted_training, monkeypatch):
    """A finished tiny study in `tmp_path/mlruns`, the working directory; returns its sweep file.

    The stores are named by absolute paths: MLflow keeps one store per URI for the whole process,
    so a relative `sqlite:///mlruns/mlflow.db` would reach the first test's folder from every test."""
    scripted_training()
    monkeypatch.chdir(tmp_path)
    path = tiny_sweep()
    run_sweep(load_sweep(path), **local_stores(tmp_path / "mlruns"))
    return path


@pytest.mark.parametrize("flags, expected", [
    (["--storage", "{mlruns}/mlflow.db", "--tracking-uri", "{tmp}/elsewhere/mlflow.db"],
     "mlruns/mlflow.db is an MLflow tracking store, not an Optuna storage"),
    (["--tracking-uri", "{mlruns}/optuna.db", "--storage", "{tmp}/elsewhere/optuna.db"],
     "mlruns/optuna.db is an Optuna storage, not an MLflow tracking store"),
    (["--storage", "{mlruns}/mlflow.db", "--tracking-uri", "{mlruns}/mlflow.db"],
     "are one file (it is MLflow's tracking store)"),
])
def test_the_other_tools_file_is_refused_before_anything_is_written(swept, tmp_path, flags, expected):
    # Optuna used to create its tables inside MLflow's file (and MLflow its tables inside Optuna's)
    # before failing on the other's schema revision.
    files = {name: md5(tmp_path / "mlruns" / name) for name in ("optuna.db", "mlflow.db")}
    flags = [flag.format(mlruns=f"sqlite:///{tmp_path}/mlruns", tmp=f"sqlite:///{tmp_path}") for flag in flags]
    for command in (["sweep", str(swept)], ["doctor", swept.stem]):
        one_error_line(runner.invoke(app, [*command, *flags]), expected)
    assert files == {name: md5(tmp_path / "mlruns" / name) for name in files}
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("storage, expected", [
    ("sqlite:///mlruns", "mlruns is the folder of the tracking URI (mlruns/mlflow.db)"),
    ("sqlite:///mlruns/artifacts", "mlruns/artifacts is where MLflow keeps the artifacts"),
])
def test_a_storage_where_the_tracking_stores_folder_goes_is_refused(tiny_sweep, tmp_path, monkeypatch, storage, expected):
    # `--storage sqlite:///mlruns` wrote an Optuna database named `mlruns` and `mlruns.lock`, then
    # failed on the tracking store.
    monkeypatch.chdir(tmp_path)
    sweep = tiny_sweep()
    one_error_line(runner.invoke(app, ["sweep", str(sweep), "--storage", storage]), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [sweep.name]
    (tmp_path / "folder").mkdir()
    one_error_line(runner.invoke(app, ["sweep", str(sweep), "--storage", "sqlite:///folder"]),
                   "storage sqlite:///folder: folder is a folder; name a database file in it")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([sweep.name, "folder"])
    assert list((tmp_path / "folder").iterdir()) == []


# --------------------------------------------------------------------------- 5: workers for the work left


def test_jobs_on_a_complete_study_starts_no_worker(tiny_sweep, tmp_path, scripted_training, monkeypatch):
    # `--jobs 8` on a complete study started 8 TensorFlow workers (7 GB, 34 s) to run nothing.
    from study.search import workers

    scripted_training()
    stores = local_stores(tmp_path)
    sweep = load_sweep(tiny_sweep())
    run_sweep(sweep, **stores)
    started = []
    monkeypatch.setattr(workers.subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("a worker"))
    outcome = workers.run_workers(sweep, 8, **stores)
    assert started == [] and outcome.exit_codes == [] and outcome.sweep.started == 0
    assert "the study has its 3 trials already: no worker ran" in outcome.sweep.notes


def test_jobs_are_capped_by_the_trials_left_and_the_memory_available(tiny_sweep, tmp_path, monkeypatch):
    from study.search import workers

    stores = Stores(**local_stores(tmp_path))
    sweep = load_sweep(tiny_sweep())
    assert workers.trials_missing(sweep, None, stores) == 3  # no study yet: all of them
    assert workers.trials_missing(sweep, 5, stores) == 5
    assert not tmp_path.joinpath("optuna.db").exists()  # looked at, never made
    assert workers.trials_missing(sweep, None, Stores("postgresql://u@h/db", stores.tracking_uri)) is None

    calls = []

    class Started(Exception):
        pass

    def popen(*args, **kwargs):
        calls.append(kwargs["env"]["RNN_STUDY_THREADS"])
        raise Started

    monkeypatch.setattr(workers, "available_memory", lambda: int(2.5 * workers.WORKER_BYTES))
    monkeypatch.setattr(workers, "cpu_count", lambda: 8)
    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    with pytest.raises(Started):
        workers.run_workers(sweep, 32, storage=stores.storage, tracking_uri=stores.tracking_uri)
    assert calls == ["4"]  # the first of 2 workers (what 2.5 workers' memory holds), with 8 // 2 threads each


# --------------------------------------------------------------------------- 6: an @ in a password


@pytest.mark.parametrize("how", ["--storage", "env", "--tracking-uri"])
def test_a_password_with_an_at_sign_is_refused_and_never_echoed(how, tmp_path, monkeypatch):
    # The drivers split `study:top@secret@127.0.0.1` at the first `@` and echoed the host
    # 'secret@127.0.0.1', a piece of the password.
    monkeypatch.chdir(tmp_path)
    flags = {"--storage": ["--storage", PASSWORD], "--tracking-uri": ["--tracking-uri", PASSWORD], "env": []}[how]
    if how == "env":
        monkeypatch.setenv("RNN_STUDY_STORAGE", PASSWORD)
    result = runner.invoke(app, ["doctor", "x", *flags])
    one_error_line(result, "the user name or password holds an '@': write each one as %40")
    assert "secret" not in result.output and "top@" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_drivers_echo_of_the_passwords_pieces_is_masked():
    text = "connection failed: failed to resolve host 'secret@127.0.0.1': [Errno -2] Name or service not known"
    assert redact(text, PASSWORD) == ("connection failed: failed to resolve host '***@127.0.0.1': [Errno -2] Name or "
                                      "service not known")
    assert redact("password for top@secret refused", PASSWORD) == "password for *** refused"
    assert redact("stopped at the top", PASSWORD) == "stopped at the top"  # a short piece alone is an ordinary word


# --------------------------------------------------------------------------- 10: a corrupt tracking store


@pytest.mark.parametrize("command", [
    ["doctor", "{name}"], ["doctor", "{name}", "--repair"], ["history", "{name}", "--csv", "h.csv"],
    ["report", "{name}", "--out", "r"], ["rerun", "{name}", "0"], ["replicate", "{name}", "--seeds", "1"],
])
def test_a_corrupt_tracking_store_is_one_error_line(swept, tmp_path, command):
    # Random bytes in mlruns/mlflow.db: each of these printed a sqlalchemy DatabaseError traceback.
    store = tmp_path / "mlruns" / "mlflow.db"
    store.write_bytes(random.Random(0).randbytes(100_000))
    before = md5(store)
    stores = local_stores(tmp_path / "mlruns")
    result = runner.invoke(app, [part.format(name=swept.stem) for part in command]
                           + ["--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"]])
    one_error_line(result, f"tracking URI {stores['tracking_uri']}: {store} is not a SQLite database "
                           "(file is not a database); restore it from a backup, or move it aside")
    assert md5(store) == before and not (tmp_path / "r").exists() and not (tmp_path / "h.csv").exists()


# --------------------------------------------------------------------------- 12, 14, 15: where stores go


def test_a_read_command_in_a_folder_without_stores_writes_nothing(tmp_path, monkeypatch):
    # `study doctor x` here made mlruns/mlflow.db (954 KB).
    monkeypatch.chdir(tmp_path)
    for command in (["doctor", "x"], ["doctor", "x", "--repair"], ["show", "x"], ["replicate", "x"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mlruns").mkdir()
    for name in ("optuna.db", "mlflow.db"):  # empty files hold nothing to read: neither tool fills them
        (tmp_path / "mlruns" / name).touch()
    for command in (["doctor", "x"], ["show", "x"], ["list"], ["history", "x", "--csv", "h.csv"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert sorted((p.name, p.stat().st_size) for p in (tmp_path / "mlruns").iterdir()) == [
        ("mlflow.db", 0), ("optuna.db", 0)]


def test_mlruns_as_a_dangling_symlink_is_named(tiny_sweep, tmp_path, monkeypatch):
    # It said `[Errno 17] File exists: 'mlruns'`, with no word about the link.
    monkeypatch.chdir(tmp_path)
    sweep = tiny_sweep()
    (tmp_path / "mlruns").symlink_to(tmp_path / "gone")
    one_error_line(runner.invoke(app, ["sweep", str(sweep)]),
                   f"mlruns is a dangling symbolic link (to {tmp_path / 'gone'}, which does not exist)")
    doctor = runner.invoke(app, ["doctor", "x"])
    assert doctor.exit_code == 2 and f"mlruns is a dangling symbolic link (to {tmp_path / 'gone'})" in doctor.output
    assert not (tmp_path / "gone").exists()


def _without_file_permissions() -> list[str] | None:
    """A prefix that runs a command without the power to ignore file permissions, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.parametrize("command", [["sweep", "{sweep}"], ["doctor", "{name}"]])
def test_a_storage_behind_a_folder_this_user_cannot_enter_is_one_error_line(command, tiny_sweep, tmp_path):
    # It was a PermissionError traceback from check_writable (as a user who may not enter the folder).
    prefix = _without_file_permissions()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot shut a folder to this process")
    sweep = tiny_sweep()
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0)
    try:
        args = [part.format(sweep=sweep, name=sweep.stem) for part in command]
        done = subprocess.run([*prefix, sys.executable, "-m", "study.app.cli", *args,
                               "--storage", "sqlite:///closed/inner/optuna.db"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    finally:
        closed.chmod(0o755)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "storage sqlite:///closed/inner/optuna.db: permission denied to look into the folder closed" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["closed", sweep.name])
