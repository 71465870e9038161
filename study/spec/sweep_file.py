"""Sweep files: the typed schema of the whole file, its validation, and loading one.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from study.spec.base import ConfigError, StrictModel, shown
from study.spec.files import read_yaml_file
from study.spec.hyperparameters import (
    HYPERPARAMETERS, MAX_GRID_POINTS, Hyperparameter, ParamSpec, check_dropouts, check_param, coerce_value,
    dimension_of,
)
from study.spec.settings import STORAGE_SCHEMES, TRACKING_SCHEMES, check_uri
from study.spec.tasks import TASK_NAMES, TaskConfig


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
    train_size: int | None = Field(
        None, ge=1, le=100_000_000, description="training examples the notebook trained on, which `study seeds` "
        "sets beside those used here (default: the whole standard training set: 60,000 for mnist and fashion_mnist, "
        "25,000 for imdb; unknown for the generated tasks)",
    )


class Decide(StrictModel):
    """Run until decided: after the first `trials`, add rounds (one paired draw: a trial of every
    compared value on the same nuisance values; or one replicate of each value's best) and look
    after each with anytime-valid confidence sequences, until every pair of compared values is
    decided (one better, or equivalent within the margin) or `max_trials` is spent."""

    margin: float | None = Field(
        None, gt=0, description="the smallest difference that matters, in the metric's units (0.02 = 2 pp of "
                                "accuracy); default: the file's `margin`, else 0.02 for accuracies",
    )
    max_trials: int = Field(ge=2, le=100_000, description="the most trials (or replicate runs, with "
                                                           "`evidence: replicates`) the sweep may spend")
    evidence: Literal["paired", "replicates"] = Field(
        "paired", description="paired: rounds of paired draws (across the search space); replicates: rounds "
                              "of one new seed for each value's best configuration (tuned)",
    )


class SweepConfig(StrictModel):
    """The whole sweep file. Field descriptions are the reference documentation of the format."""

    model_config = ConfigDict(populate_by_name=True)  # `register` in a file, `register_models` when recorded

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
    # `register` in the file; a field of that name would shadow pydantic's (ABCMeta's) `register`.
    register_models: bool = Field(False, alias="register", description=(
        "when the sweep ends, register the best trial's model of each compared value in the MLflow Model "
        "Registry, as `study register`"))
    margin: float | None = Field(
        None, gt=0, description="the smallest difference between compared values that matters, in the metric's "
                                "units, for equivalence and for how much more evidence a pair needs (default: "
                                "0.02, i.e. 2 pp, for accuracies; none for losses)",
    )
    decide: Decide | None = Field(None, description="run until decided: {max_trials, margin, evidence: paired | replicates}")
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
            checked = check_param(name, spec)
            if checked.get("choices") is not None:
                checked["choices"] = tuple(checked["choices"])
            hyperparameters[name] = Hyperparameter(name=name, role=spec.resolved_role, **checked)
            if dimension_of(name).text_only and not self.task.is_text:
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
                coerced = coerce_value(f"configurations.{index}.{key}", dimension_of(key), value)
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
                    if not hp.contains(coerce_value(where, dimension_of(key), value)):
                        raise ValueError(f"{where}: {shown(value)} lies outside space.{key}")
        if len(self.configurations) > self.trials:
            raise ValueError(
                f"configurations: {len(self.configurations)} configurations but trials is {self.trials}; "
                "raise trials so every configuration runs"
            )
        check_dropouts(self.space, hyperparameters, self.task)
        self._check_margin_and_decide(metric)
        return self

    def _check_margin_and_decide(self, metric: str) -> None:
        accuracy = metric.endswith("accuracy")
        for where, margin in (("margin", self.margin), ("decide.margin", self.decide and self.decide.margin)):
            if margin is not None and accuracy and margin >= 1:
                raise ValueError(f"{where}: {margin} is not below 1; an accuracy margin is a fraction (0.02 = 2 pp)")
        decide = self.decide
        if decide is None:
            return
        if decide.margin is not None and self.margin is not None and decide.margin != self.margin:
            raise ValueError(f"decide.margin: {decide.margin} differs from margin: {self.margin}; give one of them")
        if not accuracy and (decide.margin or self.margin) is None:
            raise ValueError(f"decide.margin: {metric} has no default margin; give the smallest difference that "
                             "matters, in the metric's units")
        if len(self.scientific) != 1:
            raise ValueError("decide: needs exactly one compared hyperparameter (role: scientific, e.g. space.cell) to "
                             f"decide on; this space has {len(self.scientific)}"
                             + (f" ({', '.join(self.scientific)})" if self.scientific else ""))
        if decide.evidence == "paired" and (self.sampler != "random" or self.budget != "equal"):
            raise ValueError("decide: paired evidence needs `sampler: random` and `budget: equal`, so that every "
                             f"compared value trains on the same draws (got sampler: {self.sampler}, budget: "
                             f"{self.budget}); or use `evidence: replicates`")
        if decide.evidence == "paired" and decide.max_trials < self.trials:
            raise ValueError(f"decide.max_trials: {decide.max_trials} is below trials: {self.trials}; the sweep runs "
                             "`trials` first, then rounds up to `max_trials`")

    @property
    def study_margin(self) -> float | None:
        """The margin the verdict uses: decide's, the file's, else None (the metric's default)."""
        return (self.decide.margin if self.decide and self.decide.margin is not None else self.margin)

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
    check_pruner_can_act(config, str(path))
    return Sweep(config=config, path=path, file_sha256=hashlib.sha256(raw).hexdigest())


def first_prunable_epoch(pruner: Pruner) -> int | None:
    """The first epoch after which `pruner` may stop a trial (None: no pruner). The median and
    percentile pruners wait `warmup_epochs` steps, successive halving and hyperband have their
    first rung there (at least 1), Wilcoxon needs at least two epochs to test."""
    if pruner.name == "none":
        return None
    return max(2 if pruner.name == "wilcoxon" else 1, pruner.warmup_epochs)


def check_pruner_can_act(config: SweepConfig, source: str) -> None:
    """Refuse a sweep file whose pruner could never stop a trial before its last epoch.

    Checked for files only (`load_sweep`), not in `SweepConfig`: a study already run with such a
    file keeps a record of it that must load back for its reports.
    """
    first = first_prunable_epoch(config.pruner)
    if first is None or first < config.epochs:
        return
    field = "pruner.warmup_epochs" if "warmup_epochs" in config.pruner.model_fields_set else "pruner"
    raise ConfigError(
        f"{source}: {field}: the {config.pruner.name} pruner can first stop a trial after epoch {first}, and every "
        f"trial ends after epoch {config.epochs} (epochs: {config.epochs}), so it would never stop one; "
        + ("lower warmup_epochs below epochs, " if field == "pruner.warmup_epochs" else "")
        + "raise epochs, or set pruner: none"
    )



def until_decided(sweep: Sweep, asked: bool, max_trials: int | None) -> Sweep:
    """`study sweep FILE --until-decided [--max-trials N]`: the sweep with a `decide:` section (the
    file's, its cap replaced by N; or a new one: paired draws, the file's margin, a cap of N, else
    four times `trials`), validated as if the file said so. Unchanged without either flag."""
    decide = sweep.config.decide
    if max_trials is not None and decide is None and not asked:
        raise ConfigError("--max-trials: only with --until-decided, or a `decide:` section in the sweep file")
    if not asked and max_trials is None:
        return sweep
    asked_for = (decide.model_dump(exclude_none=True) if decide is not None else
                 {"max_trials": max_trials or 4 * sweep.config.trials})
    if max_trials is not None:
        asked_for["max_trials"] = max_trials  # checked below with the rest, as if the file said it
    data = {**sweep.config.model_dump(mode="json", exclude_none=True), "decide": asked_for}
    config = parse_config(data, source=f"{sweep.path} with --until-decided")
    return Sweep(config=config, path=sweep.path, file_sha256=sweep.file_sha256)


def parse_config(data: dict[str, Any], source: str = "<sweep>") -> SweepConfig:
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError("\n".join(f"{source}: {line}" for line in error_lines(err))) from None


def error_lines(err: ValidationError) -> list[str]:
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
