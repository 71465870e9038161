"""Retraining recorded trials: reruns reproduce their score; replicates use new seeds and resume."""

from __future__ import annotations

import re
import textwrap

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from study.app.cli import app
from study.search.replicate import replicate_best, rerun_trial
from study.search.sweep import run_sweep
from study.spec.sweep_file import load_sweep
from study.store.stores import Stores


SWEEP = textwrap.dedent("""
    name: replicated
    task: {name: digits}
    space:
      cell: {role: scientific, choices: [GRU, LSTM]}
      units: {value: 8}
      learning_rate: {low: 3.0e-3, high: 1.0e-2, log: true}
    trials: 4
    epochs: 2
    batch_size: 128
    sampler: random
""")


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, shared_tracking_uri):
    # One small sweep shared by this module's tests: retraining is what they test, not searching.
    folder = tmp_path_factory.mktemp("replicate")
    stores = {"storage": f"sqlite:///{folder}/optuna.db", "tracking_uri": shared_tracking_uri}
    path = folder / "replicated.yaml"
    path.write_text(SWEEP)
    result = run_sweep(load_sweep(path), **stores)
    return result, stores


def test_rerun_reproduces_the_recorded_validation_score(finished_sweep):
    result, stores = finished_sweep
    rerun = rerun_trial("replicated", 1, Stores(**stores))
    recorded = result.trials.set_index("trial").loc[1, "best_val_accuracy"]
    assert rerun.recorded == pytest.approx(recorded)
    # Same params, seed and data: only TensorFlow's kernels may differ (op determinism stays off,
    # since Keras turns XLA off with it), so the rerun comes within 0.5 pp; on CPU usually exactly.
    assert abs(rerun.difference) <= 0.005

    client = MlflowClient(stores["tracking_uri"])
    run = client.get_run(rerun.run_id)
    assert run.data.tags["run_role"] == "rerun" and run.data.tags["rerun_of_trial"] == "1"
    assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert run.data.metrics["recorded_val_accuracy"] == pytest.approx(recorded)


