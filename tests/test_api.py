"""The public Python API (`import study`): instant and side-effect free on import, and the notebook
path of the README (run_sweep, trials, history, report, doctor) in-process with a scripted training."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

import study
from study.search.sweep import SweepResult
from tests.conftest import unique_name as unique_study_name

SNAPSHOT = """
import json, logging, os, sys, warnings
def state():
    levels = {n: l.level for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)}
    return [levels, dict(os.environ), [str(f) for f in warnings.filters], logging.getLogger().level]
before = state()
import study
names = [study.run_sweep.__name__, study.report.__name__, study.trials.__name__, study.doctor.__name__]
print(json.dumps({"same": before == state(), "names": names, "heavy": [m for m in ("tensorflow", "optuna", "mlflow",
      "pandas") if m in sys.modules]}))
"""


def test_importing_study_changes_no_logger_warning_filter_or_environment_variable():
    done = subprocess.run([sys.executable, "-c", SNAPSHOT], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen == {"same": True, "names": ["run_sweep", "report", "trials", "doctor"], "heavy": []}


def test_the_notebook_path_runs_in_process(scripted_training, stores, tmp_path, request):
    unique_name = unique_study_name(request)
    scripted_training()
    sweep = {"name": unique_name, "task": {"name": "digits"}, "trials": 6, "epochs": 2, "batch_size": 128,
             "sampler": "random", "seed": 0,
             "space": {"cell": {"role": "scientific", "choices": ["SimpleRNN", "GRU", "LSTM"]}, "units": {"value": 8},
                       "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}}}
    one = study.run_sweep(sweep, **stores)
    assert isinstance(one, SweepResult) and one.reached_target and one.counts["COMPLETE"] == 6
    trials = study.trials(unique_name, storage=stores["storage"])
    assert list(trials["trial"]) == list(range(6)) and set(trials["cell"]) == {"SimpleRNN", "GRU", "LSTM"}
    history = study.history(unique_name, tracking_uri=stores["tracking_uri"])
    assert len(history) == 6 * 2 and list(history.groupby("trial")["epoch"].max()) == [2] * 6
    rep = study.report(unique_name, out=tmp_path / "report", **stores)
    assert rep.verdict is not None and rep.verdict.headline
    assert isinstance(rep.tables["best"], pd.DataFrame) and list(rep.tables["best"]["cell"]) == ["SimpleRNN", "GRU", "LSTM"]
    assert rep.figures and all(path.suffix == ".png" and path.exists() for path in rep.figures)
    checked = study.doctor(unique_name, **stores)
    assert checked.trials == 6 and checked.problems == []
    again = study.run_sweep(sweep, trials=6, **stores)  # resuming: nothing left to run, the same type
    assert isinstance(again, SweepResult) and again.started == 0


def test_the_readmes_notebook_section_runs_as_written(scripted_training, tmp_path, monkeypatch):
    """The README's "From Python or a notebook" block, executed as a notebook cell would run it: in
    a fresh folder holding the shipped quick sweep file, default stores (`mlruns/` there)."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    section = readme.split("## From Python or a notebook", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sweeps").mkdir()
    shutil.copy(repo / "sweeps" / "quick.yaml", tmp_path / "sweeps" / "quick.yaml")
    monkeypatch.chdir(tmp_path)
    scripted_training()
    cell: dict = {}
    exec(compile(code, "README.md (From Python or a notebook)", "exec"), cell)
    assert cell["result"].reached_target and len(cell["trials"]) == 24
    assert list(cell["rep"].tables["best"]["cell"]) == ["SimpleRNN", "GRU", "LSTM"] and cell["rep"].figures
    assert (tmp_path / "reports" / "quick" / "report.html").exists()
    assert len(cell["history"]) == 24 * 15  # the quick sweep has no pruner: every trial runs every epoch
    # The block's last line, displayed as Jupyter displays it: the report inline, figures embedded.
    shown = eval(code.strip().splitlines()[-1].split("#")[0], cell)._repr_html_()
    assert cell["rep"].verdict.headline.split(":")[0] in shown and "Best trial per value" in shown
    assert shown.count('<img src="data:image/png;base64,') == len(cell["rep"].figures)


MODULES_SNAPSHOT = """
import json, logging, os, warnings
import mlflow, mlflow.entities, mlflow.tracking, numpy, optuna, pandas, pydantic, rich, sqlalchemy, typer, yaml
def state():
    levels = {n: l.level for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)}
    return [levels, dict(os.environ), [str(f) for f in warnings.filters], logging.getLogger().level]
before = state()
import study.app.cli, study.search.sweep, study.store.doctor, study.store.stores, study.store.tracking
print(json.dumps(before == state()))
"""


def test_importing_the_sweep_and_the_stores_configures_nothing_until_called():
    # Optuna's and MLflow's logging are quieted by the sweep and by our MLflow client when they run
    # (study.search.sweep.quiet_optuna, study.store.tracking.quiet_mlflow), never on import: a
    # notebook that imports them keeps its own logging. The libraries themselves are imported first.
    done = subprocess.run([sys.executable, "-c", MODULES_SNAPSHOT], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) is True
