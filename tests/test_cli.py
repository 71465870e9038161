"""The `study` command: exit codes, refusals before anything is written, tables, and the UI server."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from study.app.cli import app
from tests.test_config import BAD_SWEEPS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(("yaml_text", "expected"), BAD_SWEEPS)
def test_bad_sweep_file_exits_2_before_writing_anything(yaml_text, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)

    result = invoke("sweep", path)

    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert str(path) in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--trials", "-3"], "--trials must be at least 1"),
        (["--storage", "mlruns/optuna.db"], "is not a supported URL"),
        (["--tracking-uri", "./mlruns"], "is not a supported URL"),
    ],
    ids=["trials-zero", "trials-negative", "storage-without-scheme", "tracking-plain-path"],
)
def test_bad_flags_exit_2_before_writing_anything(args, expected, tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("sweep", tiny_sweep(), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "mlruns").exists()


def test_missing_local_dataset_exits_2(write_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_sweep("name: m\ntask: {name: mnist, path: /nonexistent/mnist.npz}\ntrials: 1\nepochs: 1\n")
    result = invoke("sweep", path)
    assert result.exit_code == 2, result.output
    assert "/nonexistent/mnist.npz" in result.output
    assert not (tmp_path / "mlruns").exists()


def test_installed_command_refuses_a_missing_file_without_a_traceback(tmp_path):
    study_command = Path(sys.executable).with_name("study")
    done = subprocess.run([str(study_command), "sweep", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert "no such sweep file" in done.stderr and "Traceback" not in done.stderr


def test_sweep_then_list_then_show(tiny_sweep, stores, tmp_path, monkeypatch, scripted_training):
    monkeypatch.chdir(tmp_path)
    scripted_training()
    path = tiny_sweep(trials=2)
    name = unique_name_from(path)
    flags = ["--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"]]

    swept = invoke("sweep", path, *flags)
    assert swept.exit_code == 0, swept.output
    assert "best trial per cell" in swept.output
    assert "2 complete" in swept.output

    listed = invoke("list", "--storage", stores["storage"])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if name in line)
    assert re.search(r"\b2\b", row)

    shown = invoke("show", name, "--storage", stores["storage"], "--csv", tmp_path / "trials.csv")
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("COMPLETE") == 2
    assert "param_count" in shown.output and "seconds_per_epoch" in shown.output
    assert len((tmp_path / "trials.csv").read_text().strip().splitlines()) == 3  # header + 2 trials

    resumed = invoke("sweep", path, *flags)
    assert resumed.exit_code == 0 and "this run started 0" in resumed.output

    nowhere = invoke("show", name, "--storage", stores["storage"], "--csv", tmp_path / "no" / "such" / "t.csv")
    assert nowhere.exit_code == 2 and "Traceback" not in nowhere.output and nowhere.exception.__class__ is SystemExit
    assert "error: --csv " in nowhere.output and "no/such/t.csv: cannot write it" in nowhere.output


def unique_name_from(path: Path) -> str:
    return path.stem


def test_failure_streak_exits_1_with_the_reason(tiny_sweep, stores, monkeypatch, tmp_path, scripted_training):
    # A real NaN loss is tested in test_sweep; here every scripted trial ends in one.
    monkeypatch.chdir(tmp_path)
    path = tiny_sweep(trials=5)
    scripted_training(lambda params, seed, epoch: float("nan"))

    result = invoke("sweep", path, "--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"])
    assert result.exit_code == 1
    assert "3 failed trials in a row" in result.output and "loss became nan" in result.output


def test_list_and_show_explain_a_missing_store_or_study(tmp_path, stores, tiny_sweep, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = invoke("list", "--storage", f"sqlite:///{tmp_path}/none/optuna.db")
    assert missing.exit_code == 2 and "no study storage" in missing.output
    assert not (tmp_path / "none").exists()

    shown = invoke("show", "no-such-study", "--storage", f"sqlite:///{tmp_path}/none/optuna.db")
    assert shown.exit_code == 2 and "no study storage" in shown.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # the MLflow server takes 10-40 s to answer on 2 cores
def test_ui_serves_the_tracking_store_on_loopback(tiny_sweep, stores, tmp_path):
    from study.search.sweep import run_sweep
    from study.spec.sweep_file import load_sweep

    result = run_sweep(load_sweep(tiny_sweep(trials=1)), **stores)
    port = _free_port()
    study_command = Path(sys.executable).with_name("study")
    server = subprocess.Popen(
        [str(study_command), "ui", "--tracking-uri", stores["tracking_uri"], "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )
    try:
        first = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        # `study ui` prints one link per experiment once the server answers; ours is among them.
        link = f"#/experiments/{result.experiment_id}/runs"
        for _ in range(500):
            line = server.stdout.readline()
            if link in line or not line.startswith("  "):
                break
        assert link in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200  # answering already: the link came only once it did
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get?experiment_id={result.experiment_id}",
            timeout=10,
        ) as response:
            assert result.study_name in response.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Stopping `study ui` stops the MLflow server it started: nothing answers on the port any more.
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            time.sleep(0.5)
        except OSError:
            break
    else:
        pytest.fail("the MLflow server still answers after `study ui` was stopped")


def test_terminal_tables_fit_by_leaving_out_whole_columns_never_by_cutting_names(monkeypatch):
    import pandas as pd

    import study.app.terminal

    frame = pd.DataFrame({"trial": [0, 1], "state": ["COMPLETE", "COMPLETE"], "best_val_accuracy": [0.98, 0.97],
                          "cell": ["SimpleRNN", "GRU"], "learning_rate": [0.001, 0.002], "seconds_per_epoch": [0.5, 0.6]})
    narrow = Console(width=60, record=True)
    monkeypatch.setattr(study.app.terminal, "console", narrow)
    narrow.print(study.app.terminal.dataframe_table(frame, "trials"))
    text = narrow.export_text()
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "SimpleRNN" in text and "…" not in text  # whole names, no ellipsis
    assert "not shown, to fit 60 columns: learning_rate, seconds_per_epoch" in " ".join(text.split())
    wide = io.StringIO()
    monkeypatch.setattr(study.app.terminal, "console", Console(width=60, file=wide))
    study.app.terminal.print_table(frame, "trials", wide=True)
    every = wide.getvalue()
    assert "…" not in every and "seconds_per_epoch" in every and "learning_rate" in every


@pytest.mark.parametrize("command", ["sweep", "worker", "show", "report", "doctor", "replicate"])
def test_help_names_each_store_default_and_its_environment_variable(command):
    # It used to show neither (Rich ate the brackets) and a stray `--help <bool>`.
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # help wraps lines
    assert "[env var: RNN_STUDY_STORAGE; default:" in text and "sqlite:///mlruns/optuna.db]" in text
    if command != "show":
        assert "[env var: MLFLOW_TRACKING_URI; default:" in text and "sqlite:///mlruns/mlflow.db]" in text
    if command in ("sweep", "worker"):
        assert "default: the sweep file's `storage`, else sqlite:///mlruns/optuna.db" in text
    assert "<bool>" not in text


@pytest.mark.parametrize("raised, code, line", [
    (lambda: __import__("study.spec.base", fromlist=["ConfigError"]).ConfigError("trials: must be at least 1"),
     2, "error: trials: must be at least 1"),
    (lambda: __import__("study.store.locations", fromlist=["StoreFailed"]).StoreFailed("the disk is full"),
     1, "error: the disk is full"),
    (lambda: KeyboardInterrupt(), 130, "error: interrupted; resume with the same command"),
    (lambda: LookupError("no trial 9"), 2, "error: no trial 9"),
])
def test_each_kind_of_error_is_one_line_with_its_exit_code(raised, code, line, capsys):
    import typer

    from study.app.terminal import exit_codes

    with pytest.raises(typer.Exit) as stop:
        with exit_codes("interrupted; resume with the same command", bad_input=(LookupError,)):
            raise raised()
    assert stop.value.exit_code == code
    assert capsys.readouterr().err.strip() == line


def test_an_unexpected_error_keeps_its_traceback():
    from study.app.terminal import exit_codes

    with pytest.raises(ZeroDivisionError):
        with exit_codes():
            1 / 0
