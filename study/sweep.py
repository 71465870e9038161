"""Sweeps: run or resume an Optuna study from a sweep file, and read studies back as DataFrames.

This is the only module that talks to Optuna storage. A sweep is one Optuna study named after the
sweep file's `name`; re-running the same file resumes it until `trials` trials have finished
(COMPLETE or PRUNED; failed trials are recorded and replaced). The study remembers a fingerprint
of the sweep definition, so a changed search space is refused instead of silently mixed.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from study.config import STORAGE_SCHEMES, TRACKING_SCHEMES, ConfigError, Sweep, SweepConfig, check_uri, parse_config
from study.tracking import DEFAULT_TRACKING_URI, prepare_local_store, sqlite_path

DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
STORAGE_ENV = "RNN_STUDY_STORAGE"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# Our own messages say what failed; Optuna's per-trial INFO/WARNING lines would repeat them.
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class StudyNotFound(LookupError):
    """A study name that the storage does not hold."""


@dataclass
class SweepResult:
    study_name: str
    storage: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    target: int
    started: int  # trials started by this call
    counts: dict[str, int]
    stopped_reason: str | None
    trials: pd.DataFrame = field(repr=False)
    best: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def reached_target(self) -> bool:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0) >= self.target


# --------------------------------------------------------------------------- stores


def resolve_storage(flag: str | None = None, config: SweepConfig | None = None) -> str:
    """Flag, then environment, then sweep file, then the embedded default."""
    url = flag or os.environ.get(STORAGE_ENV) or (config.storage if config else None) or DEFAULT_STORAGE
    try:
        return check_uri(url, STORAGE_SCHEMES, "storage")
    except ValueError as err:
        raise ConfigError(str(err)) from None


def resolve_tracking_uri(flag: str | None = None, config: SweepConfig | None = None) -> str:
    uri = flag or os.environ.get(TRACKING_ENV) or (config.tracking_uri if config else None) or DEFAULT_TRACKING_URI
    try:
        return check_uri(uri, TRACKING_SCHEMES, "tracking URI")
    except ValueError as err:
        raise ConfigError(str(err)) from None


def open_storage(url: str, create: bool = True) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, so trials of a killed process end as FAIL."""
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise StudyNotFound(f"no study storage at {path} (run `study sweep <file>` first, or pass --storage)")
    if create:
        prepare_local_store(url)
    return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)


def make_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    if config.sampler == "grid":
        grid = {name: hp.grid_values() for name, hp in config.searched.items()}
        return optuna.samplers.GridSampler(grid, seed=config.seed)
    if config.uses_equal_budget:
        values = {name: config.hyperparameters[name].grid_values() for name in config.scientific}
        return EqualBudgetSampler(values, lambda: _base_sampler(config))
    return _base_sampler(config)


def _base_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    if config.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed)


class EqualBudgetSampler(optuna.samplers.BaseSampler):
    """Gives every value of the scientific hyperparameters the same number of trials, and tunes
    each value's nuisance hyperparameters with its own sampler (same kind, same seed).

    An adaptive sampler left alone spends most of a budget on whichever cell leads early, and its
    model of a good learning rate mixes all cells. Here each trial is assigned the scientific value
    with the fewest trials so far (failed ones are replaced), and its nuisance values come from a
    sampler that only sees that value's trials. With the same seed, each value's first (random)
    nuisance draws are identical: a paired design.
    """

    def __init__(self, values: dict[str, list[Any]], make_sampler):
        self.names = list(values)
        self.combos = [tuple(combo) for combo in itertools.product(*values.values())]
        self.samplers = {combo: make_sampler() for combo in self.combos}
        self._assigned: dict[int, tuple] = {}  # trial id -> combo, for this process's trials

    def infer_relative_search_space(self, study, trial):
        combo = self._combo(study, trial)
        view = _TrialsOfValue(study, self.names, combo)
        space = self.samplers[combo].infer_relative_search_space(view, trial)
        return {name: dist for name, dist in space.items() if name not in self.names}

    def sample_relative(self, study, trial, search_space):
        combo = self._combo(study, trial)
        view = _TrialsOfValue(study, self.names, combo)
        return self.samplers[combo].sample_relative(view, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        combo = self._combo(study, trial)
        if param_name in self.names:
            return combo[self.names.index(param_name)]
        view = _TrialsOfValue(study, self.names, combo)
        return self.samplers[combo].sample_independent(view, trial, param_name, param_distribution)

    def _combo(self, study, trial) -> tuple:
        if trial._trial_id not in self._assigned:
            counts = collections.Counter(
                tuple(t.params.get(name) for name in self.names)
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
                if t.number != trial.number
            )
            self._assigned[trial._trial_id] = min(self.combos, key=lambda c: (counts[c], self.combos.index(c)))
        return self._assigned[trial._trial_id]


class _TrialsOfValue:
    """A read-only view of a study that shows a sampler only the trials of one scientific value."""

    def __init__(self, study: optuna.Study, names: list[str], combo: tuple):
        self._study, self._names, self._combo = study, names, combo

    def __getattr__(self, attribute):
        return getattr(self._study, attribute)

    def _matches(self, trial: FrozenTrial) -> bool:
        return tuple(trial.params.get(name) for name in self._names) == self._combo

    def get_trials(self, deepcopy=True, states=None):
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if self._matches(t)]

    def _get_trials(self, deepcopy=True, states=None, use_cache=False):
        return [t for t in self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
                if self._matches(t)]

    @property
    def trials(self):
        return self.get_trials()


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    """The sweep's pruner; steps are epochs (counted from 1), so warm-up counts epochs too."""
    pruner = config.pruner
    if pruner.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs)
    if pruner.name == "percentile":
        return optuna.pruners.PercentilePruner(
            pruner.percentile, n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs,
        )
    if pruner.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, pruner.warmup_epochs))
    if pruner.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, pruner.warmup_epochs), max_resource=config.epochs)
    return optuna.pruners.NopPruner()


