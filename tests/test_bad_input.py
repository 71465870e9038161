"""Bad input: each kind is refused with one line naming the problem, exit code 2, and nothing written.

The README's "Bad input" table lists every kind with its message. Mistakes inside a sweep file are
tested one by one in test_config.py (`BAD_SWEEPS`, through `load_sweep`) and test_cli.py (the
same files through the CLI); this file covers the rest (stores, data, flags, environment, a
changed study) through the CLI, and checks with hypothesis that any generated sweep file is
either accepted or refused with ConfigError, never a crash.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from study.app.cli import app
from study.spec.base import ConfigError
from study.spec.hyperparameters import HYPERPARAMETERS, ParamSpec
from study.spec.sweep_file import SweepConfig, load_sweep, parse_config
from study.spec.tasks import TASK_NAMES
from tests.conftest import write_mnist_npz

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
runner = CliRunner()

OK = "name: ok\ntask: {name: digits}\ntrials: 1\nepochs: 1\n"
SECRET = "hunter2-Secret"


@dataclass
class Case:
    """One kind of bad input: how to make it in a fresh folder, the command, what the error says."""

    id: str
    args: Callable[[Path], list[str]]
    expected: str
    env: dict[str, str] = field(default_factory=dict)


def _file(text: str, name: str = "sweep.yaml") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_text(text)
        return folder / name

    return make


def _mnist(folder: Path, writer: Callable[[Path], None]) -> Path:
    data = folder / "data.npz"
    writer(data)
    return _file(f"name: m\ntask: {{name: mnist, path: '{data}'}}\ntrials: 1\nepochs: 1\n")(folder)


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "sweep.yaml")  # opening it would block forever
    return folder / "sweep.yaml"


def _dataset_fifo(folder: Path) -> Path:
    os.mkfifo(folder / "data.npz")
    return _file(f"name: m\ntask: {{name: mnist, path: '{folder / 'data.npz'}'}}\ntrials: 1\nepochs: 1\n")(folder)


def _pickle_bomb(path: Path) -> None:
    import io
    import zipfile

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / 'pwned'}",))

    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", stream.getvalue())


def _garbage_pickle(path: Path) -> None:
    import io
    import zipfile

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "|O", "fortran_order": False, "shape": (3,)})
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", stream.getvalue() + b"\xff garbage" + bytes(range(256)))


def _imdb(folder: Path, writer: Callable[[Path], None]) -> Path:
    writer(folder / "imdb.npz")
    return _file(f"name: i\ntask: {{name: imdb, path: '{folder / 'imdb.npz'}'}}\ntrials: 1\nepochs: 1\n")(folder)


# ~500 bytes whose aliases expand to 10**9 list items ("billion laughs") once anything walks them,
# as a repr of the value in an error message did (8.5 GiB).
ALIAS_BOMB = OK + "space:\n  cell:\n    choices:\n    - &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"    - &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9))


def _wrong_shapes(path: Path) -> None:
    arrays = {k: v for k, v in np.load(write_mnist_npz(path)).items()}
    np.savez(path, **{**arrays, "x_train": arrays["x_train"].reshape(len(arrays["x_train"]), 784)})


CASES = [
    Case("unknown-pruner", lambda d: ["sweep", _file(OK + "pruner: fast\n")(d)],
         "pruner.name: 'fast' is not allowed; input should be 'none', 'median'"),
    Case("sweep-file-is-a-directory", lambda d: ["sweep", d], "is a directory, not a sweep file"),
    Case("storage-postgres-typo", lambda d: ["sweep", _file(OK)(d), "--storage", f"postgres://u:{SECRET}@127.0.0.1:1/x"],
         "storage 'postgres://u:***@127.0.0.1:1/x' is not a supported URL; use one starting with sqlite://, postgresql://"),
    Case("storage-unreachable", lambda d: ["sweep", _file(OK)(d), "--storage", f"postgresql://u:{SECRET}@127.0.0.1:1/x"],
         'cannot use storage postgresql://u:***@127.0.0.1:1/x: connection failed: connection to server at "127.0.0.1", '
         "port 1 failed: Connection refused"),
    Case("storage-driver-missing", lambda d: ["sweep", _file(OK)(d), "--storage", f"mysql://u:{SECRET}@127.0.0.1:1/x"],
         "storage mysql://u:***@127.0.0.1:1/x: the database driver is not installed; pip install pymysql"),
    Case("tracking-server-unreachable",
         lambda d: ["sweep", _file(OK)(d), "--tracking-uri", f"http://u:{SECRET}@127.0.0.1:1"],
         "cannot reach the MLflow tracking server at http://u:***@127.0.0.1:1:"),
    Case("tracking-database-unreachable",
         lambda d: ["sweep", _file(OK)(d), "--tracking-uri", f"postgresql://u:{SECRET}@127.0.0.1:1/x"],
         "cannot use tracking URI postgresql://u:***@127.0.0.1:1/x: connection failed"),
    Case("dataset-corrupt", lambda d: ["sweep", _mnist(d, lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"))],
         "data.npz: not a readable Keras-format .npz file"),
    Case("dataset-wrong-shapes", lambda d: ["sweep", _mnist(d, _wrong_shapes)],
         "images must be (n, 28, 28) integers 0..255; found shape (60, 784)"),
    Case("dataset-folder-without-idx-files", lambda d: ["sweep", _mnist(d, lambda p: p.mkdir())],
         "data.npz: missing train-images-idx3-ubyte.gz (or train-images-idx3-ubyte); expected the four MNIST IDX files"),
    Case("jobs-zero", lambda d: ["sweep", _file(OK)(d), "--jobs", "0"], "--jobs must be at least 1 (got 0)"),
    Case("worker-trials-zero", lambda d: ["worker", _file(OK)(d), "--trials", "0"], "--trials must be at least 1 (got 0)"),
    Case("heartbeat-not-a-number", lambda d: ["sweep", _file(OK)(d)],
         "RNN_STUDY_HEARTBEAT_SECONDS='soon': use a whole number of seconds, at least 1",
         env={"RNN_STUDY_HEARTBEAT_SECONDS": "soon"}),
    Case("heartbeat-not-ascii-digits", lambda d: ["sweep", _file(OK)(d)],
         "RNN_STUDY_HEARTBEAT_SECONDS='²': use a whole number of seconds, at least 1",
         env={"RNN_STUDY_HEARTBEAT_SECONDS": "²"}),
    Case("threads-not-a-number", lambda d: ["sweep", _file(OK)(d)],
         "RNN_STUDY_THREADS='abc': use a whole number of CPU threads, at least 1", env={"RNN_STUDY_THREADS": "abc"}),
    Case("sweep-file-not-a-plain-file", lambda d: ["sweep", _fifo(d)],
         "sweep.yaml: is a FIFO (named pipe), not a sweep file; a sweep file is a plain YAML file"),
    Case("sweep-file-is-a-device", lambda d: ["sweep", "/dev/zero"],
         "/dev/zero: is a character device, not a sweep file"),
    Case("sweep-file-too-large", lambda d: ["sweep", _file(OK + "configurations:\n" + "- {cell: GRU}\n" * 90_000)(d)],
         "sweep.yaml: larger than 1024 KiB; a sweep file is short"),
    Case("yaml-alias", lambda d: ["sweep", _file(ALIAS_BOMB)(d)],
         "sweep.yaml: malformed YAML at line 9, column 12: aliases (*a0) are not allowed in sweep files; "
         "write the value out"),
    Case("yaml-nested-too-deeply", lambda d: ["sweep", _file(OK + "extra: " + "[" * 400 + "]" * 400 + "\n")(d)],
         "sweep.yaml: malformed YAML: nested too deeply (a sweep file is a few levels deep)"),
    Case("sweep-file-name-with-markup", lambda d: ["sweep", "nope[/].yaml"], "nope[/].yaml: no such sweep file"),
    Case("storage-in-memory", lambda d: ["sweep", _file(OK)(d), "--storage", "sqlite://"],
         "storage 'sqlite://' is an in-memory database: the study would be lost when the command ends; "
         "use a file, e.g. sqlite:///mlruns/optuna.db"),
    Case("tracking-in-memory", lambda d: ["sweep", _file(OK)(d), "--tracking-uri", "sqlite:///:memory:"],
         "tracking URI 'sqlite:///:memory:' is an in-memory database"),
    Case("dataset-not-a-plain-file", lambda d: ["sweep", _dataset_fifo(d)],
         "data.npz: is a FIFO (named pipe); a dataset is a plain file (or a folder of IDX files)"),
    Case("dataset-unsafe-pickle", lambda d: ["sweep", _imdb(d, _pickle_bomb)],
         "imdb.npz: not a readable Keras-format .npz file (UnpicklingError: refused to load posix.system"),
    Case("model-too-large", lambda d: ["sweep", _file(OK + "space:\n  cell: {value: LSTM}\n  units: {value: 4096}\n"
                                                   "  depth: {low: 1, high: 8}\n")(d)],
         "sweep.yaml: the largest model this space allows has 1,006,936,074 parameters (cell=LSTM units=4096 "
         "depth=8 bidirectional=False dense_units=0), above the limit of 20,000,000"),
    Case("dataset-garbage-pickle", lambda d: ["sweep", _imdb(d, _garbage_pickle)],
         "imdb.npz: not a readable Keras-format .npz file ("),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_one_line_before_anything_is_written(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    result = runner.invoke(app, [str(a) for a in case.args(tmp_path)])
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.output, case.expected)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "pwned").exists()
    assert time.monotonic() - started < 60  # refused, not retried for minutes


def assert_one_line_error(output: str, expected: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert expected in errors[0], output
    assert "Traceback" not in output and SECRET not in output


def test_every_kind_of_bad_input_is_in_the_readme_table():
    table = README.split("## Bad input", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| kind")]
    assert len(rows) >= 20
    for case in CASES:
        assert f"`{case.id}`" in table, case.id
    for id in ("study-name-clash", "read-only-mlruns", "read-only-store-file", "storage-wrong-password",
               "storage-missing-database", "malformed-yaml", "unknown-key",
               "wrong-type", "out-of-range", "empty-choices", "unknown-task", "unknown-cell", "unknown-sampler",
               "sweep-file-missing", "dataset-missing", "trials-zero", "trials-negative"):
        assert f"`{id}`" in table, id


def test_study_name_clash_with_a_changed_space_is_refused_and_the_study_left_as_it_was(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage, tracking = f"sqlite:///{tmp_path}/mlruns/optuna.db", f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    first = _file("name: clash\ntask: {name: digits}\nspace:\n  units: {choices: [4, 8]}\ntrials: 1\nepochs: 1\n",
                  "first.yaml")(tmp_path)
    assert runner.invoke(app, ["sweep", str(first), "--storage", storage, "--tracking-uri", tracking]).exit_code == 0

    changed = _file("name: clash\ntask: {name: digits}\nspace:\n  units: {choices: [4, 16]}\ntrials: 2\nepochs: 1\n",
                    "changed.yaml")(tmp_path)
    result = runner.invoke(app, ["sweep", str(changed), "--storage", storage, "--tracking-uri", tracking])
    assert result.exit_code == 2
    assert_one_line_error(result.output, "study 'clash' in sqlite:///")
    assert "was created from a different sweep definition (changed: space); give the sweep a new `name`" in result.output
    import optuna

    assert len(optuna.load_study(study_name="clash", storage=storage).trials) == 1  # nothing added


def _without_file_permissions() -> list[str] | None:
    """A prefix that runs a command without the power to ignore file permissions, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    # Root keeps every capability; without these three, a read-only folder is read-only for root too.
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.parametrize("what", ["folder", "storage-file", "tracking-file"])
def test_read_only_mlruns_is_refused_with_exit_2(what, tmp_path):
    prefix = _without_file_permissions()
    if prefix is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
    sweep = _file(OK)(tmp_path)
    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    if what == "folder":
        mlruns.chmod(0o555)
    else:
        db = mlruns / ("optuna.db" if what == "storage-file" else "mlflow.db")
        db.touch()
        db.chmod(0o444)
    try:
        done = subprocess.run([*prefix, sys.executable, "-m", "study.app.cli", "sweep", str(sweep)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        contents = sorted(p.name for p in mlruns.iterdir())
    finally:
        mlruns.chmod(0o755)
    assert done.returncode == 2, done.stdout + done.stderr
    expected = {
        "folder": "storage sqlite:///mlruns/optuna.db: the folder mlruns/ is read-only; make it writable, or pass --storage",
        "storage-file": "mlruns/optuna.db is not a writable file; make it writable, or pass --storage",
        "tracking-file": "mlruns/mlflow.db is not a writable file; make it writable, or pass --tracking-uri",
    }[what]
    assert_one_line_error(done.stderr, expected)
    assert contents == ([] if what == "folder" else [db.name])  # nothing written


# The module-scoped PostgreSQL server of the worker tests (127.0.0.1, a password user), started
# again for this module.
from tests.test_workers import postgres  # noqa: E402,F401 - a fixture


@pytest.fixture(scope="module")
def postgres_url(postgres) -> str:  # noqa: F811 - the fixture imported above
    return postgres("bad_input")


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["wrong-password", "no-such-database"])
def test_a_real_postgresql_refuses_bad_credentials_in_one_masked_line(problem, postgres_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    host = rest.rsplit("/", 1)[0]
    bad = (f"postgresql://study:{SECRET}@{host}/bad_input" if problem == "wrong-password"
           else postgres_url.replace("/bad_input", "/missing"))
    result = runner.invoke(app, ["sweep", str(_file(OK)(tmp_path)), "--storage", bad])
    assert result.exit_code == 2, result.output
    expected = ('password authentication failed for user "study"' if problem == "wrong-password"
                else 'database "missing" does not exist')
    assert_one_line_error(result.output, expected)
    assert user.split(":", 1)[1] not in result.output and "study:***@127.0.0.1" in result.output
    assert not (tmp_path / "mlruns").exists()


def test_a_grid_too_large_to_run_is_refused_at_once():
    # In a subprocess with a timeout: a validation that listed the grid's 9e8 points would hang.
    code = ("from study.spec.sweep_file import parse_config, ConfigError\n"
            "try:\n parse_config({'name': 't', 'task': {'name': 'sine'}, 'trials': 1, 'epochs': 1, 'sampler': 'grid',"
            " 'space': {'dropout': {'low': 0.0, 'high': 0.9, 'step': 1e-9}}})\n"
            "except ConfigError as err: print(err)\n"
            "else: print('accepted')\n")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=20, check=True,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("validating a grid of 9e8 points did not finish in 20 s")
    assert "space.dropout: a step of 1e-09 gives 900,000,001 grid values (at most 100,000)" in done.stdout


# --------------------------------------------------------------------------- property test

JUNK_KEYS = ["", "nmae", "epoch", "Trials", "units", "space", "name", "cells", "lr", "1", "value"]
WORDS = ["LSTM", "GRU", "SimpleRNN", "Transformer", "tanh", "swish", "adam", "sgd", "grid", "tpe", "random", "qmc",
         "cmaes", "median", "hyperband", "fast", "scientific", "nuisance", "fixed", "main", "val_accuracy",
         "val_loss", "val_mae", "maximize", "minimize", "1e-3", "0.5", "-1", "yes", "no", "auto", "", " ", "é", "..",
         "sqlite:///x.db", "postgresql://u:p@h/db", "mlruns", "file:///tmp/x", "http://127.0.0.1:5000", *TASK_NAMES]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 5000), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-2.0, 2.0), st.sampled_from(WORDS),
    st.text(max_size=10),
)
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(JUNK_KEYS + WORDS), inner,
                                                                           max_size=4),
    max_leaves=8,
)


