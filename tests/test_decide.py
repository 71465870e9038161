"""Sweeps that run until decided (`decide:` / `--until-decided`): rounds of paired draws, a look
after each with confidence sequences, a stop once every pair is decided or at the cap, the flags
that ask for it, and the report naming the design. Scripted training: the search logic is tested."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from study.app.cli import app
from study.reporting.build import build_report
from study.search.sweep import run_sweep
from study.spec.base import ConfigError
from study.spec.sweep_file import load_sweep, until_decided

from tests.conftest import TINY_DIGITS


def gap_script(gaps: dict[str, float]):
    """A validation accuracy set by the learning rate (shared by the cells of a paired draw), the
    cell's true gap and a little seed noise: paired differences are the gaps, +-0.5 pp."""
    import math

    import numpy as np

    def script(params, seed, epoch):
        quality = 0.7 - 0.1 * abs(math.log10(params["learning_rate"]) + 2.5)
        return float(quality + gaps[params["cell"]] + np.random.default_rng([seed, epoch]).normal(0, 0.005))
    return script


def decide_sweep(write_sweep, name: str, decide: str, trials: int = 6) -> object:
    text = TINY_DIGITS.format(name=name, trials=trials, epochs=1) + "    " + decide
    return load_sweep(write_sweep(text, f"{name}.yaml"))


def test_a_clear_study_stops_as_soon_as_every_pair_is_decided(write_sweep, stores, scripted_training, tmp_path):
    trained = scripted_training(gap_script({"SimpleRNN": 0.0, "GRU": 0.10, "LSTM": 0.20}))
    sweep = decide_sweep(write_sweep, "decided", "decide: {max_trials: 90}\n")
    looks = []

    class Looks:
        def __getattr__(self, name):
            return (lambda look: looks.append(look)) if name == "decision_looked" else (lambda *a, **k: None)
    result = run_sweep(sweep, reporter=Looks(), **stores)
    assert result.decided and result.reached_target
    finished = len(trained)
    assert finished < 90 and finished % 3 == 0  # whole rounds, far below the cap
    assert looks[-1].decided and set(looks[-1].states.values()) == {"GRU better", "LSTM better"}
    assert all(not look.decided for look in looks[:-1])  # it stopped at the first look that decided
    assert looks[0].draws == 2  # the first look comes once the file's 6 trials have finished
    assert all((a.draws, a.states) != (b.draws, b.states) for a, b in zip(looks, looks[1:]))  # said once a round
    assert any(note.startswith(f"look after {looks[-1].draws} paired draws:") for note in result.notes)
    # The report rests on the same draws and names the design.
    report = build_report("decided", out=tmp_path / "report", formats="png", **stores)
    assert report.verdict.tiers == [["LSTM"], ["GRU"], ["SimpleRNN"]] and report.verdict.winner == "LSTM"
    assert "looked at after every round" in report.verdict.headline
    assert "95% confidence sequences excluding zero" in report.verdict.headline
    assert all("95% CS" in line for line in report.verdict.details)


def test_an_undecided_study_runs_to_its_cap_and_says_what_is_open(write_sweep, stores, scripted_training):
    trained = scripted_training(gap_script({"SimpleRNN": 0.0, "GRU": 0.004, "LSTM": 0.0}))
    sweep = decide_sweep(write_sweep, "capped", "decide: {max_trials: 12, margin: 0.001}\n")
    result = run_sweep(sweep, **stores)
    assert len(trained) == 12 and not result.decided and result.reached_target
    assert re.search(r"look after 4 paired draws: .*undecided.* \(stopped at the cap of 12 trials; a higher --max-trials", result.notes[-1])
    # Resuming with a higher cap continues from the 12 trials, not from zero.
    more = run_sweep(until_decided(sweep, False, 15), **stores)
    assert len(trained) == 15 and more.started == 3


def test_until_decided_flags_and_what_they_refuse(write_sweep, tiny_sweep, stores, scripted_training):
    plain = load_sweep(tiny_sweep("flags", trials=6))
    asked = until_decided(plain, True, None)
    assert asked.config.decide.max_trials == 24 and asked.config.decide.evidence == "paired"  # 4 x trials
    assert until_decided(plain, True, 30).config.decide.max_trials == 30
    assert until_decided(plain, False, None) is plain
    with pytest.raises(ConfigError, match="--max-trials: only with --until-decided"):
        until_decided(plain, False, 30)
    with pytest.raises(ConfigError, match="decide.max_trials: 3 is below trials: 6"):
        until_decided(plain, True, 3)
    tpe = write_sweep(TINY_DIGITS.format(name="tpe", trials=6, epochs=1).replace("sampler: random", "sampler: tpe")
                      + "    decide: {max_trials: 30}\n", "tpe.yaml")
    with pytest.raises(ConfigError, match=r"tpe.yaml: decide: paired evidence needs `sampler: random`"):
        load_sweep(tpe)
    # On the command line: one error line, before any training.
    trained = scripted_training()
    result = CliRunner().invoke(app, ["sweep", str(tiny_sweep("cli", trials=6)), "--until-decided", "--max-trials", "2",
                                      "--storage", stores["storage"], "--tracking-uri", stores["tracking_uri"]])
    assert result.exit_code == 2 and "decide.max_trials: 2 is below trials: 6" in result.output and not trained
