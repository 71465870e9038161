"""`study ui` and `study dashboard`: the servers they start, the stores they open, what they print
and when, and that the servers stop with them. Tests that start a server are marked slow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

import study.app.serve_commands
from study.app.cli import app

runner = CliRunner()
STUDY = [str(Path(sys.executable).with_name("study"))]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


class Served(list):
    """The servers a command would have started; `answers` says whether they answer at once."""
    answers = False


@pytest.fixture
def served(monkeypatch) -> Served:
    """Record what `serve_until_stopped` would start instead of starting it (calling `say_ready` if it `answers`)."""
    calls = Served()

    def fake_serve(command, health_url, say_ready, env, starting):
        calls.append({"command": command, "health_url": health_url, "env": env, "starting": starting})
        if calls.answers:
            say_ready()

    monkeypatch.setattr(study.app.serve_commands, "serve_until_stopped", fake_serve)
    return calls


@pytest.fixture(scope="module")
def tracking_store(shared_tracking_uri) -> str:
    """The session's MLflow store (creating one costs seconds), holding an experiment `ui-study`."""
    from mlflow import MlflowClient

    client = MlflowClient(shared_tracking_uri)
    if client.get_experiment_by_name("ui-study") is None:
        client.create_experiment("ui-study")
    return shared_tracking_uri


def _optuna_store(tmp_path: Path, name: str = "dash-study") -> str:
    import optuna

    url = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    (tmp_path / "mlruns").mkdir(exist_ok=True)
    created = optuna.create_study(study_name=name, storage=url, direction="maximize")
    created.set_metric_names(["val_accuracy"])
    for value in (0.5, 0.7):
        created.add_trial(optuna.trial.create_trial(params={"units": 8}, distributions={
            "units": optuna.distributions.IntDistribution(4, 16)}, value=value))
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- fast: what would start


