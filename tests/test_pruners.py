"""Pruners without training: the sweep file's pruner settings reach Optuna, a wrong one is refused
naming its field, old spellings keep their meaning, and under `budget: equal` a trial is judged only
against trials of its own compared value (a cell is never pruned for being a cell). Training is
scripted (`scripted_training`), so each test runs in seconds."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from study.spec.base import ConfigError
from study.spec.sweep_file import load_sweep, parse_config
from study.search.samplers import WithinValuePruner, make_pruner, make_sampler
from study.search.sweep import masked_config, run_sweep
from study.search.trial import sample_params

BASE = {"name": "p", "task": {"name": "digits"}, "trials": 4, "epochs": 9}


def _pruner(pruner, **extra):
    return make_pruner(parse_config({**BASE, **extra, "pruner": pruner}))


@pytest.mark.parametrize(("spec", "kind", "expected"), [
    ({"name": "median", "startup_trials": 2, "warmup_epochs": 3, "interval_epochs": 2, "min_trials": 4},
     optuna.pruners.MedianPruner,
     {"_n_startup_trials": 2, "_n_warmup_steps": 3, "_interval_steps": 2, "_n_min_trials": 4, "_percentile": 50.0}),
    ({"name": "percentile", "percentile": 40, "startup_trials": 0, "min_trials": 3},
     optuna.pruners.PercentilePruner, {"_percentile": 40.0, "_n_startup_trials": 0, "_n_min_trials": 3}),
    ({"name": "successive_halving", "warmup_epochs": 2, "reduction_factor": 4},
     optuna.pruners.SuccessiveHalvingPruner, {"_min_resource": 2, "_reduction_factor": 4}),
    ({"name": "hyperband", "warmup_epochs": 2, "reduction_factor": 2},
     optuna.pruners.HyperbandPruner, {"_min_resource": 2, "_max_resource": 9, "_reduction_factor": 2}),
    ({"name": "wilcoxon", "p_threshold": 0.2, "warmup_epochs": 4},
     optuna.pruners.WilcoxonPruner, {"_p_threshold": 0.2, "_n_startup_steps": 4}),
])
def test_the_sweep_files_pruner_settings_reach_the_optuna_pruner(spec, kind, expected):
    pruner = _pruner(spec)
    assert isinstance(pruner, kind)
    assert {name: getattr(pruner, name) for name in expected} == expected


def test_patience_wraps_the_pruner_it_names():
    pruner = _pruner({"name": "hyperband", "patience": 2, "min_delta": 0.01})
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert (pruner._patience, pruner._min_delta) == (2, 0.01)
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.HyperbandPruner)


@pytest.mark.parametrize(("spec", "kind", "expected"), [
    # Spellings of sweep files written before the settings were exposed mean what they meant then.
    ("median", optuna.pruners.MedianPruner, {"_n_startup_trials": 5, "_n_warmup_steps": 1, "_interval_steps": 1}),
    ({"name": "median", "warmup_epochs": 1, "startup_trials": 5, "percentile": 25},  # the old README example
     optuna.pruners.MedianPruner, {"_n_startup_trials": 5, "_n_warmup_steps": 1, "_percentile": 50.0}),
    ({"name": "percentile", "percentile": 25}, optuna.pruners.PercentilePruner, {"_percentile": 25.0}),
    ("successive_halving", optuna.pruners.SuccessiveHalvingPruner, {"_min_resource": 1, "_reduction_factor": 3}),
    ({"name": "hyperband", "warmup_epochs": 2}, optuna.pruners.HyperbandPruner,
     {"_min_resource": 2, "_max_resource": 9, "_reduction_factor": 3}),
    ({"name": "hyperband", "warmup_epochs": 0}, optuna.pruners.HyperbandPruner, {"_min_resource": 1}),
    ("none", optuna.pruners.NopPruner, {}),
])
def test_old_pruner_spellings_still_load_and_mean_the_same(spec, kind, expected):
    pruner = _pruner(spec)
    assert isinstance(pruner, kind)
    assert {name: getattr(pruner, name) for name in expected} == expected


@pytest.mark.parametrize(("pruner", "message"), [
    ("{name: hyperband, reduction_factor: 1}", "pruner.reduction_factor: Input should be greater than or equal to 2"),
    ("{name: median, reduction_factor: 2}",
     "pruner.reduction_factor: the median pruner does not use it; it is a setting of successive_halving, hyperband"),
    ("{name: hyperband, interval_epochs: 2}", "pruner.interval_epochs: the hyperband pruner does not use it"),
    ("{name: median, min_delta: 0.1}", "pruner.min_delta: only used with `patience`"),
    ("{name: none, patience: 2}", "pruner.patience: the none pruner does not use it"),
    ("{name: wilcoxon, p_threshold: 1.5}", "pruner.p_threshold: Input should be less than 1"),
    ("{name: median, min_trial: 2}", "pruner: unknown key"),
])
def test_a_wrong_pruner_setting_is_refused_naming_file_and_field(write_sweep, pruner, message):
    path = write_sweep(f"name: t\ntask: {{name: digits}}\ntrials: 2\nepochs: 3\npruner: {pruner}\n")
    with pytest.raises(ConfigError) as error:
        load_sweep(path)
    assert f"{path}: {message}" in str(error.value)


@pytest.mark.parametrize("name", ["none", "median", "percentile", "successive_halving", "hyperband", "wilcoxon"])
def test_a_recorded_config_loads_back_whatever_its_pruner(name):
    # A study records its config with every default spelled out (`masked_config`); reports,
    # replicates and resumes parse that record again, so a default is never "a setting it ignores".
    config = parse_config({**BASE, "pruner": name})
    recorded = json.loads(json.dumps(masked_config(config)))
    assert set(recorded["pruner"]) == set(config.pruner.model_fields)
    assert parse_config(recorded, source="a recorded config").pruner == config.pruner


def test_a_setting_at_its_default_is_accepted_with_any_pruner():
    # It changes nothing; only a value the pruner would ignore is refused.
    assert parse_config({**BASE, "pruner": {"name": "median", "reduction_factor": 3, "patience": None}})
    with pytest.raises(ConfigError, match="the median pruner does not use it"):
        parse_config({**BASE, "pruner": {"name": "median", "reduction_factor": 4}})


# --------------------------------------------------------------------------- within the compared value

CELLS_SWEEP = """
    name: {name}
    task: {{name: digits}}
    space:
      cell: {{role: scientific, choices: [SimpleRNN, LSTM]}}
      units: {{value: 8}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
    trials: 16
    epochs: 9
    budget: {budget}
    sampler: random
    log_models: false
    pruner: {pruner}
"""

PRUNERS = {
    "median": "{name: median, startup_trials: 1, warmup_epochs: 1}",
    "percentile": "{name: percentile, percentile: 40, startup_trials: 1}",
    "successive_halving": "{name: successive_halving, warmup_epochs: 1, reduction_factor: 3}",
    "hyperband": "{name: hyperband, warmup_epochs: 1, reduction_factor: 3}",
    "wilcoxon": "{name: wilcoxon, p_threshold: 0.1}",
}


def slow_cell(params: dict, seed: int, epoch: int) -> float:
    """A SimpleRNN that learns far more slowly than any LSTM; within each cell, the closer the
    learning rate to 3e-3 (log scale) the better, at every epoch (no noise)."""
    distance = abs(math.log10(params["learning_rate"]) - math.log10(3e-3))
    ceiling = {"SimpleRNN": 0.5, "LSTM": 0.95}[params["cell"]] - 0.1 * distance
    return ceiling * (1 - 0.7 ** epoch)


def _cells_config(pruner: str, budget: str = "equal", cells: str = "[SimpleRNN, LSTM]", trials: int = 16):
    text = CELLS_SWEEP.format(name="cells", budget=budget, pruner=PRUNERS[pruner])
    return parse_config(yaml.safe_load(text.replace("[SimpleRNN, LSTM]", cells).replace("trials: 16", f"trials: {trials}")))


def _scripted_search(config) -> pd.DataFrame:
    """The sweep's sampler and pruner on `slow_cell`, reported epoch by epoch as a trial does; one
    row per trial: cell, learning rate, state, epochs trained."""
    study = optuna.create_study(sampler=make_sampler(config), pruner=make_pruner(config), direction="maximize")
    rows = []

    def objective(trial):
        params = sample_params(trial, config)
        rows.append({"cell": params["cell"], "learning_rate": params["learning_rate"], "state": "COMPLETE"})
        for epoch in range(1, config.epochs + 1):
            rows[-1]["epochs"] = epoch
            trial.report(slow_cell(params, 0, epoch), epoch)
            if trial.should_prune():
                rows[-1]["state"] = "PRUNED"
                raise optuna.TrialPruned()
        return slow_cell(params, 0, config.epochs)

    study.optimize(objective, n_trials=config.trials)
    return pd.DataFrame(rows)


def _best_draw_per_cell(trials: pd.DataFrame) -> pd.DataFrame:
    """Each cell's best draw: the learning rate closest to 3e-3, the best at every epoch."""
    distance = (np.log10(trials["learning_rate"].astype(float)) - math.log10(3e-3)).abs()
    return trials.loc[distance.groupby(trials["cell"]).idxmin()].set_index("cell")


@pytest.mark.parametrize("pruner", list(PRUNERS))
def test_under_equal_budget_a_cell_is_never_pruned_for_being_a_cell(pruner):
    trials = _scripted_search(_cells_config(pruner))
    assert trials["cell"].value_counts().to_dict() == {"SimpleRNN": 8, "LSTM": 8}
    # Each cell's best draw completes: it is judged against its own cell only, where it leads.
    # Compared with every trial (the old behaviour), the SimpleRNN's best is pruned by the LSTMs.
    best = _best_draw_per_cell(trials)
    assert best.loc["SimpleRNN", "state"] == "COMPLETE" and best.loc["LSTM", "state"] == "COMPLETE"
    assert (trials["state"] == "PRUNED").any()  # pruning still works inside a cell


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "wilcoxon"])
def test_a_cell_is_pruned_as_if_the_other_cells_were_not_there(pruner):
    # The same SimpleRNN draws, alone in a study, are pruned at the very same epochs. (Not for
    # hyperband: its brackets are drawn from trial numbers, which differ between the two studies.)
    both = _scripted_search(_cells_config(pruner))
    alone = _scripted_search(_cells_config(pruner, cells="[SimpleRNN]", trials=8))
    simple = both[both["cell"] == "SimpleRNN"].reset_index(drop=True)
    assert list(simple["learning_rate"]) == list(alone["learning_rate"])  # paired draws: same rates, same order
    assert simple[["state", "epochs"]].equals(alone[["state", "epochs"]])