def mostly(valid, invalid):
    """`valid` four times in five, else `invalid`: most generated files are nearly right."""
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda ok: valid if ok else invalid)


@st.composite
def valid_specs(draw, name: str):
    """A space entry that suits hyperparameter `name` (it may still clash with the rest of the file)."""
    dim = HYPERPARAMETERS[name]
    role = draw(st.sampled_from([None, None, "scientific", "nuisance"]))
    if dim.kind in ("categorical", "bool"):
        values = list(dim.choices) if dim.kind == "categorical" else [True, False]
        if draw(st.booleans()):
            return {"value": draw(st.sampled_from(values))}
        spec = {"choices": draw(st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True))}
    elif dim.kind == "int":
        low = draw(st.integers(int(dim.minimum), int(dim.minimum) + 64))
        spec = draw(st.sampled_from([
            {"low": low, "high": low + draw(st.integers(0, 64))},
            {"low": low, "high": low + 64, "step": draw(st.integers(1, 32))},
            {"choices": draw(st.lists(st.integers(low, low + 64), min_size=1, max_size=3, unique=True))},
            {"value": low},
        ]))
    else:
        low = draw(st.floats(max(dim.minimum, 1e-4), 0.4))
        spec = draw(st.sampled_from([
            {"low": low, "high": low + 0.5},
            {"low": low, "high": low + 0.5, "log": True},
            {"low": low, "high": low + 0.5, "step": 0.1},
            {"choices": [low, low + 0.1]},
            {"value": low},
        ]))
    if role and "value" not in spec:
        spec["role"] = role
    return spec