def test_ui_starts_one_quiet_mlflow_worker_and_prints_the_links_only_once_it_answers(tracking_store, served):
    uri = tracking_store

    result = invoke("ui", "--tracking-uri", uri, "--port", 5123)

    assert result.exit_code == 0, result.output
    assert result.output == ""  # nothing yet: the links come once the server answers
    (call,) = served
    command = call["command"]
    assert command[command.index("--workers") + 1] == "1"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == uri
    assert call["health_url"] == "http://127.0.0.1:5123/health"
    assert "ignore:starlette:UserWarning" in call["env"]["PYTHONWARNINGS"].split(",")
    assert call["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"

    served.answers = True
    printed = invoke("ui", "--tracking-uri", uri, "--port", 5123)
    lines = printed.output.splitlines()
    assert lines[0] == "MLflow UI at http://127.0.0.1:5123  (Ctrl-C to stop)", printed.output
    (link,) = [line for line in lines[1:] if line.startswith("  ui-study: ")]  # one line per experiment
    assert link.startswith("  ui-study: http://127.0.0.1:5123/#/experiments/") and link.endswith("/runs")


def test_ui_takes_more_workers_and_keeps_the_users_own_warning_filters(tracking_store, served, monkeypatch):
    uri = tracking_store
    monkeypatch.setenv("PYTHONWARNINGS", "error::ResourceWarning")
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")

    assert invoke("ui", "--tracking-uri", uri, "--workers", 3, "--host", "0.0.0.0").exit_code == 0

    command, env = served[0]["command"], served[0]["env"]
    assert command[command.index("--workers") + 1] == "3"
    assert served[0]["health_url"] == "http://127.0.0.1:5000/health"  # a wildcard bind is asked on loopback
    assert env["PYTHONWARNINGS"] == "error::ResourceWarning,ignore:starlette:UserWarning"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"  # asked for: kept


def test_ui_refuses_no_workers_and_a_missing_store_in_one_line(tmp_path, served):
    zero = invoke("ui", "--tracking-uri", f"sqlite:///{tmp_path}/none/mlflow.db", "--workers", 0)
    assert zero.exit_code == 2 and zero.output.strip() == "error: --workers must be at least 1 (got 0)"

    missing = invoke("ui", "--tracking-uri", f"sqlite:///{tmp_path}/none/mlflow.db")
    assert missing.exit_code == 2 and missing.output.startswith("error: no tracking store at")
    assert not served


def test_dashboard_opens_the_storage_from_flag_then_environment_then_default(tmp_path, served, monkeypatch):
    flag = _optuna_store(tmp_path)
    monkeypatch.chdir(tmp_path)  # the default, sqlite:///mlruns/optuna.db, is this same file

    assert invoke("dashboard").exit_code == 0
    monkeypatch.setenv("RNN_STUDY_STORAGE", flag)
    assert invoke("dashboard", "--port", 8099).exit_code == 0
    monkeypatch.setenv("RNN_STUDY_STORAGE", f"sqlite:///{tmp_path}/elsewhere/optuna.db")
    assert invoke("dashboard", "--storage", flag).exit_code == 0

    stores = [call["env"]["RNN_STUDY_DASHBOARD_STORAGE"] for call in served]
    assert stores == ["sqlite:///mlruns/optuna.db", flag, flag]
    assert [call["health_url"] for call in served][:2] == ["http://127.0.0.1:8080/api/meta",
                                                          "http://127.0.0.1:8099/api/meta"]
    assert all(flag not in " ".join(call["command"]) for call in served)  # not in argv, where `ps` shows it
    assert invoke("dashboard", "--storage", flag).output == ""  # nothing until it answers
    served.answers = True
    assert invoke("dashboard", "--storage", flag).output == "optuna-dashboard at http://127.0.0.1:8080  (Ctrl-C to stop)\n"


def test_dashboard_refuses_a_missing_store_or_package_in_one_line(tmp_path, served, monkeypatch):
    import importlib.util

    missing = invoke("dashboard", "--storage", f"sqlite:///{tmp_path}/none/optuna.db")
    assert missing.exit_code == 2 and missing.output.startswith("error: no study storage at"), missing.output
    assert not (tmp_path / "none").exists()
    bad = invoke("dashboard", "--storage", "mlruns/optuna.db")
    assert bad.exit_code == 2 and "is not a supported URL" in bad.output

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna_dashboard"
                        else real(name, *a))
    absent = invoke("dashboard", "--storage", _optuna_store(tmp_path))
    assert absent.exit_code == 2
    assert absent.output.splitlines()[0].startswith("error: optuna-dashboard is not installed; "
                                                    "pip install 'rnn-study[dashboard]'"), absent.output
    assert len(absent.output.strip().splitlines()) == 1 and "Traceback" not in absent.output
    assert not served


def test_ui_and_dashboard_refuse_a_port_they_cannot_listen_on_before_starting_anything(tracking_store, tmp_path,
                                                                                       served):
    storage = _optuna_store(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["ui", "--tracking-uri", tracking_store], ["dashboard", "--storage", storage]):
            result = invoke(*command, "--port", port)
            assert result.exit_code == 2
            assert result.output.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use; " \
                                            "pass another --port"
    outside = invoke("ui", "--tracking-uri", tracking_store, "--port", 70000)  # getaddrinfo would wrap it to 4464
    assert outside.exit_code == 2 and outside.output.strip() == "error: --port 70000: use a port number from 1 to 65535"
    assert not served