def test_a_grid_is_pruned_within_each_cell_too():
    # No equal-budget sampler records the value here: the pruner reads it from the trial's params.
    data = yaml.safe_load(CELLS_SWEEP.format(name="grid", budget="equal", pruner=PRUNERS["median"]))
    data["sampler"] = "grid"
    data["space"]["learning_rate"] = {"choices": [1e-3, 1.5e-3, 2e-3, 3e-3, 4e-3, 5e-3, 7e-3, 1e-2]}
    trials = _scripted_search(parse_config(data))
    best = _best_draw_per_cell(trials)
    assert best.loc["SimpleRNN", "state"] == "COMPLETE" and best.loc["LSTM", "state"] == "COMPLETE"
    assert (trials["state"] == "PRUNED").any()


def test_with_a_shared_budget_trials_are_judged_against_every_trial():
    # Shared budgets (no paired design to protect) keep comparing across cells: the slow cell's best
    # draw is pruned, as every cell's was under `budget: equal` before the within-value pruner.
    best = _best_draw_per_cell(_scripted_search(_cells_config("median", budget="shared")))
    assert best.loc["SimpleRNN", "state"] == "PRUNED" and best.loc["LSTM", "state"] == "COMPLETE"


def test_a_sweep_prunes_within_each_cell_end_to_end(write_sweep, stores, scripted_training):
    # Through `study sweep`'s own objective (trial.report / should_prune per epoch) and both stores.
    scripted_training(slow_cell)
    path = write_sweep(CELLS_SWEEP.format(name="within-e2e", budget="equal", pruner=PRUNERS["median"]))
    trials = run_sweep(load_sweep(path), **stores).trials
    best = _best_draw_per_cell(trials)
    assert best.loc["SimpleRNN", "state"] == "COMPLETE" and best.loc["LSTM", "state"] == "COMPLETE"
    pruned = trials[trials["state"] == "PRUNED"]
    assert len(pruned) > 0 and set(pruned["pruned_at_epoch"]) <= set(range(1, 9))


