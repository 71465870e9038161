"""Sweep-file validation: every file in `sweeps/` loads, and bad files are refused with a useful message.

`BAD_SWEEPS` lists one small sweep file per kind of mistake with a substring its error must contain
(the field path and a hint of what is allowed); other tests import it to check that the CLI refuses
the same files.
Nothing here imports TensorFlow: the whole module runs in about a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from study.spec.base import ConfigError
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import load_sweep, parse_config

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml"))

# A valid minimal sweep on the synthetic sine task; most bad cases append one mistake to it.
BASE = "name: t\ntask: {name: sine}\ntrials: 1\nepochs: 1\n"
MNIST = "name: t\ntask: {name: mnist}\ntrials: 1\nepochs: 1\n"


def _bad(yaml_text: str, expected: str, id: str):
    return pytest.param(yaml_text, expected, id=id)


BAD_SWEEPS = [
    # --- the file itself
    _bad("name: t\ntask: {name: sine\ntrials: 1\n", "malformed YAML at line 3", "malformed-yaml"),
    _bad("name: t\n\ttask: {name: sine}\n", "malformed YAML at line 2", "yaml-tab-indent"),
    _bad("- name: t\n- trials: 1\n", "must be a mapping of keys (name, task, space, ...), got list", "top-level-list"),
    _bad("", "the file is empty", "empty-file"),
    _bad("# only a comment\n", "the file is empty", "comment-only-file"),
    # Issue 24: PyYAML's own two lines ended `in "<unicode string>", position 8`, with no line.
    _bad("name: t\x00\ntask: {name: sine}\ntrials: 1\nepochs: 1\n",
         "malformed YAML at line 1, column 8: a NUL byte (U+0000) is not allowed in YAML text", "nul-byte"),
    _bad(BASE + "description: 'a \x07 bell'\n",
         "malformed YAML at line 5, column 17: the control character U+0007 is not allowed", "control-character"),
    _bad("".join(c + "\x00" for c in BASE), "not UTF-8 text (every other byte is NUL: it looks like UTF-16",
         "utf16-without-bom"),
    # Issue 24: a pruner that could never stop a trial before its last epoch.
    _bad(BASE + "pruner: {name: median, warmup_epochs: 50}\n",
         "pruner.warmup_epochs: the median pruner can first stop a trial after epoch 50, and every trial ends "
         "after epoch 1 (epochs: 1), so it would never stop one", "pruner-warmup-past-the-epochs"),
    _bad(BASE + "pruner: hyperband\n", "pruner: the hyperband pruner can first stop a trial after epoch 1",
         "pruner-with-one-epoch"),
    # --- top-level keys and types
    _bad(BASE + "epoch: 3\n", "unknown key 'epoch'; allowed keys: name, description, task", "unknown-top-level-key"),
    _bad("task: {name: sine}\ntrials: 1\nepochs: 1\n", "name: required field is missing", "missing-name"),
    _bad("name: t\ntask: {name: sine}\nepochs: 1\n", "trials: required field is missing", "missing-trials"),
    _bad("name: t\ntask: {name: sine}\ntrials: 1\n", "epochs: required field is missing", "missing-epochs"),
    _bad("name: t\ntask: {name: sine}\ntrials: many\nepochs: 1\n", "trials: Input should be a valid integer", "trials-not-a-number"),
    _bad("name: t\ntask: {name: sine}\ntrials: 2.5\nepochs: 1\n", "trials: Input should be a valid integer", "trials-fractional"),
    _bad("name: t\ntask: {name: sine}\ntrials: 0\nepochs: 1\n", "trials: Input should be greater than or equal to 1", "trials-zero"),
    _bad("name: t\ntask: {name: sine}\ntrials: 1\nepochs: -3\n", "epochs: Input should be greater than or equal to 1", "epochs-negative"),
    _bad(BASE + "batch_size: 0\n", "batch_size: Input should be greater than or equal to 1", "batch-size-zero"),
    _bad(BASE + "seed: -1\n", "seed: Input should be greater than or equal to 0", "seed-negative"),
    _bad(BASE + "max_consecutive_failures: 0\n", "max_consecutive_failures: Input should be greater than or equal to 1",
         "max-failures-zero"),
    _bad(BASE + "description: [a, b]\n", "description: Input should be a valid string", "description-not-text"),
    _bad("name: my study\ntask: {name: sine}\ntrials: 1\nepochs: 1\n", "is not a valid study name; use letters, digits",
         "name-with-space"),
    _bad("name: sweeps/a\ntask: {name: sine}\ntrials: 1\nepochs: 1\n", "is not a valid study name; use letters, digits",
         "name-with-slash"),
    _bad(BASE + "sampler: cmaes\n", "sampler: 'cmaes' is not allowed; input should be 'tpe', 'random', 'qmc' or 'grid'",
         "unknown-sampler"),
    _bad(BASE + "storage: mlruns/optuna.db\n",
         "storage: storage 'mlruns/optuna.db' is not a supported URL; use one starting with sqlite://",
         "storage-plain-path"),
    _bad(BASE + "storage: 'file:///tmp/optuna'\n", "storage: storage 'file:///tmp/optuna' is not a supported URL",
         "storage-file-scheme"),
    _bad(BASE + "tracking_uri: mlruns\n",
         "tracking_uri: tracking_uri 'mlruns' is not a supported URL; use one starting with sqlite://",
         "tracking-uri-plain-path"),
    # --- task
    _bad("name: t\ntrials: 1\nepochs: 1\n", "task: required field is missing", "missing-task"),
    _bad("name: t\ntask: {layout: rows}\ntrials: 1\nepochs: 1\n", "task: `name` is missing; allowed tasks: mnist",
         "missing-task-name"),
    _bad("name: t\ntask: {name: cifar10}\ntrials: 1\nepochs: 1\n", "task: unknown task 'cifar10'; allowed: mnist",
         "unknown-task"),
    _bad("name: t\ntask: mnist\ntrials: 1\nepochs: 1\n", "task: must be a mapping with a `name` (one of mnist", "task-not-a-mapping"),
    _bad("name: t\ntask: {name: mnist, layot: rows}\ntrials: 1\nepochs: 1\n",
         "task: unknown key 'layot'; allowed keys: split_seed, layout", "unknown-task-option"),
    _bad("name: t\ntask: {name: sine, num_words: 100}\ntrials: 1\nepochs: 1\n",
         "task: unknown key 'num_words'; allowed keys:", "option-of-another-task"),
    _bad("name: t\ntask: {name: mnist, layout: columns}\ntrials: 1\nepochs: 1\n",
         "task.layout: 'columns' is not allowed; input should be 'rows', 'pixels' or 'single_step'", "unknown-layout"),
    _bad("name: t\ntask: {name: mnist, val_fraction: 1.0}\ntrials: 1\nepochs: 1\n",
         "task.val_fraction: Input should be less than 1", "val-fraction-one"),
    _bad("name: t\ntask: {name: imdb, maxlen: 0}\ntrials: 1\nepochs: 1\n",
         "task.maxlen: Input should be greater than or equal to 1", "imdb-maxlen-zero"),
    _bad("name: t\ntask: {name: sine, length: 50, window: 40}\ntrials: 1\nepochs: 1\n",
         "task: length 50 leaves no training windows of size 40", "sine-too-short-for-window"),
    _bad("name: t\ntask: {name: sine, split_seed: abc}\ntrials: 1\nepochs: 1\n",
         "task.split_seed: Input should be a valid integer", "split-seed-not-a-number"),
    # --- search space
    _bad(BASE + "space: [units, cell]\n", "space: Input should be a valid dictionary", "space-not-a-mapping"),
    _bad(BASE + "space:\n  units: 32\n", "space.units: Input should be a valid dictionary", "space-entry-bare-value"),
    _bad(BASE + "space:\n  num_units: {value: 32}\n", "space.num_units: unknown hyperparameter; allowed: cell, units",
         "unknown-hyperparameter"),
    _bad(BASE + "space:\n  units: {value: 32, default: 64}\n",
         "space.units: unknown key 'default'; allowed keys: role, value, choices, low, high, log, step",
         "unknown-param-spec-key"),
    _bad(BASE + "space:\n  units: {role: main, choices: [32, 64]}\n",
         "space.units.role: 'main' is not allowed; input should be 'scientific', 'nuisance' or 'fixed'", "unknown-role"),
    _bad(BASE + "space:\n  cell: {choices: [LSTM, Transformer]}\n",
         "space.cell.choices.1: 'Transformer' is not allowed; use one of SimpleRNN, GRU, LSTM", "unknown-cell"),
    _bad(BASE + "space:\n  activation: {value: swish}\n", "space.activation.value: 'swish' is not allowed; use one of tanh",
         "unknown-activation"),
    _bad(BASE + "space:\n  optimizer: {value: adagrad}\n", "space.optimizer.value: 'adagrad' is not allowed; use one of adam",
         "unknown-optimizer"),
    _bad(BASE + "space:\n  units: {choices: []}\n", "space.units.choices: empty; give at least one value (an integer in",
         "empty-choices"),
    _bad(BASE + "space:\n  units: {choices: [32, 32]}\n", "space.units.choices: values repeat", "repeated-choices"),
    _bad(BASE + "space:\n  units: {low: 128, high: 32}\n", "space.units: low (128) is greater than high (32)",
         "low-above-high"),
    _bad(BASE + "space:\n  units: {low: 32}\n", "space.units: a range needs both `low` and `high`", "range-without-high"),
    _bad(BASE + "space:\n  units: {role: fixed}\n", "space.units: give `value` (fixed), `choices`, or `low` and `high`",
         "spec-without-value"),
    _bad(BASE + "space:\n  output_dropout: {low: 0.0, high: 0.5, log: true}\n",
         "space.output_dropout: a log scale needs low > 0",
         "log-scale-low-zero"),
    _bad(BASE + "space:\n  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true, step: 1.0e-4}\n",
         "space.learning_rate: `log` and `step` cannot be combined", "log-with-step"),
    _bad(BASE + "space:\n  units: {low: 1, high: 8, step: -1}\n", "space.units.step: must be a positive integer",
         "negative-step"),
    _bad(BASE + "space:\n  units: {low: 1, high: 8, step: 0.5}\n", "space.units.step: must be a positive integer",
         "fractional-step-on-integer"),
    _bad(BASE + "space:\n  units: {choices: [32, 64], step: 32}\n", "space.units: `choices` cannot be combined with step",
         "choices-with-step"),
    _bad(BASE + "space:\n  output_dropout: {value: 1.5}\n",
         "space.output_dropout.value: 1.5 is out of range; use a number in [0.0, 1.0)",
         "dropout-out-of-range"),
    _bad(BASE + "space:\n  output_dropout: {low: 0.0, high: 1.0}\n",
         "space.output_dropout.high: 1.0 is out of range; use a number in [0.0, 1.0)", "range-bound-out-of-range"),
    _bad(BASE + "space:\n  learning_rate: {value: 0}\n", "space.learning_rate.value: 0 is out of range; use a number in (0.0",
         "learning-rate-zero"),
    _bad(BASE + "space:\n  learning_rate: {value: fast}\n",
         "space.learning_rate.value: 'fast' is not allowed; use a number in", "learning-rate-not-a-number"),
    _bad(BASE + "space:\n  learning_rate: {value: .nan}\n", "space.learning_rate.value: nan is not allowed; use a number",
         "learning-rate-nan"),
    _bad(BASE + "space:\n  units: {value: 32.5}\n", "space.units.value: 32.5 is not allowed; use an integer in [1, 4096]",
         "integer-units-fractional"),
    _bad(BASE + "space:\n  units: {choices: [32, 64.5]}\n",
         "space.units.choices.1: 64.5 is not allowed; use an integer in [1, 4096]", "integer-choice-fractional"),
    _bad(BASE + "space:\n  bidirectional: {value: 'yes'}\n",
         "space.bidirectional.value: 'yes' is not allowed; use true or false", "bool-given-as-yes"),
    _bad(BASE + "space:\n  bidirectional: {value: 1}\n", "space.bidirectional.value: 1 is not allowed; use true or false",
         "bool-given-as-1"),
    _bad(BASE + "space:\n  cell: {role: fixed, choices: [LSTM, GRU]}\n",
         "space.cell: role fixed takes a single `value`, not choices or a range", "role-fixed-with-choices"),
    _bad(BASE + "space:\n  cell: {role: scientific, value: LSTM}\n",
         "space.cell: role scientific needs `choices` or `low`/`high`, not a single `value`", "role-scientific-with-value"),
    _bad(BASE + "space:\n  units: {value: 32, choices: [32, 64]}\n",
         "space.units: `value` cannot be combined with choices or a range", "value-and-choices"),
    _bad(BASE + "space:\n  cell: {low: 1, high: 3}\n",
         "space.cell: cell is categorical; give `choices` (one of SimpleRNN, GRU, LSTM), not a range",
         "categorical-with-range"),
    _bad(BASE + "space:\n  bidirectional: {low: 0, high: 1}\n",
         "space.bidirectional: bidirectional is categorical; give `choices` (true or false)", "bool-with-range"),
    _bad(BASE + "space:\n  embedding_dim: {value: 64}\n",
         "space.embedding_dim: only text tasks (imdb) have an embedding; task is sine", "embedding-on-non-text-task"),
    _bad(BASE + "sampler: grid\nspace:\n  output_dropout: {low: 0.0, high: 0.5}\n",
         "space.output_dropout: the grid sampler needs `choices` or a `step`, not an open range", "grid-with-open-range"),
    # --- dropout names (issue 17): the old ones are refused, input dropout is not searched on 1 feature
    _bad(BASE + "space:\n  dropout: {low: 0.0, high: 0.5}\n",
         "space.dropout: ambiguous name, no longer accepted; use output_dropout for a Dropout layer", "old-name-dropout"),
    _bad(BASE + "space:\n  head_dropout: {value: 0.2}\n",
         "space.head_dropout: renamed; it was a Dropout after the recurrent stack and after the dense layer: "
         "use output_dropout (after each recurrent layer) and dense_dropout", "old-name-head-dropout"),
    _bad(BASE + "space:\n  input_dropout: {low: 0.0, high: 0.5}\n",
         "space.input_dropout: task sine feeds one feature per time step", "input-dropout-searched-on-one-feature"),
    _bad(BASE + "space:\n  dense_dropout: {value: 0.2}\n", "space.dense_dropout: there is no dense layer (dense_units is 0)",
         "dense-dropout-without-dense-layer"),
    # --- objective
    _bad(BASE + "objective: {metric: val_accuracy}\n",
         "objective.metric: val_accuracy is not reported by task sine; allowed: val_loss, val_mae",
         "metric-not-reported-by-task"),
    _bad(MNIST + "objective: {metric: val_mae}\n", "objective.metric: val_mae is not reported by task mnist; allowed:",
         "regression-metric-on-classifier"),
    _bad(BASE + "objective: {metric: val_f1}\n",
         "objective.metric: 'val_f1' is not allowed; input should be 'val_accuracy', 'val_loss' or 'val_mae'",
         "unknown-metric"),
    _bad(BASE + "objective: {metric: val_loss, direction: maximize}\n",
         "objective.direction: val_loss must be minimized, not maximized", "wrong-direction"),
    _bad(MNIST + "objective: {direction: minimize}\n", "objective.direction: val_accuracy must be maximized",
         "wrong-direction-default-metric"),
    _bad(BASE + "objective: {direction: up}\n",
         "objective.direction: 'up' is not allowed; input should be 'maximize' or 'minimize'", "unknown-direction"),
    # --- configurations
    _bad(BASE + "space:\n  cell: {choices: [LSTM, GRU]}\nconfigurations: {cell: GRU}\n",
         "configurations: Input should be a valid list", "configurations-not-a-list"),
    _bad(BASE + "space:\n  cell: {choices: [LSTM, GRU]}\nconfigurations: [GRU]\n",
         "configurations.0: Input should be a valid dictionary", "configuration-not-a-mapping"),
    _bad(BASE + "space:\n  cell: {choices: [LSTM, GRU]}\n  units: {value: 32}\nconfigurations:\n  - {cell: GRU, units: 64}\n",
         "configurations.0.units: not a searched hyperparameter of this space; searched: cell",
         "configuration-names-fixed-key"),
    _bad(BASE + "configurations:\n  - {depth: 2}\n",
         "configurations.0.depth: not a searched hyperparameter of this space; searched: none",
         "configuration-without-space"),
    _bad(BASE + "space:\n  cell: {choices: [LSTM, GRU]}\nconfigurations:\n  - {cell: GRU}\n  - {cell: SimpleRNN}\n",
         "configurations.1.cell: 'SimpleRNN' lies outside space.cell", "configuration-outside-choices"),
    _bad(BASE + "space:\n  units: {low: 16, high: 64}\nconfigurations:\n  - {units: 128}\n",
         "configurations.0.units: 128 lies outside space.units", "configuration-outside-range"),
    _bad(BASE + "space:\n  units: {low: 16, high: 64}\nconfigurations:\n  - {units: 32.5}\n",
         "configurations.0.units: 32.5 is not allowed; use an integer", "configuration-wrong-type"),
    _bad(BASE + "param_budget: 5000\nspace:\n  units: {choices: [32, 64]}\n",
         "space.units: with `param_budget` the units of each trial are chosen", "param-budget-with-units"),
    _bad(BASE + "space:\n  cell: {role: scientific, choices: [GRU, LSTM]}\n  units: {role: scientific, low: 8, high: 64}\n",
         "space.units: equal budgets need `choices`", "equal-budget-open-range"),
    # --- gaps found in review, now refused
    _bad("name: t\ntask: {name: sine}\ntrials: true\nepochs: 1\n", "trials:", "trials-given-as-bool"),
    _bad("name: t\ntask: {name: mnist, binarize: 'yes'}\ntrials: 1\nepochs: 1\n", "task.binarize:",
         "task-bool-given-as-yes"),
    _bad(BASE + "space:\n  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: 'yes'}\n", "space.learning_rate.log",
         "log-given-as-yes"),
    _bad("name: a\nname: b\ntask: {name: sine}\ntrials: 1\nepochs: 1\n", "name", "duplicate-key"),
    _bad("name: t\ntask: {name: sine, t_max: .inf}\ntrials: 1\nepochs: 1\n", "task.t_max", "sine-t-max-infinite"),
    _bad("name: t\ntask: {name: sine}\ntrials: 5\nepochs: 1\nsampler: grid\nspace:\n  cell: {choices: [LSTM, GRU]}\n",
         "trials", "grid-trials-above-grid-size"),
    _bad(BASE + "space:\n  cell: {choices: [LSTM, GRU]}\nconfigurations:\n  - {cell: LSTM}\n  - {cell: GRU}\n",
         "configurations", "more-configurations-than-trials"),
    _bad("name: t\ntask: {name: sine}\ntrials: 3\nepochs: 1\nspace:\n  units: {low: 16, high: 64, step: 16}\n"
         "configurations:\n  - {units: 20}\n",
         "configurations.0.units", "configuration-off-step"),
]



def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the project's sweep files


def test_sweeps_folder_has_files():
    assert SWEEP_FILES, "sweeps/*.yaml is empty"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.name for p in SWEEP_FILES])
def test_sweep_file_validates(path: Path):
    config = load_sweep(path).config
    if config.sampler == "grid":
        assert config.trials <= config.grid_size(), "a grid study cannot run more distinct trials than its grid"
    assert len(config.configurations) <= config.trials, "configurations beyond `trials` would never run"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.name for p in SWEEP_FILES])
def test_sweep_file_header_names_its_command(path: Path):
    text = path.read_text()
    assert text.startswith("#"), "a sweep file opens with a comment saying what it does"
    assert f"study sweep sweeps/{path.name}" in text, "the header gives the command that runs the file"


def test_sweep_names_are_unique():
    names = [load_sweep(path).config.name for path in SWEEP_FILES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


# --------------------------------------------------------------------------- bad files


def _check_refused(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = _write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert expected in message
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), f"every line names the file: {line!r}"


@pytest.mark.parametrize(("yaml_text", "expected"), BAD_SWEEPS)
def test_bad_sweep_is_refused(tmp_path: Path, yaml_text: str, expected: str):
    _check_refused(tmp_path, yaml_text, expected)


def test_bad_sweep_ids_are_unique():
    ids = [param.id for param in BAD_SWEEPS]
    assert len(ids) == len(set(ids))
    assert len(BAD_SWEEPS) >= 20


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="no such sweep file") as info:
        load_sweep(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a directory") as info:
        load_sweep(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_file_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00name: t\n")
    with pytest.raises(ConfigError, match="not UTF-8 text \\(it starts with a UTF-16 byte-order mark\\)") as info:
        load_sweep(path)
    assert str(path) in str(info.value)
    path.write_bytes("name: t\ndescription: caf\xe9\n".encode("latin-1"))  # said where since issue 24
    with pytest.raises(ConfigError, match="not UTF-8 text: byte 0xe9 at line 2, column 17 is not valid UTF-8"):
        load_sweep(path)


def test_parse_config_names_its_source():
    with pytest.raises(ConfigError, match=r"^--set: trials: Input should be greater than or equal to 1"):
        parse_config({"name": "t", "task": {"name": "sine"}, "trials": 0, "epochs": 1}, source="--set")


# --------------------------------------------------------------------------- good files


def _load(tmp_path: Path, text: str, name: str = "good.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_sweep(path).config


def test_defaults_are_resolved(tmp_path: Path):
    config = _load(tmp_path, BASE)
    non_text = {name: dim.default for name, dim in HYPERPARAMETERS.items() if not dim.text_only}
    assert config.fixed_params() == non_text
    assert config.batch_size == 64 and config.sampler == "tpe" and config.seed == 0
    assert (config.objective.metric, config.objective.direction) == ("val_loss", "minimize")
    assert config.task.window == 10 and config.task.val_fraction == 0.2

    mnist = _load(tmp_path, MNIST, "mnist.yaml")
    assert (mnist.objective.metric, mnist.objective.direction) == ("val_accuracy", "maximize")
    assert mnist.task.layout == "rows"


def test_fixed_params_hold_every_unsearched_hyperparameter(tmp_path: Path):
    config = _load(tmp_path, "name: t\ntask: {name: imdb}\ntrials: 4\nepochs: 1\nspace:\n"
                             "  cell: {role: scientific, choices: [GRU, LSTM]}\n  units: {value: 16}\n"
                             "  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    fixed = config.fixed_params()
    assert set(fixed) == set(HYPERPARAMETERS) - {"cell", "learning_rate"}
    assert fixed["units"] == 16 and fixed["embedding_dim"] == HYPERPARAMETERS["embedding_dim"].default
    assert set(config.searched) == {"cell", "learning_rate"}
    assert config.scientific == ["cell"]
    assert config.hyperparameters["learning_rate"].role == "nuisance"  # a range without a role is a nuisance
    assert config.hyperparameters["units"].role == "fixed"


def test_unquoted_exponent_is_read_as_a_float(tmp_path: Path):
    # PyYAML reads `1e-3` (no dot) as the string "1e-3"; the schema turns it into a number.
    config = _load(tmp_path, BASE + "space:\n  learning_rate: {value: 1e-3}\n  clipnorm: {value: 1e0}\n")
    assert config.fixed_params()["learning_rate"] == pytest.approx(0.001)
    assert isinstance(config.fixed_params()["learning_rate"], float)
    assert config.fixed_params()["clipnorm"] == 1.0
    ranged = _load(tmp_path, BASE + "space:\n  learning_rate: {low: 1e-4, high: 1e-2, log: true}\n", "r.yaml")
    hp = ranged.hyperparameters["learning_rate"]
    assert (hp.low, hp.high, hp.log) == (pytest.approx(1e-4), pytest.approx(1e-2), True)


def test_grid_size_of_a_small_grid(tmp_path: Path):
    config = _load(tmp_path, BASE + "sampler: grid\nspace:\n  cell: {role: scientific, choices: [LSTM, GRU]}\n"
                                    "  units: {low: 32, high: 128, step: 32}\n  output_dropout: {low: 0.0, high: 0.5, step: 0.1}\n")
    assert config.hyperparameters["units"].grid_values() == [32, 64, 96, 128]
    assert config.hyperparameters["output_dropout"].grid_values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert config.grid_size() == 2 * 4 * 6
    assert _load(tmp_path, BASE + "sampler: grid\n", "empty_grid.yaml").grid_size() == 1
    assert _load(tmp_path, BASE, "tpe.yaml").grid_size() is None


FINGERPRINTED = BASE + "space:\n  cell: {role: scientific, choices: [LSTM, GRU]}\n  units: {choices: [32, 64]}\n"


def test_fingerprint_ignores_budget_and_stores(tmp_path: Path):
    reference = _load(tmp_path, FINGERPRINTED).study_fingerprint()
    same = (
        FINGERPRINTED.replace("trials: 1", "trials: 50"),
        FINGERPRINTED + "storage: sqlite:///elsewhere/optuna.db\n",
        FINGERPRINTED + "tracking_uri: http://localhost:5000\n",
        FINGERPRINTED + "max_consecutive_failures: 20\n",
        FINGERPRINTED + "description: resumed with a bigger budget\n",
    )
    for index, text in enumerate(same):
        assert _load(tmp_path, text, f"same{index}.yaml").study_fingerprint() == reference, text


def test_fingerprint_changes_with_what_a_trial_means(tmp_path: Path):
    reference = _load(tmp_path, FINGERPRINTED).study_fingerprint()
    different = (
        FINGERPRINTED.replace("[32, 64]", "[32, 128]"),
        FINGERPRINTED + "  depth: {value: 2}\n",
        FINGERPRINTED.replace("epochs: 1", "epochs: 2"),
        FINGERPRINTED.replace("{name: sine}", "{name: sine, window: 20}"),
        FINGERPRINTED + "batch_size: 32\n",
        FINGERPRINTED + "seed: 1\n",
        FINGERPRINTED + "configurations:\n  - {cell: GRU, units: 64}\n",
    )
    for index, text in enumerate(different):
        assert _load(tmp_path, text, f"diff{index}.yaml").study_fingerprint() != reference, text


def test_fingerprint_sees_coerced_values(tmp_path: Path):
    as_string = _load(tmp_path, BASE + "space:\n  learning_rate: {value: 1e-3}\n", "a.yaml")
    as_float = _load(tmp_path, BASE + "space:\n  learning_rate: {value: 0.001}\n", "b.yaml")
    assert as_string.study_fingerprint() == as_float.study_fingerprint()


def test_configurations_are_coerced(tmp_path: Path):
    config = _load(tmp_path, BASE.replace("trials: 1", "trials: 2") + "space:\n  output_dropout: {choices: [0.0, 0.2]}\n"
                                    "  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
                                    "  units: {choices: [32, 64]}\n"
                                    "configurations:\n  - {output_dropout: 0, learning_rate: 1e-3, units: 64}\n"
                                    "  - {output_dropout: 0.2}\n")
    first, second = config.configurations
    assert first == {"output_dropout": 0.0, "learning_rate": pytest.approx(0.001), "units": 64}
    assert isinstance(first["output_dropout"], float) and isinstance(first["learning_rate"], float)
    assert second == {"output_dropout": 0.2}


def test_explicit_default_log_with_choices(tmp_path: Path):
    config = _load(tmp_path, BASE + "space:\n  units: {choices: [32, 64], log: false}\n")
    assert config.hyperparameters["units"].choices == (32, 64)


def test_config_module_does_not_import_tensorflow():
    code = "import sys, study.spec.sweep_file; sys.exit(any(m in sys.modules for m in ('tensorflow', 'keras')))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
