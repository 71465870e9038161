"""A plain `pip install` can start: shipped sweep names resolve from any folder, `study init` writes a
sweep file that loads, `study --version`; and (slow) the built wheel alone runs the shipped quick sweep."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import study
from study.app.cli import app
from study.app.suite import load_suite
from study.spec.base import ConfigError
from study.spec.shipped import Found, find_suite, find_sweep, shipped_folder, shipped_names
from study.spec.sweep_file import load_sweep
from study.spec.tasks import TASK_NAMES
from tests.conftest import TINY_DIGITS

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def local_quick(path: Path, name: str) -> Path:
    """A local sweep file called quick(.yaml) whose study is `name`, so which file ran is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY_DIGITS.format(name=name, trials=1, epochs=1))
    return path


# --------------------------------------------------------------------------- name resolution


def test_the_shipped_files_are_the_sweeps_folder():
    folder = shipped_folder()
    assert folder is not None and (folder / "quick.yaml").read_bytes() == (REPO / "sweeps/quick.yaml").read_bytes()
    assert shipped_names() == sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml"))
    assert shipped_names(suites=True) == ["notebooks", "offline"]


def test_a_name_is_a_local_file_then_sweeps_then_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = find_sweep("quick")
    assert shipped.path == shipped_folder() / "quick.yaml"
    assert shipped.note == f"quick: the shipped sweep file ({shipped.path})"

    local_quick(tmp_path / "sweeps" / "quick.yaml", "from-sweeps")
    found = find_sweep("quick")
    assert found.path == Path("sweeps/quick.yaml") and load_sweep(found.path).config.name == "from-sweeps"
    assert found.note == "quick: sweeps/quick.yaml, a local file (it hides the shipped sweep file of that name)"

    local_quick(tmp_path / "quick.yaml", "from-here")  # as `study init quick` writes it
    assert find_sweep("quick").path == Path("quick.yaml")
    assert find_sweep("quick.yaml").path == Path("quick.yaml")
    local_quick(tmp_path / "quick", "typed-exactly")
    assert find_sweep("quick").path == Path("quick")


def test_a_path_is_that_file_and_sweeps_paths_fall_back_to_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = local_quick(tmp_path / "elsewhere" / "quick.yaml", "elsewhere")
    assert find_sweep(other) == find_sweep(str(other))
    assert find_sweep(other).path == other and find_sweep(other).note is None  # a path says which file: no note
    found = find_sweep("sweeps/quick.yaml")  # the README's spelling, from a folder without sweeps/
    assert found.path == shipped_folder() / "quick.yaml" and "the shipped sweep file" in found.note
    assert find_suite("sweeps/suites/offline.yaml").path == shipped_folder() / "suites" / "offline.yaml"


def test_run_from_the_checkout_the_shipped_file_is_not_said_to_hide_itself(monkeypatch):
    if shipped_folder().resolve() != (REPO / "sweeps").resolve():
        pytest.skip("installed from a wheel: the checkout's sweeps/ is a copy of the shipped files")
    monkeypatch.chdir(REPO)
    assert find_sweep("quick") == Found(Path("sweeps/quick.yaml"), None)


def test_an_unknown_name_is_one_error_listing_the_shipped_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        find_sweep("nope")
    message = str(info.value)
    assert message.startswith("nope: no such sweep file (nor nope.yaml, nor sweeps/nope.yaml); "
                              "the shipped sweep files are decide_mnist1d, quick, ")
    assert "\n" not in message and ", quick, " in message
    result = invoke("suite", "nope")
    assert result.exit_code == 2
    assert "error: nope: no such suite file (nor nope.yaml, nor sweeps/suites/nope.yaml); the shipped suite " \
           "files are notebooks, offline" in result.output