def test_replicates_use_new_seeds_per_compared_value_and_resume(tmp_path, shared_tracking_uri, scripted_training):
    # Which seeds run and which are skipped is bookkeeping: a scripted training shows it in seconds.
    scripted_training()
    stores = {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking_uri": shared_tracking_uri}
    path = tmp_path / "replicated-scripted.yaml"
    path.write_text(SWEEP.replace("name: replicated", "name: replicated-scripted"))
    result = run_sweep(load_sweep(path), **stores)
    made = replicate_best("replicated-scripted", 2, None, Stores(**stores))
    best_trials = set(result.best["trial"])
    assert {r.trial for r in made} == best_trials and len(made) == 2 * len(best_trials)
    trial_seeds = set(result.trials["seed"])
    assert len({r.seed for r in made}) == len(made) and not {r.seed for r in made} & trial_seeds

    assert replicate_best("replicated-scripted", 2, None, Stores(**stores)) == []  # already tracked: nothing new
    more = replicate_best("replicated-scripted", 3, None, Stores(**stores))
    assert len(more) == len(best_trials)  # only the third seed of each

    client = MlflowClient(stores["tracking_uri"])
    runs = client.search_runs([result.experiment_id], filter_string="tags.run_role = 'replicate'")
    assert len(runs) == 3 * len(best_trials)
    assert all(r.info.status == "FINISHED" and "best_val_accuracy" in r.data.metrics for r in runs)


def test_rerun_command_prints_the_difference(finished_sweep):
    _, stores = finished_sweep
    out = CliRunner().invoke(app, ["rerun", "replicated", "0", "--storage", stores["storage"],
                                   "--tracking-uri", stores["tracking_uri"]])
    assert out.exit_code == 0, out.output
    printed = re.search(r"recorded val_accuracy (\d\.\d{4}), rerun (\d\.\d{4}), difference ([+-]\d+\.\d\d) pp",
                        out.output)
    assert printed, out.output
    recorded, rerun, difference = map(float, printed.groups())
    assert difference == pytest.approx((rerun - recorded) * 100, abs=0.01) and abs(difference) <= 0.5

    missing = CliRunner().invoke(app, ["rerun", "replicated", "99", "--storage", stores["storage"],
                                       "--tracking-uri", stores["tracking_uri"]])
    assert missing.exit_code == 2 and "has no trial 99" in missing.output


def test_report_shows_replicate_statistics_and_pairwise_sentences(finished_sweep, tmp_path, scripted_training):
    from study.reporting.build import build_report
    from study.store.tracking import load_runs

    _, stores = finished_sweep
    scripted_training()  # the replicates' statistics are what is tested, not their training
    replicate_best("replicated", 3, None, Stores(**stores))
    result = build_report("replicated", out=tmp_path / "report", formats="png", **stores)

    summary = pd.read_csv(tmp_path / "report" / "tables" / "replicates.csv").set_index("cell")
    runs = load_runs(stores["tracking_uri"], "replicated", role="replicate")
    for cell, group in runs.groupby("params.cell"):
        assert summary.loc[cell, "n"] == len(group) == 3
        assert summary.loc[cell, "mean"] == pytest.approx(group["metrics.best_val_accuracy"].mean(), abs=1e-4)
        assert summary.loc[cell, "param_count"] > 0
    comparisons = pd.read_csv(tmp_path / "report" / "tables" / "comparisons.csv")
    assert len(comparisons) == 1 and {"p", "p_holm", "ci_low", "ci_high"} <= set(comparisons.columns)
    page = (tmp_path / "report" / "report.md").read_text()
    assert re.search(r"(GRU vs LSTM|LSTM vs GRU): [+-]\d+\.\d pp \(95% CI", page)
    assert "after Holm" in page and "Budget: equal" in page
    assert result.parent_run_id is not None


def test_run_sweep_replicates_as_the_sweep_file_asks_and_a_worker_leaves_it_to_the_sweep(
        tmp_path, shared_tracking_uri, scripted_training):
    scripted_training()
    stores = {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking_uri": shared_tracking_uri}
    path = tmp_path / "replicated-by-file.yaml"
    path.write_text(SWEEP.replace("name: replicated", "name: replicated-by-file") + "replicates: 2\n")

    as_worker = run_sweep(load_sweep(path), replicate=False, **stores)  # what `study worker` does
    assert as_worker.reached_target and as_worker.replicates == []

    result = run_sweep(load_sweep(path), **stores)  # the same file again: no trial left, then replicates
    assert result.started == 0
    best = set(result.best["trial"])
    assert len(best) == 2 and sorted(r.trial for r in result.replicates) == sorted([*best, *best])
    assert {r.role for r in result.replicates} == {"replicate"}
    assert run_sweep(load_sweep(path), **stores).replicates == []  # already tracked: nothing new


def test_replicate_refuses_an_unknown_dimension_and_a_study_with_nothing_completed(tmp_path, shared_tracking_uri,
                                                                                   scripted_training):
    stores = {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking_uri": shared_tracking_uri}
    path = tmp_path / "replicated-refusals.yaml"
    path.write_text(SWEEP.replace("name: replicated", "name: replicated-refusals"))
    scripted_training(lambda params, seed, epoch: float("nan"))  # every trial fails, as a NaN loss would
    run_sweep(load_sweep(path), **stores)
    with pytest.raises(ValueError, match=r"'replicated-refusals' has no completed trial to replicate \(\d+ fail"):
        replicate_best("replicated-refusals", 1, None, Stores(**stores))
    scripted_training()
    run_sweep(load_sweep(path), trials=8, **stores)
    with pytest.raises(ValueError, match=r"cannot compare by 'nonexist': not a hyperparameter .* choose from cell"):
        replicate_best("replicated-refusals", 1, ["nonexist"], Stores(**stores))
    # From the command line: one error line, exit 2, nothing trained.
    done = CliRunner().invoke(app, ["replicate", "replicated-refusals", "--seeds", "1", "--compare", "nonexist",
                                    "--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"]])
    assert done.exit_code == 2 and "error: cannot compare by 'nonexist'" in done.output, done.output