def test_the_within_value_pruner_wraps_only_equal_budgets_with_compared_values():
    space = {"cell": {"role": "scientific", "choices": ["GRU", "LSTM"]}, "learning_rate": {"low": 1e-3, "high": 1e-2}}
    equal = parse_config({**BASE, "space": space, "pruner": "hyperband"})
    assert isinstance(make_pruner(equal), WithinValuePruner) and make_pruner(equal).names == ["cell"]
    assert isinstance(make_pruner(equal, within_value=False), optuna.pruners.HyperbandPruner)
    grid = parse_config({**BASE, "space": {**space, "learning_rate": {"choices": [1e-3, 1e-2]}}, "sampler": "grid",
                         "pruner": "median"})
    assert isinstance(make_pruner(grid), WithinValuePruner)  # a grid gives every value the same points
    for config in ({**BASE, "space": space, "budget": "shared"},
                   {**BASE, "space": {"cell": {"choices": ["GRU", "LSTM"]}}}):  # nothing compared
        assert isinstance(make_pruner(parse_config({**config, "pruner": "median"})), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(parse_config({**BASE, "space": space})), optuna.pruners.NopPruner)


def test_the_pruning_benchmark_sweeps_load_and_its_settings_parse(monkeypatch):
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    monkeypatch.delitem(sys.modules, "pruning", raising=False)
    import pruning

    for path in sorted((benchmarks / "sweeps").glob("pruning*.yaml")):
        config = load_sweep(path).config
        for setting in pruning.parse_settings(pruning.DEFAULT_PRUNERS + pruning.SCREEN + pruning.SCREEN_ACROSS):
            parse_config({**config.model_dump(exclude={"pruner"}), "pruner": setting.pruner})
    cells = yaml.safe_load((benchmarks / "sweeps" / "pruning_cells.yaml").read_text()) | {"pruner": "median"}
    assert isinstance(make_pruner(parse_config(cells)), WithinValuePruner)  # the cell is compared there
    [within, across] = pruning.parse_settings(["hyperband:warmup_epochs=2,reduction_factor=4", "hyperband:across=true"])
    assert within.pruner == {"name": "hyperband", "warmup_epochs": 2, "reduction_factor": 4} and within.within_value
    assert across.pruner == {"name": "hyperband"} and not across.within_value and across.slug == "hyperband"