@st.composite
def broken_specs(draw):
    """A space entry with wrong, missing or unknown keys and values of any type."""
    keys = draw(st.lists(st.sampled_from([*ParamSpec.model_fields, "default", "stepp"]), max_size=5, unique=True))
    plausible = {
        "role": st.sampled_from(["scientific", "nuisance", "fixed", "main", None]),
        "choices": st.lists(scalars, max_size=4) | anything,
        "low": st.integers(-5, 300) | st.floats(-1, 2) | scalars,
        "high": st.integers(-5, 300) | st.floats(-1, 2) | scalars,
        "step": st.integers(-2, 64) | st.sampled_from([0.1, 0.25, 0.5, 1e-3]) | scalars,
    }
    return {key: draw(plausible.get(key, scalars)) for key in keys}


TASK_OPTIONS = {
    "mnist": {"layout": st.sampled_from(["rows", "pixels", "single_step"]), "binarize": st.booleans(),
              "train_size": st.integers(10, 100), "val_fraction": st.floats(0.05, 0.5)},
    "imdb": {"num_words": st.integers(10, 1000), "maxlen": st.integers(1, 200), "val_fraction": st.floats(0.05, 0.5)},
    "sine": {"length": st.integers(50, 2000), "window": st.integers(1, 20), "noise": st.floats(0, 1),
             "t_max": st.floats(0.1, 100)},
    "digits": {"test_fraction": st.floats(0.05, 0.5), "split_seed": st.integers(0, 99)},
    "mnist1d": {"num_samples": st.integers(100, 5000), "data_seed": st.integers(0, 99)},
}
TASK_OPTIONS["fashion_mnist"] = TASK_OPTIONS["mnist"]


