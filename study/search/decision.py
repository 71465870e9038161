"""Run until decided: the look a sweep with `decide:` (or `study sweep --until-decided`) takes after
every round, and whether it may stop.

A round is one paired draw: a trial of every compared value on the same nuisance values (what
`budget: equal` with the random sampler gives). After the file's first `trials`, the sweep looks
at the complete draws before it claims each new trial; once every pair of compared values is
decided (one better, or equivalent within the margin) it stops claiming, and otherwise it runs on
to `decide.max_trials`. The looks use anytime-valid confidence sequences
(`study.analysis.sequential`), so looking after every round does not inflate the error rate. The
state of a look is read from the stores alone, so workers agree on it and a resumed sweep
continues where it stopped. With `evidence: replicates` a round is one new seed for each value's
best configuration once the search is done, looked at on the replicates paired by seed index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from study.analysis import sequential, stats
from study.analysis.scoring import value_order
from study.analysis.verdict import ALPHA, paired_draws, replicate_draws
from study.analysis.wording import difference
from study.spec.sweep_file import SweepConfig


@dataclass
class Look:
    """One look: the complete paired draws, each pair's state, and whether every pair is decided."""

    draws: int
    states: dict[str, str] = field(default_factory=dict)  # "GRU vs LSTM" -> "GRU better", "equivalent", ...
    decided: bool = False
    finished: int = -1  # the study's finished trials when it was taken (a sweep looks again when this grows)
    observations: str = "paired draws"  # or "replicates per value"

    def text(self, capped_at: int | None = None) -> str:
        """'look after 6 paired draws: GRU vs LSTM: undecided; GRU vs SimpleRNN: GRU better (going on)';
        `capped_at`: the sweep spent its `max_trials` with pairs still open."""
        pairs = "; ".join(f"{pair}: {state}" for pair, state in self.states.items()) or "too few to look at"
        verdict = ("every pair decided, stopping" if self.decided else
                   f"stopped at the cap of {capped_at} trials; a higher --max-trials goes on" if capped_at else "going on")
        return f"look after {self.draws} {self.observations}: {pairs} ({verdict})"


def look(config: SweepConfig, trials: pd.DataFrame) -> Look:
    """The look of a `decide:` sweep on the study's trials table (`study.store.trials.trials_table`)."""
    by, score = config.scientific[0], f"best_{config.objective.metric}"
    if trials.empty or by not in trials or score not in trials:
        return Look(0)
    order = value_order(trials, by, config)
    nuisance = [name for name in config.searched if name != by and name in trials]
    return _look(config, paired_draws(trials, by, score, nuisance, order), order, "paired draws")


def look_at_replicates(config: SweepConfig, replicates: pd.DataFrame, order: list) -> Look:
    """The look of a `decide: {evidence: replicates}` sweep on its replicate runs, paired by seed index."""
    by, score = config.scientific[0], f"best_{config.objective.metric}"
    return _look(config, replicate_draws(replicates, by, score, order), order, "replicates per value")


def _look(config: SweepConfig, draws: pd.DataFrame, order: list, observations: str) -> Look:
    score = f"best_{config.objective.metric}"
    maximize = config.objective.direction == "maximize"
    if len(draws) < 2 or len(order) < 2:
        return Look(len(draws), observations=observations)
    margin = config.study_margin if config.study_margin is not None else stats.default_margin(score)
    table = sequential.look(draws[order], order, score, margin, ALPHA)
    states = {}
    for row in table.to_dict("records"):
        pair, state = f"{row['a']} vs {row['b']}", row["state"]
        if state in ("first better", "second better"):
            higher, lower = (row["a"], row["b"]) if state == "first better" else (row["b"], row["a"])
            states[pair] = f"{higher if maximize else lower} better"  # the CS is of a - b: higher scores
        elif state == "equivalent":
            states[pair] = f"equivalent within ±{difference(margin, score)}"
        else:
            states[pair] = "undecided"
    return Look(len(draws), states, sequential.all_decided(table), observations=observations)


def replicate_until_decided(study_name: str, config: SweepConfig, stores, reporter) -> tuple[list, Look]:
    """`decide: {evidence: replicates}`: rounds of one new seed for each value's best configuration
    (at least the file's `replicates`, and 2), a look after each, until every pair is decided or
    `decide.max_trials` replicate runs are spent. Resumes from the replicates already tracked."""
    from study.search.replicate import replicate_best
    from study.store.stores import replicate_runs

    values = len(config.hyperparameters[config.scientific[0]].choices or ())
    seeds, results = max(config.replicates, 2), []
    while True:
        results += replicate_best(study_name, seeds, None, stores, progress=reporter.replicate_started)
        replicates = replicate_runs(study_name, stores.tracking_uri)
        order = [v for v in (config.hyperparameters[config.scientific[0]].choices or ())
                 if not replicates.empty and v in set(replicates[config.scientific[0]])]
        taken = look_at_replicates(config, replicates, order)
        reporter.decision_looked(taken)
        if taken.decided or (seeds + 1) * max(values, 1) > config.decide.max_trials:
            return results, taken
        seeds += 1