def test_the_cli_and_the_api_say_when_the_shipped_file_runs(tmp_path, monkeypatch, scripted_training):
    monkeypatch.chdir(tmp_path)
    result = invoke("sweep", "quick", "--trials", "0")  # refused after the file is found, before any store
    assert result.exit_code == 2
    assert f"quick: the shipped sweep file ({shipped_folder() / 'quick.yaml'})" in result.output
    assert "--trials must be at least 1" in result.output and not (tmp_path / "mlruns").exists()

    assert study.load("quick").path == shipped_folder() / "quick.yaml"
    scripted_training()
    done = study.run_sweep("quick", trials=1, storage=f"sqlite:///{tmp_path}/optuna.db",
                           tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert done.counts["COMPLETE"] == 1 and done.notes[0].startswith("quick: the shipped sweep file (")
    local_quick(tmp_path / "sweeps" / "quick.yaml", "local-quick")
    assert study.load("quick").config.name == "local-quick"


def test_a_shipped_suite_reads_the_shipped_sweeps_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = find_suite("offline")
    assert found.path == shipped_folder() / "suites" / "offline.yaml" and "the shipped suite file" in found.note
    suite = load_suite(found.path)
    assert [s.path.resolve() for s in suite.sweeps] == [
        shipped_folder().resolve() / f"suite_{task}.yaml" for task in ("digits", "mnist1d", "sine")]


# --------------------------------------------------------------------------- study init / --version


@pytest.mark.parametrize("task", TASK_NAMES)
def test_init_writes_a_starter_sweep_file_that_loads(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", f"my-{task}", "--task", task)
    assert result.exit_code == 0, result.output
    config = load_sweep(tmp_path / f"my-{task}.yaml").config
    assert config.name == f"my-{task}" and config.task.name == task
    assert config.space["cell"].choices == ["SimpleRNN", "GRU", "LSTM"] and config.scientific == ["cell"]
    text = (tmp_path / f"my-{task}.yaml").read_text()
    assert text.startswith(f"# my-{task}: SimpleRNN vs GRU vs LSTM on {task}")
    assert f"study sweep my-{task}.yaml" in text and f"study sweep my-{task}.yaml" in result.output


def test_init_never_overwrites_and_refuses_bad_input_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("kept\n")
    result = invoke("init", "mine")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: mine.yaml: already exists; study init never overwrites a file "
                                     "(pick another NAME or --out)")
    assert (tmp_path / "mine.yaml").read_text() == "kept\n"

    unknown = invoke("init", "mine", "--task", "cifar")
    assert unknown.exit_code == 2 and unknown.output.startswith("error: --task 'cifar': unknown task; use one of mnist")
    assert "is not a valid study name" in invoke("init", "two words").output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]

    (tmp_path / "sub").mkdir()
    assert invoke("init", "mine", "--out", tmp_path / "sub").exit_code == 0  # a folder: NAME.yaml in it
    assert invoke("init", "mine", "--out", tmp_path / "other.yaml").exit_code == 0
    assert load_sweep(tmp_path / "sub" / "mine.yaml").config.name == load_sweep(tmp_path / "other.yaml").config.name


def test_version_prints_the_installed_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"rnn-study {version('rnn-study')}\n"


# --------------------------------------------------------------------------- the wheel alone


def _venv_with_only_the_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """Build the wheel from a copy of the source, install it into a new venv (no pip of its own) whose
    dependencies come from this venv's site-packages through a .pth line; the checkout is not on
    its path (a plain path line in a .pth adds that folder, without running the .pth files in it,
    so this venv's editable-install finder never loads). Returns the venv's python and the wheel."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("study", "sweeps"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("rnn_study-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return python, wheel


@pytest.mark.slow
def test_the_wheel_alone_runs_the_shipped_quick_sweep_from_an_empty_folder(tmp_path):
    started = time.monotonic()
    python, wheel = _venv_with_only_the_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "study/sweeps/quick.yaml" in names and "study/sweeps/suites/offline.yaml" in names
    assert not any(name.startswith("sweeps/") for name in names)

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"

    def run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
        return subprocess.run([*args], capture_output=True, text=True, cwd=empty, env=env, timeout=timeout)

    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    where = run(str(python), "-c", "import study, study.spec.shipped as s; print(study.__file__, s.shipped_folder())")
    assert where.stdout.split() == [str(site / "study" / "__init__.py"), str(site / "study" / "sweeps")], where.stderr
    path = run(str(python), "-c", "import sys; print(*sys.path, sep=chr(10))").stdout.splitlines()
    assert str(REPO) not in path and str(REPO / "study") not in path

    command = python.with_name("study")
    assert run(str(command), "--version").stdout == f"rnn-study {version('rnn-study')}\n"
    suite = run(str(python), "-c", "from study.app.suite import load_suite; from study.spec.shipped import find_suite; "
                "print(*[s.path.resolve() for s in load_suite(find_suite('offline').path).sweeps])")
    beside = [str(site / "study" / "sweeps" / f"suite_{task}.yaml") for task in ("digits", "mnist1d", "sine")]
    assert suite.stdout.split() == beside, suite.stderr

    done = run(str(command), "sweep", "quick", "--trials", "1")  # 1 trial of 15 epochs on 8x8 digits: ~10 s
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"quick: the shipped sweep file ({site / 'study' / 'sweeps' / 'quick.yaml'})" in done.stdout
    assert "study 'quick': 1 complete (target 1)" in done.stdout
    assert (empty / "mlruns" / "optuna.db").exists() and sorted(p.name for p in empty.iterdir()) == ["mlruns"]
    assert time.monotonic() - started < 90  # 15-17 s measured on 2 shared cores: wheel, venv, imports, one trial