@st.composite
def valid_tasks(draw):
    name = draw(st.sampled_from(TASK_NAMES))
    options = TASK_OPTIONS[name]
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=2, unique=True))
    return {"name": name, **{option: draw(options[option]) for option in chosen}}


@st.composite
def broken_tasks(draw):
    task = draw(valid_tasks())
    option = draw(st.sampled_from(["layot", "num_words", "window", "path", "name", "split_seed", "val_fraction"]))
    task[option] = draw(scalars)
    return draw(st.just(task) | anything)


TOP_LEVEL = {
    "description": st.text(max_size=20),
    "batch_size": st.integers(1, 512),
    "sampler": st.sampled_from(["tpe", "random", "qmc", "grid"]),
    "budget": st.sampled_from(["equal", "shared"]),
    "seed": st.integers(0, 2**31 - 1),
    "pruner": st.sampled_from(["none", "median", "hyperband", "successive_halving"])
    | st.fixed_dictionaries({"name": st.sampled_from(["median", "percentile"])},
                            optional={"warmup_epochs": st.integers(0, 3), "percentile": st.floats(1, 99)}),
    "objective": st.fixed_dictionaries({}, optional={"metric": st.sampled_from(["val_accuracy", "val_loss", "val_mae"]),
                                                      "direction": st.sampled_from(["maximize", "minimize"])}),
    "max_consecutive_failures": st.integers(1, 10),
    "jit_compile": st.sampled_from(["auto", True, False]),
    "threads": st.integers(1, 8),
    "log_models": st.booleans(),
    "param_budget": st.integers(10, 10**6),
    "replicates": st.integers(0, 3),
    "storage": st.sampled_from(["sqlite:///x.db", "postgresql://u:p@h/db", "mysql://h/db"]),
    "tracking_uri": st.sampled_from(["sqlite:///m.db", "http://127.0.0.1:5000"]),
    "configurations": st.lists(st.dictionaries(st.sampled_from(sorted(HYPERPARAMETERS)), scalars, max_size=2),
                               max_size=2),
}


