"""Samplers and pruners: how each trial's hyperparameters are drawn, and when a trial is stopped early.

Draws are seeded per trial from (sweep seed, trial number), so any number of workers sharing a
study never repeat each other (`PerTrialSampler`). With `budget: equal`, `EqualBudgetSampler`
gives every value of the scientific hyperparameters the same number of trials and the same
nuisance draws: a paired design, the subtlest code of the project; and `WithinValuePruner` judges
each trial only against trials of its own value, so pruning cannot undo that equal budget.

It relies on private parts of Optuna, as Optuna's own samplers do, all through
`study.store.optuna_private`: a study's storage and ids (to record a trial's assigned value as a
system attribute when it is created, and to count every trial of the study, not a pruner's view of
it), how TPE reads the trials of the study view it is given, and how Hyperband makes a bracket's
study (overridden so a bracket keeps a pruner's view). The Optuna range in pyproject.toml is pinned
for that, and `tests/test_private_apis.py` fails if they change.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.spec.seeds import sampler_seed
from study.spec.sweep_file import SweepConfig
from study.store.optuna_private import (
    HyperbandWithBracketStudy, SamplersReadTrialsThrough, storage_of, study_id_of, trial_id_of,
    trials_as_samplers_read_them,
)

def make_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    """The sweep's sampler, safe to run in many processes at once.

    A seeded Optuna sampler draws from one random stream per process, so workers started with the
    same seed would draw the same configurations. Here random and TPE draws are seeded per trial
    instead (see `PerTrialSampler`); the grid picks its point when the trial is created, under the
    study lock, skipping points other workers are running; QMC numbers its points in the storage.
    """
    if config.sampler == "grid":
        grid = {name: hp.grid_values() for name, hp in config.searched.items()}
        return optuna.samplers.GridSampler(grid, seed=config.seed)
    if config.uses_equal_budget:
        values = {name: config.hyperparameters[name].grid_values() for name in config.scientific}
        return EqualBudgetSampler(values, lambda key: _keyed_sampler(config, key))
    return PerTrialSampler(lambda key: _keyed_sampler(config, key))


def _keyed_sampler(config: SweepConfig, key: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler of the sweep's kind for draw number `key`."""
    if config.sampler == "qmc":
        # One low-discrepancy sequence per study: its points are numbered in the storage, so every
        # draw uses the sweep's seed and the next free number.
        return optuna.samplers.QMCSampler(seed=config.seed)
    seed = sampler_seed(config.seed, key)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


class PerTrialSampler(optuna.samplers.BaseSampler):
    """Draws each trial with a fresh sampler seeded from (sweep seed, trial number).

    Trial k gets the same configuration whichever worker runs it (for TPE: given the same finished
    trials), and no two trials share a random stream, so parallel workers never repeat each other.
    """

    def __init__(self, make_sampler: Callable[[int], optuna.samplers.BaseSampler]):
        self.make_sampler = make_sampler
        self._samplers: dict[int, optuna.samplers.BaseSampler] = {}  # trial number -> its sampler

    def _sampler(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if trial.number not in self._samplers:
            self._samplers[trial.number] = self.make_sampler(trial.number)
        return self._samplers[trial.number]

    def before_trial(self, study, trial):
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)


EQUAL_BUDGET_ATTR = "equal_budget"  # trial system attribute: {"value": [scientific values], "index": k}


