"""Refusing a sweep before it writes anything: a space whose largest model is too large to train,
and a study whose Optuna store lost trials that MLflow still has.

`study.search.sweep.open_sweep` runs both checks before it creates or resumes anything: the model
size once the data is loaded (a count made without building a model), the lost history under the
study's lock, against what both stores hold.
"""

from __future__ import annotations

import os
from typing import Any

import optuna
import sqlalchemy

from study.spec.base import ConfigError, shown
from study.spec.sweep_file import SweepConfig
from study.store.locations import StoreError, mask_password, store_problem
from study.train.sizes import model_spec, parameter_count


MAX_PARAMS_ENV = "RNN_STUDY_MAX_PARAMS"  # the largest model a sweep may train without a word
DEFAULT_MAX_PARAMS = 20_000_000  # ~20x the shipped sweeps' largest; an LSTM of 4096 units x 8 layers has 1.07 billion


def largest_model(config: SweepConfig, data) -> tuple[int, dict[str, Any]]:
    """The parameter count of the largest model the sweep can draw, and its hyperparameters.

    A model grows with units, depth, dense units, embedding width and a second direction, and from
    SimpleRNN to GRU to LSTM; so the largest is among each cell at the top of every searched range
    (or one of the sweep's `configurations`). With `param_budget` every model is sized to the budget.
    """
    spec = model_spec(data)
    if config.param_budget is not None:
        return config.param_budget, {"param_budget": config.param_budget}
    sized = [(parameter_count(spec, params), params) for params in _largest_candidates(config)]
    return max(sized, key=lambda pair: pair[0])


def _largest_candidates(config: SweepConfig) -> list[dict[str, Any]]:
    top = config.fixed_params()
    for name, hp in config.searched.items():
        values = list(hp.choices) if hp.choices is not None else [hp.low, hp.high]
        top[name] = max(values, key=lambda v: (v is True, v if isinstance(v, (int, float)) else 0))
    cells = config.searched["cell"].choices if "cell" in config.searched else [top.get("cell", "LSTM")]
    candidates = [{**top, "cell": cell} for cell in cells]
    return candidates + [{**top, **configuration} for configuration in config.configurations]


def check_model_size(config: SweepConfig, data, source: str) -> None:
    """Refuse a space whose largest model is above `RNN_STUDY_MAX_PARAMS` (default 20 million)."""
    raw = os.environ.get(MAX_PARAMS_ENV, "").strip().replace("_", "")
    if raw and not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{MAX_PARAMS_ENV}={shown(raw)}: use a whole number of parameters")
    limit = int(raw) if raw else DEFAULT_MAX_PARAMS
    count, params = largest_model(config, data)
    if count > limit:
        described = " ".join(f"{k}={params[k]}" for k in ("cell", "units", "depth", "bidirectional", "dense_units",
                                                            "embedding_dim", "param_budget") if k in params)
        raise ConfigError(
            f"{source}: the largest model this space allows has {count:,} parameters ({described}), above the "
            f"limit of {limit:,}: it could train for hours and not fit in memory. Narrow the space, or raise the "
            f"limit: {MAX_PARAMS_ENV}={count}"
        )


def refuse_lost_history(name: str, storage: optuna.storages.RDBStorage, storage_url: str, tracking: str) -> None:
    """Refuse a study whose Optuna store lost trials that MLflow still has (a 0-byte or replaced
    optuna.db): going on would start the study again under its old MLflow runs, trial-0000 twice.

    MLflow is read first: a trial run exists only once its Optuna trial does, so a trial that
    another worker starts meanwhile is never taken for a lost one.
    """
    from study.store.tracking import tracked_trial_numbers

    try:
        tracked = tracked_trial_numbers(tracking, name)
    except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot track"
        raise StoreError(store_problem("tracking URI", tracking, err)) from None
    if not tracked:
        return
    try:
        known = {t.number for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)} \
            if name in optuna.get_all_study_names(storage) else set()
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise StoreError(store_problem("storage", storage_url, err)) from None
    lost = sorted(tracked - known)
    if lost:
        shown = ", ".join(map(str, lost[:10])) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
        raise StoreError(
            f"study {name!r}: the Optuna storage {mask_password(storage_url)} has no record of trial(s) {shown} "
            f"that MLflow ({mask_password(tracking)}) holds: the Optuna store was emptied or replaced. Restore it "
            f"or pass the --storage that holds it, or give the sweep a new `name`; `study doctor {name}` "
            "compares the two stores"
        )
