"""Optuna's private parts this project relies on, each behind one small function or hook.

Checked against Optuna 5.1.0; `tests/test_private_apis.py` fails when one of them changes (then adapt
this module and widen the Optuna range in pyproject.toml). Optuna's own samplers and pruners use the
same names: a study's storage and ids (`Study._storage`, `Study._study_id`, `_trial_id` of a trial),
how samplers read a study's trials (`Study._get_trials(use_cache=)`), how Hyperband makes the study
of a bracket (`HyperbandPruner._create_bracket_study`), which RUNNING trials lost their heartbeat
(`RDBStorage._get_stale_trial_ids`) and the module of its database tables (`optuna.storages._rdb.models`).
One more is used by name only: `study.train.interrupts` holds a Ctrl-C back while a frame of
`optuna.study._tell` (the write that ends a trial) runs. Nothing else in the package uses a private
Optuna name.
"""

from __future__ import annotations

import contextlib
from typing import Any

import optuna


def storage_of(study: Any) -> optuna.storages.BaseStorage:
    """`Study._storage`: the storage behind a study, or behind a view of one (a pruner's, a bracket's)."""
    return study._storage


def study_id_of(study: Any) -> int:
    """`Study._study_id`: the study's id in its storage."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """`Trial._trial_id` or `FrozenTrial._trial_id`: the trial's id in its storage (unique across the
    storage's studies, unlike its number)."""
    return trial._trial_id


def trials_as_samplers_read_them(study: Any, deepcopy: bool, states: Any, use_cache: bool) -> list:
    """`Study._get_trials(deepcopy, states, use_cache=)`: a study's trials the way Optuna's own samplers
    (TPE) read them, from the study's cache when `use_cache`."""
    return study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)


class SamplersReadTrialsThrough:
    """For a stand-in of `optuna.Study` handed to samplers: TPE reads a study's trials through the
    private `Study._get_trials`, not `get_trials`, so a view that filters trials must answer that
    call too. A subclass gives its answer as `trials_for_samplers(deepcopy, states, use_cache)`."""

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
        return self.trials_for_samplers(deepcopy=deepcopy, states=states, use_cache=use_cache)

    def trials_for_samplers(self, deepcopy: bool, states: Any, use_cache: bool) -> list:
        raise NotImplementedError


class HyperbandWithBracketStudy(optuna.pruners.HyperbandPruner):
    """Optuna's Hyperband with the private `_create_bracket_study(study, bracket_id)`, which `prune`
    calls to make the study of a trial's bracket, open to subclasses as `bracket_study`."""

    def _create_bracket_study(self, study: Any, bracket_id: int) -> Any:
        return self.bracket_study(study, bracket_id)

    def bracket_study(self, study: Any, bracket_id: int) -> Any:
        """The study of bracket `bracket_id`, as Optuna makes it (built afresh from the storage)."""
        return super()._create_bracket_study(study, bracket_id)


def stale_trial_ids(storage: optuna.storages.RDBStorage, study: Any) -> set[int]:
    """`RDBStorage._get_stale_trial_ids(study_id)`: the ids of the study's RUNNING trials whose heartbeat
    is older than the grace period (the storage must have a heartbeat interval)."""
    return set(storage._get_stale_trial_ids(study_id_of(study)))


def import_rdb_storage_code() -> None:
    """Import `optuna.storages._rdb.models`, the code Optuna opens an RDB storage with (its tables).
    Skipped if Optuna renamed it: it is then imported when a storage is opened."""
    with contextlib.suppress(ImportError):
        import optuna.storages._rdb.models  # noqa: F401
