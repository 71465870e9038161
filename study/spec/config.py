"""Sweep files: the typed schema, its validation and the resolved hyperparameters.

A sweep file (`sweeps/*.yaml`) names a task, a search space and the fixed settings of a study.
Everything is checked here, before TensorFlow is imported or any store is touched: unknown keys,
wrong types, empty choices, low > high, unknown tasks, cells or samplers all raise `ConfigError`
with one line per problem naming the file, the field and what is allowed. Nothing in this module
trains, writes or imports a heavy library, so the CLI can refuse bad input in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import reprlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from study.spec.errors import StudyError


class ConfigError(StudyError):
    """A sweep file (or a command-line override) that cannot be run; the message says why."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60
_SHORT.maxtuple = _SHORT.maxset = _SHORT.maxfrozenset = 4


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut short (a huge value never expands)."""
    return _SHORT.repr(value)


# --------------------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter the model builder understands: its type, domain and default."""

    kind: Literal["categorical", "int", "float", "bool"]
    default: Any
    help: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    text_only: bool = False

    def describe_domain(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        low = "(" if self.exclusive_minimum else "["
        high = ")" if self.exclusive_maximum else "]"
        return f"{'an integer' if self.kind == 'int' else 'a number'} in {low}{self.minimum}, {self.maximum}{high}"

    def coerce(self, value: Any) -> Any:
        """Return `value` as this dimension's type, or raise ValueError saying what is allowed."""
        if self.kind == "categorical":
            if value not in self.choices:
                raise ValueError(f"{shown(value)} is not allowed; use {self.describe_domain()}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{shown(value)} is not allowed; use {self.describe_domain()}")
            return value
        number = _as_number(value, integer=self.kind == "int")
        if number is None:
            raise ValueError(f"{shown(value)} is not allowed; use {self.describe_domain()}")
        too_low = number <= self.minimum if self.exclusive_minimum else number < self.minimum
        too_high = number >= self.maximum if self.exclusive_maximum else number > self.maximum
        if too_low or too_high:
            raise ValueError(f"{shown(value)} is out of range; use {self.describe_domain()}")
        return number


def _as_number(value: Any, integer: bool) -> int | float | None:
    # PyYAML reads `1e-3` (no dot) as a string, so numeric strings are accepted for floats.
    if isinstance(value, bool):
        return None
    if integer:
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


CELLS = ("SimpleRNN", "GRU", "LSTM")
# Each cell's colour in every figure and terminal table: seaborn's colour-blind palette, first three.
CELL_COLOURS = {"SimpleRNN": "#0173b2", "GRU": "#de8f05", "LSTM": "#029e73"}
ACTIVATIONS = ("tanh", "relu", "sigmoid", "elu", "selu", "gelu", "softsign", "linear")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")

HYPERPARAMETERS: dict[str, Dimension] = {
    "cell": Dimension("categorical", "LSTM", "recurrent cell type", choices=CELLS),
    "units": Dimension("int", 64, "units in each recurrent layer", minimum=1, maximum=4096),
    "depth": Dimension("int", 1, "number of stacked recurrent layers", minimum=1, maximum=8),
    "activation": Dimension(
        "categorical", "tanh", "activation of the recurrent cells (tanh keeps cuDNN kernels)",
        choices=ACTIVATIONS,
    ),
    # Four dropouts, each named for where it acts. Only the first two live inside the cell, and
    # Keras gives them one mask for all time steps of a sequence.
    "input_dropout": Dimension(
        "float", 0.0, "in-cell dropout on each recurrent layer's input features (Keras `dropout=`; "
        "one mask for every time step)",
        minimum=0.0, maximum=1.0, exclusive_maximum=True,
    ),
    "recurrent_dropout": Dimension(
        "float", 0.0, "in-cell dropout on the recurrent state (disables cuDNN kernels)",
        minimum=0.0, maximum=1.0, exclusive_maximum=True,
    ),
    "output_dropout": Dimension(
        "float", 0.0, "Dropout layer after each recurrent layer (between stacked layers and after the last)",
        minimum=0.0, maximum=1.0, exclusive_maximum=True,
    ),
    "bidirectional": Dimension("bool", False, "wrap each recurrent layer in Bidirectional"),
    "dense_units": Dimension(
        "int", 0, "units of a Dense(relu) layer before the output; 0 means none", minimum=0, maximum=4096,
    ),
    "dense_dropout": Dimension(
        "float", 0.0, "Dropout layer after the dense layer (needs dense_units > 0)",
        minimum=0.0, maximum=1.0, exclusive_maximum=True,
    ),
    "embedding_dim": Dimension(
        "int", 32, "embedding size for text tasks", minimum=1, maximum=4096, text_only=True,
    ),
    "optimizer": Dimension("categorical", "adam", "optimizer", choices=OPTIMIZERS),
    "learning_rate": Dimension(
        "float", 1e-3, "optimizer learning rate (search it on a log scale)",
        minimum=0.0, maximum=10.0, exclusive_minimum=True,
    ),
    "clipnorm": Dimension(
        "float", 0.0, "clip each gradient to this norm; 0 means no clipping", minimum=0.0, maximum=1e6,
    ),
}

MAX_GRID_POINTS = 100_000  # Optuna's GridSampler lists every point: keep that list small
INT_DIMENSIONS = {name for name, dim in HYPERPARAMETERS.items() if dim.kind == "int"}

# Names studies recorded before issue 17, and why a sweep file may no longer use them. A recorded
# config still parses with them (see `_check_dropouts`), and `models.build_model` builds recorded
# params that use them with their old meaning, so old studies read, report and rerun as they ran.
LEGACY_DROPOUTS = {
    "dropout": "ambiguous name, no longer accepted; use output_dropout for a Dropout layer after each "
               "recurrent layer (what tutorials mean by dropout), or input_dropout for what `dropout` meant "
               "here: Keras' in-cell input dropout, one mask for every time step",
    "head_dropout": "renamed; it was a Dropout after the recurrent stack and after the dense layer: use "
                    "output_dropout (after each recurrent layer) and dense_dropout (after the dense layer)",
}
_LEGACY_RATE = Dimension("float", 0.0, "a dropout rate recorded before issue 17",
                         minimum=0.0, maximum=1.0, exclusive_maximum=True)


def _dimension(name: str) -> Dimension:
    """The Dimension of a hyperparameter, or of a legacy dropout name read back from a store."""
    return HYPERPARAMETERS[name] if name in HYPERPARAMETERS else _LEGACY_RATE


# --------------------------------------------------------------------------- schema helpers


class StrictModel(BaseModel):
    """A model that names the allowed keys when it meets an unknown one."""

    # strict: `trials: true` or `binarize: "yes"` are mistakes, not 1 and True.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                allowed = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key {shown(unknown[0])}; allowed keys: {allowed}")
        return data


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


# --------------------------------------------------------------------------- tasks


class TaskBase(StrictModel):
    kind: ClassVar[Literal["multiclass", "binary", "regression"]]
    is_text: ClassVar[bool] = False
    split_seed: int = Field(0, description="seed of the train/validation split (fixed for the whole study)")


class ImageRowsTask(TaskBase):
    """MNIST-shaped images read as sequences (shared by `mnist` and `fashion_mnist`)."""

    kind: ClassVar = "multiclass"
    layout: Literal["rows", "pixels", "single_step"] = Field(
        "rows", description="rows: 28 steps of 28 pixels; pixels: 784 steps of 1; single_step: 1 step of 784",
    )
    binarize: bool = Field(False, description="threshold pixels at 0.5 after scaling to [0, 1]")
    train_size: int | None = Field(None, ge=10, description="use only this many training images (before the validation split)")
    test_size: int | None = Field(None, ge=10, description="use only this many test images")
    val_fraction: Fraction = 0.1
    path: str | None = Field(None, description="a Keras-format .npz file or a directory of the original IDX .gz files")


class MnistTask(ImageRowsTask):
    name: Literal["mnist"]


class FashionMnistTask(ImageRowsTask):
    name: Literal["fashion_mnist"]


class ImdbTask(TaskBase):
    name: Literal["imdb"]
    kind: ClassVar = "binary"
    is_text: ClassVar = True
    num_words: int = Field(10000, ge=10, le=100000, description="vocabulary size (most frequent words)")
    maxlen: int = Field(100, ge=1, le=5000, description="reviews are padded/truncated to this many tokens")
    train_size: int | None = Field(None, ge=10)
    test_size: int | None = Field(None, ge=10)
    val_fraction: Fraction = 0.2
    path: str | None = Field(None, description="a Keras-format imdb.npz file")


class SineTask(TaskBase):
    name: Literal["sine"]
    kind: ClassVar = "regression"
    length: int = Field(1000, ge=50, le=10_000_000, description="number of points of sin(t)")
    t_max: float = Field(10.0, gt=0, description="t runs over [0, t_max]")
    window: int = Field(10, ge=1, le=10000, description="past values fed to the model")
    noise: float = Field(0.1, ge=0, description="standard deviation of the Gaussian noise added to sin(t)")
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.2
    data_seed: int = 0

    @model_validator(mode="after")
    def _enough_points(self) -> SineTask:
        if self.length * (1 - self.test_fraction) * (1 - self.val_fraction) <= self.window + 1:
            raise ValueError(f"length {self.length} leaves no training windows of size {self.window}")
        return self


class DigitsTask(TaskBase):
    name: Literal["digits"]
    kind: ClassVar = "multiclass"
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.2


class Mnist1dTask(TaskBase):
    name: Literal["mnist1d"]
    kind: ClassVar = "multiclass"
    num_samples: int = Field(5000, ge=100, le=1_000_000, description="samples generated (80% train, 20% test)")
    val_fraction: Fraction = 0.2
    data_seed: int = Field(42, description="seed of the generator (42 is the published benchmark)")


TaskConfig = Annotated[
    Union[MnistTask, FashionMnistTask, ImdbTask, SineTask, DigitsTask, Mnist1dTask],
    Field(discriminator="name"),
]
TASK_NAMES = ("mnist", "fashion_mnist", "imdb", "sine", "digits", "mnist1d")


# --------------------------------------------------------------------------- search space


class ParamSpec(StrictModel):
    """How one hyperparameter enters the study: fixed `value`, `choices`, or a `low`..`high` range."""

    role: Literal["scientific", "nuisance", "fixed"] | None = None
    value: Any = None
    choices: list[Any] | None = None
    low: Any = None
    high: Any = None
    log: bool = False
    step: Any = None

    @property
    def is_fixed(self) -> bool:
        return self.choices is None and self.low is None and self.high is None

    @property
    def resolved_role(self) -> str:
        return self.role or ("fixed" if self.is_fixed else "nuisance")


def _check_param(name: str, spec: ParamSpec) -> dict[str, Any]:
    """Validate one space entry against its dimension; return it with values coerced."""
    if name not in HYPERPARAMETERS and name not in LEGACY_DROPOUTS:
        raise ValueError(f"space.{name}: unknown hyperparameter; allowed: {', '.join(HYPERPARAMETERS)}")
    dim = _dimension(name)
    where = f"space.{name}"
    # Spelling out a default (`log: false`) is the same as leaving it out.
    given = {k for k in spec.model_fields_set - {"role"} if getattr(spec, k) != ParamSpec.model_fields[k].default}
    if spec.is_fixed and "value" in spec.model_fields_set:
        given.add("value")
    if spec.is_fixed:
        if "value" not in given:
            raise ValueError(f"{where}: give `value` (fixed), `choices`, or `low` and `high`")
        if spec.role in ("scientific", "nuisance"):
            raise ValueError(f"{where}: role {spec.role} needs `choices` or `low`/`high`, not a single `value`")
        if given - {"value"}:
            raise ValueError(f"{where}: a fixed `value` cannot be combined with {', '.join(sorted(given - {'value'}))}")
        return {"value": _coerce(where + ".value", dim, spec.value)}
    if spec.role == "fixed":
        raise ValueError(f"{where}: role fixed takes a single `value`, not choices or a range")
    if "value" in given:
        raise ValueError(f"{where}: `value` cannot be combined with choices or a range")
    if spec.choices is not None:
        if given - {"choices"}:
            raise ValueError(f"{where}: `choices` cannot be combined with {', '.join(sorted(given - {'choices'}))}")
        if not spec.choices:
            raise ValueError(f"{where}.choices: empty; give at least one value ({dim.describe_domain()})")
        choices = [_coerce(f"{where}.choices.{i}", dim, c) for i, c in enumerate(spec.choices)]
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}.choices: values repeat")
        return {"choices": choices}
    if dim.kind in ("categorical", "bool"):
        raise ValueError(f"{where}: {name} is categorical; give `choices` ({dim.describe_domain()}), not a range")
    if spec.low is None or spec.high is None:
        raise ValueError(f"{where}: a range needs both `low` and `high`")
    low = _coerce(where + ".low", dim, spec.low)
    high = _coerce(where + ".high", dim, spec.high)
    if low > high:
        raise ValueError(f"{where}: low ({low}) is greater than high ({high})")
    step = None
    if spec.step is not None:
        step = _as_number(spec.step, integer=dim.kind == "int")
        if step is None or step <= 0:
            raise ValueError(f"{where}.step: must be a positive {'integer' if dim.kind == 'int' else 'number'}")
        if spec.log:
            raise ValueError(f"{where}: `log` and `step` cannot be combined (Optuna samples one or the other)")
    if spec.log and low <= 0:
        raise ValueError(f"{where}: a log scale needs low > 0 (got {low})")
    return {"low": low, "high": high, "log": spec.log, "step": step}