def _open_study(config: SweepConfig, storage: optuna.storages.BaseStorage, storage_url: str) -> optuna.Study:
    """Create the study, or load it after checking it was made from the same sweep definition."""
    fingerprint = config.study_fingerprint()
    if config.name in optuna.get_all_study_names(storage):
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        )
        recorded = study.user_attrs.get("fingerprint")
        if recorded != fingerprint:
            changed = _changed_fields(json.loads(study.user_attrs.get("config", "{}")), config)
            raise ConfigError(
                f"study {config.name!r} in {mask_password(storage_url)} was created from a different sweep "
                f"definition (changed: {', '.join(changed) or 'unknown'}); give the sweep a new `name` "
                "to start a new study, or restore the original values to resume it"
            )
        return study
    study = optuna.create_study(
        study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        direction=config.objective.direction,
    )
    study.set_user_attr("fingerprint", fingerprint)
    study.set_user_attr("config", config.model_dump_json())
    study.set_user_attr("task", config.task.name)
    study.set_user_attr("metric", config.objective.metric)
    study.set_user_attr("scientific", config.scientific)
    return study


def _changed_fields(recorded: dict[str, Any], config: SweepConfig) -> list[str]:
    current = json.loads(config.model_dump_json())
    ignored = {"trials", "storage", "tracking_uri", "max_consecutive_failures", "description", "log_models"}
    return [key for key in current if key not in ignored and recorded.get(key) != current[key]]