def test_a_server_that_stops_before_it_answers_is_one_error_line_and_exit_1(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text("""
import os, sys
from study.app.serve_commands import serve_until_stopped
import typer
try:
    serve_until_stopped([sys.executable, "-c", "raise SystemExit(3)"], "http://127.0.0.1:1/", lambda: print("ready"),
           dict(os.environ), "starting")
except typer.Exit as stop:
    raise SystemExit(stop.exit_code)
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == "error: the server stopped before it answered (exit code 3); see its messages above"


# --------------------------------------------------------------------------- slow: real servers


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _group_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


@pytest.mark.slow
def test_serve_prints_only_once_the_server_answers_and_stops_its_group_on_sigterm(tmp_path):
    # A stand-in server that binds its port 3 s after it starts, run the way `study ui` runs MLflow's.
    port = _free_port()
    server = (f"import time, http.server; time.sleep(3); "
              f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()")
    script = tmp_path / "serve.py"
    script.write_text(f"""
import os, sys, time
import typer
from study.app.serve_commands import serve_until_stopped
started = time.monotonic()
try:
    serve_until_stopped([sys.executable, "-c", {server!r}], "http://127.0.0.1:{port}/",
           lambda: print(f"ready after {{time.monotonic() - started:.1f}} s", flush=True), dict(os.environ), "starting")
except typer.Exit as stop:
    raise SystemExit(stop.exit_code)
""")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line.startswith("ready after ") and float(line.split()[2]) >= 3, line
        assert _answers(f"http://127.0.0.1:{port}/")
        group = next(pid for pid in _pids_with_parent(process.pid) if "http.server" in _cmdline(pid))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    _wait(lambda: _group_gone(group) and not _answers(f"http://127.0.0.1:{port}/"), 20,
          "the server still runs after its `serve_until_stopped` got SIGTERM")


def _pids_with_parent(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


@pytest.mark.slow  # optuna-dashboard answers in ~5-15 s on 2 cores
def test_dashboard_serves_the_study_with_its_metric_name_and_stops_with_the_command(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pip install -e '.[dashboard]')")
    storage = _optuna_store(tmp_path)
    port = _free_port()
    process = subprocess.Popen([*STUDY, "dashboard", "--storage", storage, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout.readline().strip() == f"optuna-dashboard at http://127.0.0.1:{port}  (Ctrl-C to stop)"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as response:
            assert json.load(response)["study_summaries"][0]["study_name"] == "dash-study"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/1", timeout=10) as response:
            assert json.load(response)["objective_names"] == ["val_accuracy"]  # its charts name the metric
        server = next(pid for pid in _pids_with_parent(process.pid) if "optuna_dashboard" in _cmdline(pid))
        assert storage not in _cmdline(server)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=30) == 0
    _wait(lambda: _group_gone(server) and not _answers(f"http://127.0.0.1:{port}/"), 20,
          "optuna-dashboard still runs after Ctrl-C of `study dashboard`")
    assert process.stderr.read() == ""  # no request log, no warnings


@pytest.mark.slow  # the MLflow server takes 10-60 s to answer on 2 cores
def test_ui_prints_its_link_once_mlflow_answers_with_no_warnings_request_log_or_job_runner(tracking_store, tmp_path):
    uri = tracking_store
    port = _free_port()
    process = subprocess.Popen([*STUDY, "ui", "--tracking-uri", uri, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = process.stdout.readline()
        assert first.strip() == f"MLflow UI at http://127.0.0.1:{port}  (Ctrl-C to stop)", first
        assert _answers(f"http://127.0.0.1:{port}/health")  # printed once it answers, not before
        assert process.stdout.readline().startswith("  ")  # a link per experiment
        server = next(pid for pid in _pids_with_parent(process.pid) if "mlflow" in _cmdline(pid))
        group = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _in_group(int(pid), server)]
        assert not [pid for pid in group if "huey" in _cmdline(pid)]  # MLflow's job runner is off
        for _ in range(3):
            _answers(f"http://127.0.0.1:{port}/health")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    _wait(lambda: _group_gone(server), 20, "the MLflow server still runs after SIGTERM of `study ui`")
    logged = process.stderr.read()
    assert "Warning" not in logged and "starlette" not in logged, logged
    assert "GET /health" not in logged and "INFO" not in logged, logged  # no access log, no start-up lines


def _in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False