def _coerce(where: str, dim: Dimension, value: Any) -> Any:
    try:
        return dim.coerce(value)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _check_dropouts(space: dict[str, ParamSpec], hyperparameters: dict[str, Hyperparameter], task: Any) -> None:
    """Refuse dropout names and settings that would not do what they say."""
    for name, reason in LEGACY_DROPOUTS.items():
        # A study records its config with `model_dump_json()`, which spells out all seven keys of
        # every space entry; a sweep file never does. So an entry with all of them is a recorded
        # config being read back, where the old name keeps its old meaning; a file gets the new names.
        if name in space and space[name].model_fields_set != set(ParamSpec.model_fields):
            raise ValueError(f"space.{name}: {reason}")
    hp = hyperparameters.get("input_dropout")
    one_feature = task.name in ("mnist1d", "sine") or getattr(task, "layout", None) == "pixels"
    if hp is not None and hp.searched and one_feature and max(hp.choices or (hp.high,)) > 0:
        raise ValueError(
            f"space.input_dropout: task {task.name} feeds one feature per time step, and input dropout "
            "uses one mask for every step, so a rate p blanks the whole sequence of a fraction p of the "
            "training samples; search output_dropout (a Dropout layer after each recurrent layer) instead"
        )
    dense, units = hyperparameters.get("dense_dropout"), hyperparameters.get("dense_units")
    no_dense_layer = units is None or (not units.searched and units.value == 0)
    if dense is not None and no_dense_layer and (dense.searched or dense.value > 0):
        raise ValueError("space.dense_dropout: there is no dense layer (dense_units is 0); set dense_units, "
                         "or use output_dropout for a Dropout layer after the recurrent layers")