def mask_password(url: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`, for messages and tags."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


# --------------------------------------------------------------------------- running


def package_versions() -> dict[str, str]:
    versions = {}
    for package in ("rnn-study", "tensorflow", "tensorflow-cpu", "keras", "optuna", "mlflow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class _FailureStreak:
    """Stops the study after `limit` failed trials in a row (a broken setup, not bad luck)."""

    def __init__(self, limit: int):
        self.limit, self.streak, self.reasons = limit, 0, []
        self.stopped_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.streak, self.reasons = 0, []
            return
        self.streak += 1
        self.reasons.append(trial.user_attrs.get("fail_reason", "unknown error"))
        if self.streak >= self.limit:
            self.stopped_reason = (
                f"stopped after {self.streak} failed trials in a row (max_consecutive_failures); "
                f"last error: {self.reasons[-1]}"
            )
            study.stop()


def run_sweep(
    sweep: Sweep,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    reporter=None,
) -> SweepResult:
    """Run or resume `sweep` until `trials` (default: the file's) trials have finished."""
    # Imported here so that `study list`, `show` and config errors never pay for TensorFlow.
    from study.data import load_task
    from study.tracking import SweepTracker
    from study.trial import Objective, SilentReporter, configure_threads

    config = sweep.config
    target = config.trials if trials is None else trials
    if target < 1:
        raise ConfigError(f"--trials must be at least 1 (got {target})")
    storage_url = resolve_storage(storage, config)
    tracking = resolve_tracking_uri(tracking_uri, config)
    reporter = reporter or SilentReporter()
    notes: list[str] = []

    configure_threads(config.threads)  # before TensorFlow runs anything in this process
    data = load_task(config.task)  # before any store is written: a data error leaves nothing behind
    rdb = open_storage(storage_url)
    study = _open_study(config, rdb, storage_url)

    grid_size = config.grid_size()
    if grid_size is not None and target > grid_size:
        notes.append(f"the grid has {grid_size} points, so the sweep stops at {grid_size} trials, not {target}")
        target = grid_size
    for configuration in config.configurations:
        study.enqueue_trial(configuration, skip_if_exists=True)

    tracker = SweepTracker(tracking, experiment_name=config.name)
    versions = package_versions()
    tracker.open_parent(
        config.name,
        tags={
            "task": config.task.name,
            "sweep_file": str(sweep.path),
            "sweep_sha256": sweep.file_sha256,
            "fingerprint": config.study_fingerprint(),
            "optuna_storage": mask_password(storage_url),
            "metric": config.objective.metric,
            "scientific": ",".join(config.scientific),
            "target_trials": target,
            **{f"version.{k}": v for k, v in versions.items()},
        },
        config=json.loads(config.model_dump_json()),
    )
    live = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    closed = tracker.close_orphaned_trial_runs(live)
    if closed:
        notes.append(f"closed {closed} MLflow run(s) left RUNNING by a process that died")

    finished_before = len(study.get_trials(deepcopy=False, states=FINISHED))
    trials_before = len(study.trials)
    reporter.sweep_started(config.name, finished_before, target)
    objective = Objective(
        config, data, tracker,
        run_tags={
            "study": config.name, "task": config.task.name, "sweep_sha256": sweep.file_sha256,
            **{f"version.{k}": v for k, v in versions.items()},
        },
        reporter=reporter,
    )
    streak = _FailureStreak(config.max_consecutive_failures)
    interrupted = False
    try:
        if finished_before < target:
            study.optimize(
                objective,
                callbacks=[MaxTrialsCallback(target, states=FINISHED), streak],
                catch=(Exception,),
                gc_after_trial=True,
            )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        counts = state_counts(study)
        best = _best_trial(study)
        tracker.close_parent(
            summary={f"trials_{state.lower()}": n for state, n in counts.items()},
            best=None if best is None else {
                "trial": best.number, "value": best.value, "run_id": best.user_attrs.get("mlflow_run_id"),
            },
            finished=not interrupted and counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) >= target,
        )

    table = trials_table(config.name, storage_url)
    return SweepResult(
        study_name=config.name, storage=storage_url, tracking_uri=tracking,
        experiment_id=tracker.experiment_id, parent_run_id=tracker.parent_run_id,
        target=target, started=len(study.trials) - trials_before, counts=counts,
        stopped_reason=streak.stopped_reason, trials=table,
        best=best_by(table, config.scientific, config.objective.direction), notes=notes,
    )


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


# --------------------------------------------------------------------------- reading studies back


def _load(study_name: str, storage: str) -> optuna.Study:
    rdb = open_storage(storage, create=False)
    names = optuna.get_all_study_names(rdb)
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise StudyNotFound(f"no study named {study_name!r} in {mask_password(storage)} (studies: {known})")
    return optuna.load_study(study_name=study_name, storage=rdb)


@dataclass
class TrialRecord:
    """What the study recorded about one trial: enough to retrain it exactly."""

    study_name: str
    number: int
    state: str
    params: dict[str, Any]
    seed: int
    value: float | None
    config: SweepConfig
    user_attrs: dict[str, Any]


def load_trial(study_name: str, number: int, storage: str) -> TrialRecord:
    study = _load(study_name, storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise StudyNotFound(f"study {study_name!r} has no trial {number} (trials 0 to {len(trials) - 1})")
    trial = trials[number]
    metric = study.user_attrs.get("metric", "value")
    return TrialRecord(
        study_name=study_name, number=number, state=trial.state.name,
        params=trial.user_attrs.get("params", trial.params), seed=trial.user_attrs.get("seed", 0),
        value=trial.value if trial.value is not None else trial.user_attrs.get(f"best_{metric}"),
        config=parse_config(json.loads(study.user_attrs["config"]), source=f"study {study_name}"),
        user_attrs=dict(trial.user_attrs),
    )


def study_configs(storage: str) -> dict[str, SweepConfig]:
    """The sweep config of every study in `storage` that rnn-study created."""
    rdb = open_storage(storage, create=False)
    configs = {}
    for summary in optuna.get_all_study_summaries(rdb, include_best_trial=False):
        if "config" in summary.user_attrs:
            configs[summary.study_name] = parse_config(json.loads(summary.user_attrs["config"]), source=summary.study_name)
    return configs


def list_studies(storage: str) -> pd.DataFrame:
    """One row per study in `storage`: task, trial counts by state, best value."""
    rdb = open_storage(storage, create=False)
    rows = []
    for name in optuna.get_all_study_names(rdb):
        study = optuna.load_study(study_name=name, storage=rdb)
        best = _best_trial(study)
        rows.append({
            "study": name,
            "task": study.user_attrs.get("task", ""),
            "metric": study.user_attrs.get("metric", "value"),
            **{state.lower(): n for state, n in state_counts(study).items()},
            "best_value": best.value if best else float("nan"),
            "best_trial": best.number if best else None,
        })
    columns = ["study", "task", "metric", "complete", "pruned", "fail", "running", "best_value", "best_trial"]
    return pd.DataFrame(rows, columns=columns)


def trials_table(study_name: str, storage: str) -> pd.DataFrame:
    """One row per trial: state, score, test metrics, every hyperparameter, size and speed."""
    study = _load(study_name, storage)
    metric = study.user_attrs.get("metric", "value")
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        params = attrs.get("params", trial.params)
        rows.append({
            "trial": trial.number,
            "state": trial.state.name,
            f"best_{metric}": trial.value if trial.state == TrialState.COMPLETE else attrs.get(f"best_{metric}"),
            **{k: v for k, v in attrs.items() if k.startswith("test_")},
            **params,
            "param_count": attrs.get("param_count"),
            "seconds_per_epoch": attrs.get("seconds_per_epoch"),
            "train_seconds": attrs.get("train_seconds"),
            "best_epoch": attrs.get("best_epoch"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"),
            "seed": attrs.get("seed"),
            "fail_reason": attrs.get("fail_reason"),
            "mlflow_run_id": attrs.get("mlflow_run_id"),
        })
    return pd.DataFrame(rows)


def best_by(table: pd.DataFrame, dimensions: list[str], direction: str) -> pd.DataFrame:
    """The best completed trial for each value of `dimensions` (overall best if none), with counts."""
    if table.empty:
        return table
    score = next(c for c in table.columns if c.startswith("best_") and c != "best_epoch")
    done = table[table["state"] == "COMPLETE"].dropna(subset=[score])
    keys = [d for d in dimensions if d in table.columns]
    if done.empty:
        return done
    order = done.sort_values(score, ascending=direction == "minimize")
    best = order.groupby(keys, sort=True).head(1) if keys else order.head(1)
    if keys:
        grouped = table.groupby(keys)["state"]
        best = best.merge(grouped.size().rename("trials").reset_index(), on=keys)
        best = best.merge(
            grouped.apply(lambda s: int((s == "FAIL").sum())).rename("failed").reset_index(), on=keys,
        ).sort_values(keys)
    else:
        best = best.assign(trials=len(table), failed=int((table["state"] == "FAIL").sum()))
    front = keys + ["trial", score] + [c for c in best.columns if c.startswith("test_")]
    rest = ["param_count", "seconds_per_epoch", "trials", "failed"]
    return best[front + [c for c in rest if c in best.columns]].reset_index(drop=True)


IMPORTANCE_EVALUATORS = {
    # Optuna 5's default: compares the parameter distribution of the top trials with all trials.
    "ped-anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    # Classic fANOVA on a random forest of (params -> objective); seeded for stable figures.
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
}


def param_importances(study_name: str, storage: str, evaluator: str = "fanova") -> dict[str, float]:
    """Normalised importance of each searched hyperparameter over the completed trials.

    Returns {} when fewer than two completed trials exist or nothing was searched; the evaluator
    is named by the caller because PED-ANOVA and fANOVA can rank parameters very differently.
    """
    study = _load(study_name, storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = {name for trial in complete for name in trial.params}
    if len(complete) < 2 or not searched:
        return {}
    try:
        found = optuna.importance.get_param_importances(study, evaluator=IMPORTANCE_EVALUATORS[evaluator]())
        return {name: float(value) for name, value in found.items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}  # e.g. every completed trial has the same value: importance is undefined
