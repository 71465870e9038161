"""Hyperparameters: the catalogue the model builder understands, and how a sweep file's search space over it is checked.

`HYPERPARAMETERS` names every hyperparameter with its type, domain and default; a sweep file's
`space:` entry for one (`ParamSpec`) is checked against it and resolved into a `Hyperparameter`:
a fixed value, choices or a range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from study.spec.base import StrictModel, shown


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
# config still parses with them (see `check_dropouts`), and `models.build_model` builds recorded
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


def dimension_of(name: str) -> Dimension:
    """The Dimension of a hyperparameter, or of a legacy dropout name read back from a store."""
    return HYPERPARAMETERS[name] if name in HYPERPARAMETERS else _LEGACY_RATE


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


def check_param(name: str, spec: ParamSpec) -> dict[str, Any]:
    """Validate one space entry against its dimension; return it with values coerced."""
    if name not in HYPERPARAMETERS and name not in LEGACY_DROPOUTS:
        raise ValueError(f"space.{name}: unknown hyperparameter; allowed: {', '.join(HYPERPARAMETERS)}")
    dim = dimension_of(name)
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
        return {"value": coerce_value(where + ".value", dim, spec.value)}
    if spec.role == "fixed":
        raise ValueError(f"{where}: role fixed takes a single `value`, not choices or a range")
    if "value" in given:
        raise ValueError(f"{where}: `value` cannot be combined with choices or a range")
    if spec.choices is not None:
        if given - {"choices"}:
            raise ValueError(f"{where}: `choices` cannot be combined with {', '.join(sorted(given - {'choices'}))}")
        if not spec.choices:
            raise ValueError(f"{where}.choices: empty; give at least one value ({dim.describe_domain()})")
        choices = [coerce_value(f"{where}.choices.{i}", dim, c) for i, c in enumerate(spec.choices)]
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}.choices: values repeat")
        return {"choices": choices}
    if dim.kind in ("categorical", "bool"):
        raise ValueError(f"{where}: {name} is categorical; give `choices` ({dim.describe_domain()}), not a range")
    if spec.low is None or spec.high is None:
        raise ValueError(f"{where}: a range needs both `low` and `high`")
    low = coerce_value(where + ".low", dim, spec.low)
    high = coerce_value(where + ".high", dim, spec.high)
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


def coerce_value(where: str, dim: Dimension, value: Any) -> Any:
    """`value` as `dim`'s type, or a ValueError whose message starts with `where`."""
    try:
        return dim.coerce(value)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def check_dropouts(space: dict[str, ParamSpec], hyperparameters: dict[str, Hyperparameter], task: Any) -> None:
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