@st.composite
def sweep_dicts(draw):
    """A sweep file's content: mostly right, with wrong keys, values and types mixed in."""
    data = {
        "name": draw(mostly(st.sampled_from(["t", "my-study", "ok.1"]), st.sampled_from(["a b", "x/y", ""]) | scalars)),
        "task": draw(mostly(valid_tasks(), broken_tasks())),
        "trials": draw(mostly(st.integers(1, 30), scalars)),
        "epochs": draw(mostly(st.integers(1, 5), scalars)),
    }
    names = draw(st.lists(st.sampled_from([*HYPERPARAMETERS, "num_units"]), max_size=4, unique=True))
    data["space"] = {
        name: draw(mostly(valid_specs(name), broken_specs() | anything) if name in HYPERPARAMETERS else broken_specs())
        for name in names
    }
    for key in draw(st.lists(st.sampled_from(sorted(TOP_LEVEL)), max_size=3, unique=True)):
        data[key] = draw(mostly(TOP_LEVEL[key], anything))
    for key in draw(mostly(st.just([]), st.lists(st.sampled_from(JUNK_KEYS), min_size=1, max_size=2, unique=True))):
        data[key] = draw(anything)
    for key in draw(mostly(st.just([]), st.lists(st.sampled_from(["name", "task", "trials", "epochs", "space"]),
                                                 min_size=1, max_size=1))):
        data.pop(key)  # a required key missing
    return data