@dataclass(frozen=True)
class Hyperparameter:
    """A validated space entry: its role and either a fixed value, choices or a range."""

    name: str
    role: str
    value: Any = None
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def searched(self) -> bool:
        return self.role != "fixed"

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.role == "fixed":
            return value == self.value
        if not self.low <= value <= self.high:
            return False
        if self.step is not None:
            offset = (value - self.low) / self.step
            return abs(offset - round(offset)) < 1e-9
        return True

    def grid_count(self) -> int:
        """How many values the grid visits, counted without listing them (a tiny step would hang)."""
        if self.choices is not None:
            return len(self.choices)
        if self.step is None:
            raise ValueError(
                f"space.{self.name}: the grid sampler needs `choices` or a `step`, not an open range"
            )
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        if count > MAX_GRID_POINTS:
            raise ValueError(
                f"space.{self.name}: a step of {self.step} gives {count:,} grid values (at most "
                f"{MAX_GRID_POINTS:,}); use a larger step or a sampler other than grid"
            )
        return count

    def grid_values(self) -> list[Any]:
        """The values a grid search visits; only choices and stepped ranges have a grid."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise ValueError(
                f"space.{self.name}: the grid sampler needs `choices` or a `step`, not an open range"
            )
        count = self.grid_count()
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.name in INT_DIMENSIONS else [round(v, 12) for v in values]


# --------------------------------------------------------------------------- the sweep


class Objective(StrictModel):
    metric: Literal["val_accuracy", "val_loss", "val_mae"] | None = None
    direction: Literal["maximize", "minimize"] | None = None


class Pruner(StrictModel):
    """Stops unpromising trials early from their per-epoch validation values (Optuna pruners).

    With `budget: equal` and compared (scientific) hyperparameters, a trial is compared only with
    trials of its own compared value (`study.search.samplers.WithinValuePruner`): a cell is never stopped
    for being a cell, and counts such as `startup_trials` are per compared value.
    """

    # Which settings each pruner reads; a setting added since issue 14, set off its default for a
    # pruner that ignores it, is refused (the older three stay accepted everywhere, as old sweep
    # files had them).
    USED_BY: ClassVar[dict[str, tuple[str, ...]]] = {
        "interval_epochs": ("median", "percentile"),
        "min_trials": ("median", "percentile"),
        "reduction_factor": ("successive_halving", "hyperband"),
        "p_threshold": ("wilcoxon",),
        "patience": ("median", "percentile", "successive_halving", "hyperband", "wilcoxon"),
        "min_delta": ("median", "percentile", "successive_halving", "hyperband", "wilcoxon"),
    }

    name: Literal["none", "median", "percentile", "successive_halving", "hyperband", "wilcoxon"] = "none"
    warmup_epochs: int = Field(
        1, ge=0, le=10_000, description="epochs every trial trains before it may be pruned; successive_halving "
        "and hyperband: their minimum resource, the epoch of the first rung (at least 1)",
    )
    startup_trials: int = Field(5, ge=0, le=10_000, description="median/percentile: trials that finish unpruned first")
    percentile: float = Field(25.0, gt=0, lt=100, description="percentile pruner: at each epoch keep the trials in "
                              "the top this percent (25: the best quarter; the median pruner is 50)")
    interval_epochs: int = Field(1, ge=1, le=10_000, description="median/percentile: check every this many epochs "
                                 "after the warm-up")
    min_trials: int = Field(1, ge=1, le=10_000, description="median/percentile: trials that must have reached an "
                            "epoch before any trial is judged at it")
    reduction_factor: int = Field(3, ge=2, le=100, description="successive_halving/hyperband: each rung keeps the "
                                  "best 1/reduction_factor; rungs at warmup_epochs x reduction_factor^k epochs")
    p_threshold: float = Field(0.1, gt=0, lt=1, description="wilcoxon: prune when the one-sided Wilcoxon test "
                               "over epochs says worse than the best trial at this p-value")
    patience: int | None = Field(None, ge=0, le=10_000, description="ask the pruner only once the trial has not "
                                 "improved for this many epochs (Optuna's PatientPruner); none: always ask")
    min_delta: float = Field(0.0, ge=0, description="with patience: the smallest change that counts as improving")

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator(*USED_BY)
    @classmethod
    def _used_by_the_pruner(cls, value: Any, info) -> Any:
        # Runs only for settings the file gives; `info.data` holds the fields before it that passed.
        # A setting at its default changes nothing, so it is never refused: a study records its
        # config with every default spelled out (`study.search.sweep.masked_config`), and that record must
        # load back (reports, replicates, resumes) whatever pruner it names.
        if value == cls.model_fields[info.field_name].default:
            return value
        users = cls.USED_BY[info.field_name]
        name = info.data.get("name")
        if name is not None and name not in users:  # None: the name itself was refused
            raise ValueError(f"the {name} pruner does not use it; it is a setting of {', '.join(users)}")
        if info.field_name == "min_delta" and "patience" in info.data and info.data["patience"] is None:
            raise ValueError("only used with `patience`; set patience too, or remove min_delta")
        return value


def metric_direction(metric: str) -> str:
    """Which way a metric improves: accuracies are maximized, losses and errors minimized."""
    return "maximize" if metric.endswith("accuracy") else "minimize"


METRICS_BY_KIND = {
    "multiclass": ("val_accuracy", "val_loss"),
    "binary": ("val_accuracy", "val_loss"),
    "regression": ("val_loss", "val_mae"),
}

class ReportedValue(StrictModel):
    params: dict[str, Any] = Field(default_factory=dict, description="which configuration ({} = the only one)")
    value: float


class Reported(StrictModel):
    """What a lab notebook reported for the models this sweep reproduces (for `study seeds`)."""

    source: str = Field(description="where the figure comes from, e.g. seeds/000_175554f2ad71804e.txt")
    metric: Literal["test_accuracy", "test_loss", "test_mae", "best_val_accuracy", "best_val_loss"]
    values: list[ReportedValue] = Field(min_length=1)
    search: str | None = Field(None, description="name of the study that tunes the same task (the tuned best)")
    note: str = ""


# --------------------------------------------------------------------------- stores and environment

# Settings read from the environment (flags win over them, they win over the sweep file).
STORAGE_ENV = "RNN_STUDY_STORAGE"  # Optuna storage URL
TRACKING_ENV = "MLFLOW_TRACKING_URI"  # MLflow tracking URI (MLflow's own variable)
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"  # the stores when neither flag, variable nor sweep file names one
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
HEARTBEAT_ENV = "RNN_STUDY_HEARTBEAT_SECONDS"  # seconds between a running trial's heartbeats
THREADS_ENV = "RNN_STUDY_THREADS"  # TensorFlow CPU threads per process

STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "http", "https", "databricks")


def check_uri(uri: str, schemes: tuple[str, ...], what: str) -> str:
    """Refuse a URI whose scheme this store cannot use (e.g. a plain path for MLflow 3.17+)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in schemes:
        raise ValueError(
            f"{what} {uri!r} is not a supported URL; use one starting with "
            + ", ".join(f"{s}://" for s in schemes)
            + (" (e.g. sqlite:///mlruns/optuna.db)" if what == "storage" else " (e.g. sqlite:///mlruns/mlflow.db)")
        )
    return uri