class EqualBudgetSampler(optuna.samplers.BaseSampler):
    """Gives every value of the scientific hyperparameters the same number of trials, and tunes
    each value's nuisance hyperparameters with its own sampler (same kind, same seeds).

    An adaptive sampler left alone spends most of a budget on whichever cell leads early, and its
    model of a good learning rate mixes all cells. Here each new trial is assigned the scientific
    value with the fewest trials so far (failed ones are replaced), and its nuisance values come
    from a sampler that only sees that value's trials. The k-th trial of every value is drawn with
    the same seed, so the values' random draws are identical: a paired design.

    The assignment is made when the trial is created (under the study lock) and stored on the
    trial, so workers that create trials one after the other see each other's assignments.
    """

    def __init__(self, values: dict[str, list[Any]], make_sampler: Callable[[int], optuna.samplers.BaseSampler]):
        self.names = list(values)
        self.combos = [tuple(combo) for combo in itertools.product(*values.values())]
        self.make_sampler = make_sampler
        self._trials: dict[int, tuple[tuple, optuna.samplers.BaseSampler]] = {}  # trial number -> value, sampler

    def before_trial(self, study, trial):
        combo, sampler = self._assigned(study, trial)
        sampler.before_trial(_TrialsOfValue(study, self.names, combo), trial)

    def infer_relative_search_space(self, study, trial):
        combo, sampler = self._assigned(study, trial)
        space = sampler.infer_relative_search_space(_TrialsOfValue(study, self.names, combo), trial)
        return {name: dist for name, dist in space.items() if name not in self.names}

    def sample_relative(self, study, trial, search_space):
        combo, sampler = self._assigned(study, trial)
        return sampler.sample_relative(_TrialsOfValue(study, self.names, combo), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        combo, sampler = self._assigned(study, trial)
        if param_name in self.names:
            return combo[self.names.index(param_name)]
        return sampler.sample_independent(_TrialsOfValue(study, self.names, combo), trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        combo, sampler = self._assigned(study, trial)
        sampler.after_trial(_TrialsOfValue(study, self.names, combo), trial, state, values)
        self._trials.pop(trial.number, None)

    def _assigned(self, study, trial: FrozenTrial) -> tuple[tuple, optuna.samplers.BaseSampler]:
        if trial.number not in self._trials:
            recorded = trial.system_attrs.get(EQUAL_BUDGET_ATTR)  # first seen in before_trial: read fresh
            if recorded is None:
                recorded = self._assign(study, trial)
                storage_of(study).set_trial_system_attr(trial_id_of(trial), EQUAL_BUDGET_ATTR, recorded)
            self._trials[trial.number] = (tuple(recorded["value"]), self.make_sampler(recorded["index"]))
        return self._trials[trial.number]

    def _assign(self, study, trial: FrozenTrial) -> dict[str, Any]:
        # From the storage, not `study`: a Hyperband pruner hands samplers a view of one bracket.
        others = [t for t in storage_of(study).get_all_trials(study_id_of(study), deepcopy=False)
                  if t.number != trial.number]
        fixed = trial.system_attrs.get("fixed_params", {})  # an enqueued configuration
        if all(name in fixed for name in self.names):
            combo = tuple(fixed[name] for name in self.names)
        else:
            counts = collections.Counter(
                scientific_value(t, self.names) for t in others
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            )
            combo = min(self.combos, key=lambda c: (counts[c], self.combos.index(c)))
        # Draw number k of this value: every earlier trial of it counts, failed ones included, so a
        # replacement gets a new draw rather than the one that failed.
        index = sum(1 for t in others if t.number < trial.number and scientific_value(t, self.names) == combo)
        return {"value": list(combo), "index": index}


def scientific_value(trial: FrozenTrial, names: list[str]) -> tuple:
    """The scientific values of a trial: as assigned when it was created, else from its params."""
    recorded = trial.system_attrs.get(EQUAL_BUDGET_ATTR)
    if recorded is not None:
        return tuple(recorded["value"])
    return tuple(trial.params.get(name) for name in names)


class _TrialsOfValue(SamplersReadTrialsThrough):
    """A read-only view of a study that shows a sampler or a pruner only the trials of one scientific value."""

    def __init__(self, study: optuna.Study, names: list[str], combo: tuple):
        self._study, self._names, self._combo = study, names, combo

    def __getattr__(self, attribute):
        return getattr(self._study, attribute)

    def _matches(self, trial: FrozenTrial) -> bool:
        return scientific_value(trial, self._names) == self._combo

    def get_trials(self, deepcopy=True, states=None):
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if self._matches(t)]

    def trials_for_samplers(self, deepcopy=True, states=None, use_cache=False):
        return [t for t in trials_as_samplers_read_them(self._study, deepcopy, states, use_cache) if self._matches(t)]

    @property
    def trials(self):
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        """The best completed trial of this value (what the Wilcoxon pruner compares with)."""
        complete = self.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise ValueError("no trial of this value has completed yet")
        pick = max if self._study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        return pick(complete, key=lambda t: t.value)

    def over(self, study) -> _TrialsOfValue:
        """The same view over another study (a Hyperband bracket of this one)."""
        return _TrialsOfValue(study, self._names, self._combo)


def make_pruner(config: SweepConfig, within_value: bool | None = None) -> optuna.pruners.BasePruner:
    """The sweep's pruner, from its `pruner` settings; steps are epochs (counted from 1).

    With `budget: equal` and compared hyperparameters the pruner is wrapped in a
    `WithinValuePruner`, so a trial is judged only against trials of its own compared value;
    `within_value=False` turns that off (for benchmarks that measure what it changes).
    """
    settings = config.pruner
    if settings.name == "none":
        return optuna.pruners.NopPruner()
    if settings.name == "median":
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_epochs,
            interval_steps=settings.interval_epochs, n_min_trials=settings.min_trials,
        )
    elif settings.name == "percentile":
        pruner = optuna.pruners.PercentilePruner(
            settings.percentile, n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_epochs,
            interval_steps=settings.interval_epochs, n_min_trials=settings.min_trials,
        )
    elif settings.name == "successive_halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, settings.warmup_epochs), reduction_factor=settings.reduction_factor,
        )
    elif settings.name == "hyperband":
        pruner = _Hyperband(
            min_resource=max(1, settings.warmup_epochs), max_resource=config.epochs,
            reduction_factor=settings.reduction_factor,
        )
    else:  # wilcoxon: the trial's epochs against the best trial's same epochs, a signed-rank test
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=settings.p_threshold, n_startup_steps=settings.warmup_epochs)
    if settings.patience is not None:
        pruner = optuna.pruners.PatientPruner(pruner, patience=settings.patience, min_delta=settings.min_delta)
    names = compared_within(config) if within_value is not False else []
    return WithinValuePruner(pruner, names) if names else pruner