def _huge_grid(data) -> bool:
    """A grid sweep whose range/step would have millions of points (see the xfail test above)."""
    if not isinstance(data, dict) or data.get("sampler") != "grid" or not isinstance(data.get("space"), dict):
        return False
    for spec in data["space"].values():
        if isinstance(spec, dict):
            numbers = [spec.get(k) for k in ("low", "high", "step")]
            if all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
                low, high, step = (float(n) for n in numbers)
                if all(map(math.isfinite, (low, high, step))) and step > 0 and (high - low) / step > 1e5:
                    return True
    return False


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_dicts())
def test_generated_sweeps_are_accepted_or_refused_with_config_error(data):
    assume(not _huge_grid(data))
    try:
        config = parse_config(data, source="generated.yaml")
    except ConfigError as err:
        assert str(err).strip(), "a refusal says why"
        assert all(line.startswith("generated.yaml: ") for line in str(err).splitlines())
        return
    assert isinstance(config, SweepConfig)
    config.study_fingerprint()  # an accepted config is usable
    config.fixed_params()


@settings(max_examples=150, deadline=None, database=None)
@given(st.one_of(sweep_dicts().map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 st.text(max_size=200), st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_generated_sweep_files_are_accepted_or_refused_with_config_error(tmp_path_factory, text):
    assume(not _huge_grid(yaml.safe_load(text) if _yaml_ok(text) else None))
    path = tmp_path_factory.mktemp("generated") / "sweep.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_sweep(path)
    except ConfigError as err:
        assert str(err).startswith(f"{path}: ")


def _yaml_ok(text: str) -> bool:
    try:
        yaml.safe_load(text)
        return True
    except yaml.YAMLError:
        return False


def test_mlflow_never_prints_its_view_run_lines_with_the_tracking_password(monkeypatch, capfd):
    # On a tracking server MLflow writes "View run NAME at: http://user:pw@host/..." as each run ends.
    from types import SimpleNamespace

    from study.store.tracking import client_for

    from study.store import tracking

    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")
    url = f"http://study:{SECRET}@127.0.0.1:1"
    monkeypatch.setattr(tracking, "_SERVERS_ANSWERED", {url})  # no server here: only the printing is tested
    client = client_for(url)
    service = client._tracking_client
    run = SimpleNamespace(info=SimpleNamespace(experiment_id="1", run_name="trial-0000"), data=SimpleNamespace(tags={}))
    monkeypatch.setattr(service.store, "get_run", lambda run_id: run)
    service._log_url("0" * 32)  # what MLflow calls when a run ends (set_terminated)
    printed = capfd.readouterr()
    assert SECRET not in printed.out + printed.err and "View run" not in printed.out


def test_the_model_size_limit_can_be_raised(tmp_path, monkeypatch):
    import study.search.checks
    from study.train.data import load_task

    path = tmp_path / "big.yaml"
    path.write_text(OK + "space:\n  cell: {value: LSTM}\n  units: {value: 4096}\n  depth: {value: 8}\n")
    config = load_sweep(path).config
    with pytest.raises(ConfigError, match="RNN_STUDY_MAX_PARAMS=1006936074"):
        study.search.checks.check_model_size(config, load_task(config.task), str(path))
    monkeypatch.setenv("RNN_STUDY_MAX_PARAMS", "1_100_000_000")
    study.search.checks.check_model_size(config, load_task(config.task), str(path))
