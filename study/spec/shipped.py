"""Sweep and suite files by name: a local file, else `./sweeps/NAME.yaml`, else the copy shipped in the package.

The shipped files are the project's `sweeps/` folder, installed as the package data `study.sweeps`
(pyproject.toml), so `study sweep quick` works from any folder after a plain `pip install`. A bare
name (`quick`, `quick.yaml`) is looked up in that order: the local file as typed or with `.yaml`
added (as `study init` writes it), `./sweeps/quick.yaml`, the shipped `quick.yaml`. A path
(`sweeps/quick.yaml`, as the README writes commands) is that file, or, when it is missing here and
starts with `sweeps/`, the shipped copy of that name. When the shipped copy runs, or a local file
hides one of the same name, `Found.note` says so in one line. `starter_sweep` writes the file
`study init` starts from, checked by the same loader as every sweep file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import yaml

from study.spec.base import ConfigError
from study.spec.tasks import TASK_NAMES, TaskConfig

PACKAGE = "study.sweeps"
LOCAL = Path("sweeps")  # the shipped folder's layout, relative to the current folder


@dataclass(frozen=True)
class Found:
    """The file to read, and a line for the user when it is the shipped one or hides the shipped one."""

    path: Path
    note: str | None = None


def shipped_folder() -> Path | None:
    """The shipped `sweeps/` folder: `study/sweeps/` in an installed wheel, the checkout's `sweeps/` in
    an editable install or a source tree; None in an install that has neither."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # setuptools' editable install finds a package by its __init__.py, and this folder of YAML files
    # has none: an editable install, like a source tree, reads the checkout's own folder.
    checkout = Path(__file__).resolve().parents[2] / "sweeps"
    return checkout if checkout.is_dir() else None


def shipped_names(suites: bool = False) -> list[str]:
    """The names the shipped sweep files (or suite files) answer to, e.g. `quick`."""
    folder = shipped_folder()
    if folder is None:
        return []
    return sorted(path.stem for path in (folder / "suites" if suites else folder).glob("*.yaml"))


def find_sweep(name: str | Path) -> Found:
    """The sweep file `name` means: a local file, else `sweeps/NAME.yaml`, else the shipped one."""
    return _find(str(name), "sweep file", Path())


def find_suite(name: str | Path) -> Found:
    """The suite file `name` means: a local file, else `sweeps/suites/NAME.yaml`, else the shipped one."""
    return _find(str(name), "suite file", Path("suites"))


def _find(text: str, what: str, under: Path) -> Found:
    path, folder = Path(text), shipped_folder()
    if len(path.parts) == 1 and not path.is_absolute():  # a bare name: quick, quick.yaml
        file_name = text if path.suffix in (".yaml", ".yml") else f"{text}.yaml"
        shipped = folder / under / file_name if folder else None
        candidates = list(dict.fromkeys([path, Path(file_name), LOCAL / under / file_name]))
        for local in candidates:
            if local.exists():
                hides = shipped is not None and shipped.is_file() and local.resolve() != shipped.resolve()
                return Found(local, f"{text}: {local}, a local file (it hides the shipped {what} of that name)"
                             if hides else None)
        tried = " (nor " + ", nor ".join(map(str, candidates[1:])) + ")"
    else:
        if path.exists():
            return Found(path)
        shipped = folder / Path(*path.parts[1:]) if folder and path.parts[0] == str(LOCAL) else None
        tried = ""
    if shipped is not None and shipped.is_file():
        return Found(shipped, f"{text}: the shipped {what} ({shipped})")
    names = shipped_names(suites=what == "suite file")
    raise ConfigError(f"{text}: no such {what}{tried}; the shipped {what}s are "
                      + (", ".join(names) if names else "missing from this install"))


# --------------------------------------------------------------------------- study init