def compared_within(config: SweepConfig) -> list[str]:
    """The compared hyperparameters a pruner judges within: the scientific ones under `budget: equal`
    (paired draws, grids and configurations alike), none under `budget: shared`."""
    return config.scientific if config.budget == "equal" else []


class WithinValuePruner(optuna.pruners.BasePruner):
    """Judges a trial only against the trials of its own compared value (e.g. its cell).

    A pruner that compares every trial with every other stops the trials of a value that learns
    slowly, or just differently, at the start (a SimpleRNN beside LSTMs), whatever their nuisance
    values: the value is then pruned for being that value and loses its equal budget. Here the
    wrapped Optuna pruner sees a view of the study holding only the trials with the same compared
    values (`_TrialsOfValue`), so medians, percentiles, rungs and the best trial are per value.
    """

    def __init__(self, pruner: optuna.pruners.BasePruner, names: list[str]):
        self.pruner, self.names = pruner, list(names)

    def prune(self, study, trial):
        return self.pruner.prune(_TrialsOfValue(study, self.names, scientific_value(trial, self.names)), trial)


class _Hyperband(HyperbandWithBracketStudy):
    """Optuna's Hyperband, except that a bracket of a study view is that view of the bracket.

    `HyperbandPruner` builds each bracket's study afresh from the storage, so handed a
    `_TrialsOfValue` view it would compare a trial with its whole bracket, every value included.
    Outside a view (the Hyperband samplers see, or no compared values) it is Optuna's own.
    """

    def bracket_study(self, study, bracket_id):
        bracket = super().bracket_study(study, bracket_id)
        return study.over(bracket) if isinstance(study, _TrialsOfValue) else bracket