class SweepConfig(StrictModel):
    """The whole sweep file. Field descriptions are the reference documentation of the format."""

    name: str = Field(description="study name: letters, digits, _ . - (at most 100)")
    description: str = ""
    task: TaskConfig
    space: dict[str, ParamSpec] = Field(default_factory=dict)
    configurations: list[dict[str, Any]] = Field(
        default_factory=list, description="exact parameter sets tried first, in order (e.g. the seeds' models)",
    )
    trials: int = Field(ge=1, le=100_000, description="trials that must finish (failed trials are replaced)")
    epochs: int = Field(ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    sampler: Literal["tpe", "random", "qmc", "grid"] = "tpe"
    budget: Literal["equal", "shared"] = Field(
        "equal", description="equal: every scientific value gets the same number of trials and its own sampler",
    )
    param_budget: int | None = Field(
        None, ge=10, le=1_000_000_000,
        description="size-matched comparison: each trial's units are chosen to give about this many parameters",
    )
    replicates: int = Field(
        0, ge=0, le=100, description="after the search, retrain the best of each compared value with this many new seeds",
    )
    reported: Reported | None = Field(None, description="a notebook's reported figures, shown beside the reproduction")
    pruner: Pruner = Field(default_factory=Pruner, description="`median` or {name: median, warmup_epochs: 2, ...}")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seeds the sampler and, with the trial number, training")
    objective: Objective = Field(default_factory=Objective)
    max_consecutive_failures: int = Field(5, ge=1, le=10_000)
    jit_compile: Literal["auto"] | bool = Field(
        "auto", description="compile training with XLA: true, false, or auto (on GPU; on CPU for GRU trials of >= 4M sequence steps)",
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="TensorFlow CPU threads per process (default: TensorFlow's choice)",
    )
    log_models: bool = Field(True, description="save each completed trial's best-epoch model as an MLflow artifact")
    storage: str | None = Field(None, description="Optuna storage URL (default sqlite:///mlruns/optuna.db)")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (default sqlite:///mlruns/mlflow.db)")

    _hyperparameters: dict[str, Hyperparameter] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _study_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
            raise ValueError(f"{shown(value)} is not a valid study name; use letters, digits, _ . - (at most 100, no spaces)")
        return value

    @field_validator("task", mode="before")
    @classmethod
    def _task_is_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"must be a mapping with a `name` (one of {', '.join(TASK_NAMES)}) and its options, e.g. {{name: digits}}")
        return value

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        return None if value is None else check_uri(value, STORAGE_SCHEMES, "storage")

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_scheme(cls, value: str | None) -> str | None:
        return None if value is None else check_uri(value, TRACKING_SCHEMES, "tracking_uri")

    @model_validator(mode="after")
    def _check_space_and_objective(self) -> SweepConfig:
        hyperparameters = {}
        for name, spec in self.space.items():
            checked = _check_param(name, spec)
            if checked.get("choices") is not None:
                checked["choices"] = tuple(checked["choices"])
            hyperparameters[name] = Hyperparameter(name=name, role=spec.resolved_role, **checked)
            if _dimension(name).text_only and not self.task.is_text:
                raise ValueError(f"space.{name}: only text tasks (imdb) have an embedding; task is {self.task.name}")
        self._hyperparameters = hyperparameters

        for index, configuration in enumerate(self.configurations):
            for key, value in configuration.items():
                hp = hyperparameters.get(key)
                if hp is None or not hp.searched:
                    searched = ", ".join(n for n, h in hyperparameters.items() if h.searched) or "none"
                    raise ValueError(
                        f"configurations.{index}.{key}: not a searched hyperparameter of this space; searched: {searched}"
                    )
                coerced = _coerce(f"configurations.{index}.{key}", _dimension(key), value)
                if not hp.contains(coerced):
                    raise ValueError(f"configurations.{index}.{key}: {shown(value)} lies outside space.{key}")
                configuration[key] = coerced

        allowed = METRICS_BY_KIND[self.task.kind]
        metric = self.objective.metric or allowed[0]
        if metric not in allowed:
            raise ValueError(
                f"objective.metric: {metric} is not reported by task {self.task.name}; allowed: {', '.join(allowed)}"
            )
        natural = metric_direction(metric)
        direction = self.objective.direction or natural
        if direction != natural:
            raise ValueError(f"objective.direction: {metric} must be {natural}d, not {direction}d")
        object.__setattr__(self, "objective", Objective(metric=metric, direction=direction))

        if self.sampler == "grid":
            size = math.prod(hp.grid_count() for hp in hyperparameters.values() if hp.searched)
            if size > MAX_GRID_POINTS:
                raise ValueError(f"sampler: the grid has {size:,} points (at most {MAX_GRID_POINTS:,}); "
                                 "give fewer choices or larger steps, or use tpe/random")
            if self.trials > size:
                raise ValueError(f"trials: {self.trials} is more than the grid's {size} points; set trials: {size}")
        if self.budget == "equal" and self.sampler != "grid" and not self.configurations:
            for name in self.scientific:
                hp = hyperparameters[name]
                if hp.choices is None and hp.step is None:
                    raise ValueError(
                        f"space.{name}: equal budgets need `choices` (or a `step`) for a scientific "
                        "hyperparameter; give choices or set `budget: shared`"
                    )
        if self.param_budget is not None and "units" in hyperparameters:
            raise ValueError(
                "space.units: with `param_budget` the units of each trial are chosen to match the budget; "
                "remove units from the space"
            )
        if self.reported is not None:
            for index, reported in enumerate(self.reported.values):
                for key, value in reported.params.items():
                    hp = hyperparameters.get(key)
                    where = f"reported.values.{index}.params.{key}"
                    if hp is None:
                        raise ValueError(f"{where}: not in the space; give values of: {', '.join(hyperparameters)}")
                    if not hp.contains(_coerce(where, _dimension(key), value)):
                        raise ValueError(f"{where}: {shown(value)} lies outside space.{key}")
        if len(self.configurations) > self.trials:
            raise ValueError(
                f"configurations: {len(self.configurations)} configurations but trials is {self.trials}; "
                "raise trials so every configuration runs"
            )
        _check_dropouts(self.space, hyperparameters, self.task)
        return self

    @property
    def hyperparameters(self) -> dict[str, Hyperparameter]:
        return self._hyperparameters

    @property
    def searched(self) -> dict[str, Hyperparameter]:
        return {name: hp for name, hp in self.hyperparameters.items() if hp.searched}

    @property
    def scientific(self) -> list[str]:
        return [name for name, hp in self.hyperparameters.items() if hp.role == "scientific"]

    @property
    def uses_equal_budget(self) -> bool:
        """Split trials equally over scientific values (grids and explicit configurations already do)."""
        return self.budget == "equal" and bool(self.scientific) and self.sampler != "grid" and not self.configurations

    def fixed_params(self) -> dict[str, Any]:
        """Every hyperparameter that is not searched: defaults overridden by the fixed values."""
        params = {name: dim.default for name, dim in HYPERPARAMETERS.items() if self.task.is_text or not dim.text_only}
        params.update({name: hp.value for name, hp in self.hyperparameters.items() if not hp.searched})
        for name in self.searched:
            params.pop(name, None)  # None: a legacy dropout name of a recorded config has no default
        return params

    def grid_size(self) -> int | None:
        if self.sampler != "grid":
            return None
        return math.prod(hp.grid_count() for hp in self.searched.values())

    def study_fingerprint(self) -> str:
        """Hash of everything that defines what a trial means; `trials` and stores may change on resume."""
        # Built from resolved values, so `1e-3` vs 0.001 or a default spelled out hash the same.
        fixed = self.fixed_params()
        # Before issue 17 the dropouts were `dropout` and `head_dropout`. With every dropout fixed at
        # 0 the model is the same under either naming, so such a config hashes as it did then and its
        # study stays resumable; a non-zero or searched dropout hashes under the new names, so it
        # matches no study made with the old ones.
        renamed = ("input_dropout", "output_dropout", "dense_dropout")
        if all(fixed.get(name) == 0 for name in renamed):
            fixed = {k: v for k, v in fixed.items() if k not in renamed} | {"dropout": 0.0, "head_dropout": 0.0}
        defining = {
            "task": self.task.model_dump(mode="json"),
            "fixed": fixed,
            "searched": {name: [hp.role, hp.choices, hp.low, hp.high, hp.log, hp.step]
                         for name, hp in sorted(self.searched.items())},
            "configurations": self.configurations,
            **self.model_dump(mode="json", include={"epochs", "batch_size", "sampler", "seed", "objective", "budget", "param_budget"}),
        }
        return hashlib.sha256(json.dumps(defining, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: the config, where it came from, and its content hash."""

    config: SweepConfig
    path: Path
    file_sha256: str


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; raise ConfigError naming the file and field on any problem."""
    path = Path(path)
    data, raw = read_yaml_file(path, "sweep file")
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a sweep needs at least name, task, trials and epochs")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep file must be a mapping of keys (name, task, space, ...), got {type(data).__name__}")
    config = parse_config(data, source=str(path))
    return Sweep(config=config, path=path, file_sha256=hashlib.sha256(raw).hexdigest())


def read_yaml_file(path: Path, what: str) -> tuple[Any, bytes]:
    """The YAML data and raw bytes of a sweep or suite file: plain files only (never a FIFO or a
    device), at most MAX_SWEEP_BYTES, no duplicate keys or aliases; ConfigError names the file."""
    try:
        mode = path.stat().st_mode  # never opened before it is known to be a plain file
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path}: is a directory, not a {what} (try {path}/quick.yaml)")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: is {file_kind(mode)}, not a {what}; a {what} is a plain YAML file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SWEEP_BYTES + 1)  # bounded even if the file grows meanwhile
        if len(raw) > MAX_SWEEP_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_SWEEP_BYTES // 1024} KiB; a sweep file is short "
                              "(overrides only), and a long list of configurations belongs in several studies")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read {what} ({err})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), raw  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # PyYAML's parser recurses once per level: `[[[[...` 400 deep ends here
        raise ConfigError(f"{path}: malformed YAML: nested too deeply (a sweep file is a few levels deep)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None


MAX_SWEEP_BYTES = 1024 * 1024  # sweep files are a few hundred bytes; this bounds memory and validation time


def file_kind(mode: int) -> str:
    """What a file that is not a plain one is, for messages (`a FIFO`, `a character device`, ...)."""
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")]
    return next((name for test, name in kinds if test(mode)), "not a plain file")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice (plain YAML silently keeps the last one) and
    aliases (`*name`): a few hundred bytes of nested aliases expand to gigabytes (a "billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor[:40]}) are not allowed in sweep files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} appears twice", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_config(data: dict[str, Any], source: str = "<sweep>") -> SweepConfig:
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError("\n".join(f"{source}: {line}" for line in _error_lines(err))) from None


def _error_lines(err: ValidationError) -> list[str]:
    lines = []
    for error in err.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"] if not _is_union_tag(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "union_tag_invalid":
            message = f"unknown task {shown(error['input'].get('name'))}; allowed: {', '.join(TASK_NAMES)}"
        elif error["type"] == "union_tag_not_found":
            message = f"`name` is missing; allowed tasks: {', '.join(TASK_NAMES)}"
        elif error["type"] == "literal_error":
            message = f"{shown(error['input'])} is not allowed; {message[0].lower()}{message[1:]}"
        # Messages raised by our validators already start with their field path.
        lines.append(message if message.startswith(("space.", "configurations.", "objective.")) or not loc
                     else f"{loc}: {message}")
    return lines


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in TASK_NAMES and part != "name"
