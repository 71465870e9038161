"""Samplers without training: per-trial draws, equal budgets with random and TPE, and how Optuna's
pruners read the study they are handed, which the within-value pruner relies on (pruner behaviour
itself: tests/test_pruners.py; the private Optuna APIs: tests/test_private_apis.py). The objectives
are scripted (a formula of the drawn hyperparameters), so every test here runs in seconds."""

from __future__ import annotations

import inspect
import math

import optuna
import pytest
from optuna.trial import TrialState

from study.spec.sweep_file import parse_config
from study.search.samplers import EQUAL_BUDGET_ATTR, make_sampler
from study.search.trial import sample_params

CELLS = ("SimpleRNN", "GRU", "LSTM")
# The scripted objective's best learning rate per cell: far apart on the log scale.
BEST_RATE = {"SimpleRNN": 1e-4, "GRU": 1e-2, "LSTM": 1e-3}


def _config(sampler: str, trials: int, budget: str = "equal", name: str = "scripted"):
    return parse_config({
        "name": name, "task": {"name": "digits"}, "trials": trials, "epochs": 1, "sampler": sampler,
        "budget": budget, "seed": 7,
        "space": {"cell": {"role": "scientific", "choices": list(CELLS)},
                  "learning_rate": {"low": 1e-5, "high": 1e-1, "log": True}},
    })


def _scripted_study(config, storage: str | None = None) -> tuple[optuna.Study, list[dict]]:
    """Run `config.trials` trials of a scripted objective: the closer the learning rate to its
    cell's best rate (log scale), the higher the score."""
    study = optuna.create_study(study_name=config.name, storage=storage, sampler=make_sampler(config),
                                direction="maximize", load_if_exists=True)
    draws = []

    def objective(trial: optuna.Trial) -> float:
        params = sample_params(trial, config)
        draws.append(params)
        return -abs(math.log10(params["learning_rate"]) - math.log10(BEST_RATE[params["cell"]]))

    study.optimize(objective, n_trials=config.trials)
    return study, draws


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_equal_budget_gives_each_cell_the_same_trials_and_paired_start_up_draws(sampler):
    config = _config(sampler, trials=12)
    _, draws = _scripted_study(config)
    rates = {cell: [d["learning_rate"] for d in draws if d["cell"] == cell] for cell in CELLS}
    assert [len(r) for r in rates.values()] == [4, 4, 4]
    # Random draws, and TPE's random start-up, use the same seeds for the k-th trial of each cell.
    assert rates["SimpleRNN"] == rates["GRU"] == rates["LSTM"]
    assert len(set(rates["GRU"])) == 4


def test_equal_budget_with_tpe_tunes_each_cell_on_its_own_trials():
    # 30 trials per cell: 10 of TPE's random start-up, then 20 guided by that cell's trials alone.
    config = _config("tpe", trials=90)
    _, draws = _scripted_study(config)
    for cell in CELLS:
        guided = [d["learning_rate"] for d in draws if d["cell"] == cell][10:]
        assert len(guided) == 20
        # Each cell's guided draws settle near its own best rate; a TPE that saw every cell's trials
        # would pull them towards the overall leader instead.
        median = sorted(guided)[len(guided) // 2]
        assert abs(math.log10(median) - math.log10(BEST_RATE[cell])) < 0.75, (cell, median)


def test_equal_budget_replacement_of_a_failed_trial_stays_in_its_cell():
    config = _config("random", trials=4)
    study = optuna.create_study(sampler=make_sampler(config), direction="maximize")
    failed = study.ask()
    cell = sample_params(failed, config)["cell"]
    study.tell(failed, state=TrialState.FAIL)
    replacement = study.ask()
    assert sample_params(replacement, config)["cell"] == cell
    assert study.trials[-1].system_attrs[EQUAL_BUDGET_ATTR]["index"] == 1  # a new draw, not the failed one


def _draws_of_workers(config, storage_url: str, workers: int, rounds: int) -> dict[int, dict]:
    """Params by trial number when `workers` processes (each its own sampler) share one study and
    create their trials in turn, each while the others' are still running."""
    storage = optuna.storages.RDBStorage(storage_url)
    studies = [optuna.create_study(study_name="shared", storage=storage, sampler=make_sampler(config),
                                   load_if_exists=True) for _ in range(workers)]
    draws = {}
    for _ in range(rounds):
        trials = [s.ask() for s in studies]
        for trial in trials:
            draws[trial.number] = sample_params(trial, config)
        for s, trial in zip(studies, trials):
            s.tell(trial, draws[trial.number]["learning_rate"])
    return draws


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_parallel_workers_never_repeat_a_draw_and_match_one_process(tmp_path, sampler):
    config = _config(sampler, trials=8, budget="shared")
    two = _draws_of_workers(config, f"sqlite:///{tmp_path}/two.db", workers=2, rounds=4)
    one = _draws_of_workers(config, f"sqlite:///{tmp_path}/one.db", workers=1, rounds=8)
    # A sampler seeded once per process would give both workers the same stream (4 distinct rates).
    assert len({d["learning_rate"] for d in two.values()}) == 8
    # Trial k is drawn the same whichever process runs it (TPE's first 8 trials are its random start-up).
    assert two == one


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_parallel_workers_keep_the_equal_budget_and_its_paired_draws(tmp_path, sampler):
    config = _config(sampler, trials=12)
    draws = _draws_of_workers(config, f"sqlite:///{tmp_path}/o.db", workers=2, rounds=6).values()
    rates = {cell: sorted(d["learning_rate"] for d in draws if d["cell"] == cell) for cell in CELLS}
    assert [len(r) for r in rates.values()] == [4, 4, 4]
    assert rates["SimpleRNN"] == rates["GRU"] == rates["LSTM"]  # paired across cells
    assert len(set(rates["GRU"])) == 4  # and never repeated within a cell




def test_optunas_pruners_read_the_study_they_are_handed_through_its_public_methods():
    """If this fails, a new Optuna changed how pruners read the study they are handed, which
    `WithinValuePruner` relies on: adapt study.search.samplers, then widen the Optuna range in pyproject.toml.
    (Hyperband, which builds a bracket's study from the storage: tests/test_private_apis.py.)"""
    # Pruners read trials only through the study object they get: a view can filter them there.
    for pruner, call in [(optuna.pruners.PercentilePruner, "study.get_trials("),  # also the median pruner's
                         (optuna.pruners.SuccessiveHalvingPruner, "study.get_trials("),
                         (optuna.pruners.WilcoxonPruner, "study.best_trial")]:
        assert call in inspect.getsource(pruner.prune), pruner
    assert issubclass(optuna.pruners.MedianPruner, optuna.pruners.PercentilePruner)