# Per task: epochs, batch size and learning-rate range of the shipped searches on it, and what the
# header says about its data. Every other value is the same for all tasks.
_STARTS = {
    "digits": (15, 64, (1.0e-3, 3.0e-2), "scikit-learn's 8x8 digits read row by row; offline, seconds per trial"),
    "mnist1d": (10, 64, (1.0e-3, 3.0e-2), "MNIST-1D, 40 steps of 1 feature, generated locally; offline"),
    "sine": (20, 32, (1.0e-3, 3.0e-2), "next value of a noisy sine, scored by validation MSE; offline"),
    "mnist": (10, 256, (1.0e-4, 1.0e-2), "MNIST read row by row; downloaded by Keras, or set task.path"),
    "fashion_mnist": (10, 256, (1.0e-4, 1.0e-2), "Fashion-MNIST read row by row; Debian's "
                      "dataset-fashion-mnist, else downloaded by Keras, or set task.path"),
    "imdb": (5, 64, (1.0e-4, 1.0e-2), "IMDB review sentiment; downloaded by Keras, or set task.path"),
}


def starter_sweep(name: str, task: str, file_name: str) -> str:
    """The text of a commented starter sweep file comparing SimpleRNN, GRU and LSTM on `task`,
    validated as any sweep file is; ConfigError for an unknown task or a bad study name."""
    from study.spec.sweep_file import parse_config

    if task not in _STARTS:
        raise ConfigError(f"--task {task!r}: unknown task; use one of {', '.join(TASK_NAMES)}")
    epochs, batch_size, (low, high), about = _STARTS[task]
    embedding = ("  embedding_dim: {value: 32}  # fixed (a text task: words are embedded first)\n"
                 if task == "imdb" else "")
    text = f"""\
# {name}: SimpleRNN vs GRU vs LSTM on {task} ({about}).
# Written by `study init`; the keys are explained in the README's "Writing a sweep file". Run it:
#
#   study sweep {file_name}
#   study report {name}
name: {_scalar(name)}  # the Optuna study and MLflow experiment; a changed definition needs a new name
description: SimpleRNN vs GRU vs LSTM on {task}
task:
  name: {task}  # one of {' | '.join(TASK_NAMES)}
{_task_options(task)}
space:
  # scientific: what is compared. With `budget: equal` (the default) each cell gets the same number
  # of trials and its own sampler with the same seed, so every cell meets the same nuisance draws.
  cell: {{role: scientific, choices: [SimpleRNN, GRU, LSTM]}}
  # nuisance (the default role of a searched entry): tuned for each cell, so none is judged at a
  # bad learning rate; learning rates always on a log scale.
  learning_rate: {{low: {_number(low)}, high: {_number(high)}, log: true}}
  units: {{choices: [32, 64]}}  # equal units are not equal size: the report gives parameter counts
  output_dropout: {{low: 0.0, high: 0.3}}  # a Dropout layer after each recurrent layer
  # fixed: {{value: x}}. A hyperparameter left out keeps its default (README: the hyperparameter table).
  depth: {{value: 1}}
{embedding}trials: 12  # trials that must finish (4 per cell); failed trials are replaced
epochs: {epochs}  # the same for every trial; a trial is scored by its best validation epoch
batch_size: {batch_size}
sampler: random  # tpe | random | qmc | grid; random keeps the cells' draws paired
seed: 0  # seeds the sampler and, with the trial number, each trial's training
replicates: 0  # e.g. 3: then retrain each cell's best with 3 new seeds (mean and spread, not one run)
"""
    parse_config(yaml.safe_load(text), source=file_name)
    return text


def _scalar(value) -> str:
    """A value as YAML writes it: quoted only where a plain word would read as something else (`'2024'`)."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _number(value: float) -> str:
    return f"{value:.1e}".replace("e-0", "e-")  # 1.0e-3: YAML reads a float only with the dot and signed exponent


def _task_options(task: str) -> str:
    """The task's options as commented-out lines with their defaults, from its schema."""
    tasks = get_args(get_args(TaskConfig)[0])  # the union's task models
    model = next(m for m in tasks if get_args(m.model_fields["name"].annotation) == (task,))
    lines = ["  # its options, at their defaults (uncomment one to change it):"]
    for key, field in model.model_fields.items():
        if key != "name":
            about = f"  # {field.description}" if field.description else ""
            lines.append(f"  # {key}: {_scalar(field.default)}{about}")
    return "\n".join(lines)
