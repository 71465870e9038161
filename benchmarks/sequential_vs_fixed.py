"""Benchmark: trials to a decision, run until decided against a fixed design of the same power
(target: <= 0.6x on average when the true difference is zero or large).

Scripted trials, no training. A simulated study compares 3 values, one trial of each per round (a
paired draw); each trial's score is its value's true mean, plus the round's own offset (the
nuisance hyperparameters' draw, which cancels in a paired difference), plus noise whose paired
differences spread by 2.3 pp, the quick study's. The margin is the default 2 pp.

- Run until decided: the sweep's own rule, `study.analysis.sequential.look` after every round from
  the second, stopping once `all_decided` or at the cap (`--cap` rounds).
- Fixed design: the verdict's fixed analysis, `study.analysis.stats.paired_pairwise` (Wilcoxon with
  Holm for "better", TOST for "equivalent"), once, on n rounds. Its n is the smallest at which it
  reaches the right decision on every pair in as many studies as running until decided did: the
  same power. (The n a verdict suggests, `stats.n_to_tell`, is printed beside it.)

A study's decision is right when every pair's state matches the truth: "better" the right way for
pairs that differ by a margin or more, "equivalent" for pairs that do not differ.

    .venv/bin/python benchmarks/sequential_vs_fixed.py              # 300 studies a scenario (~1 min on 2 cores)
    .venv/bin/python benchmarks/sequential_vs_fixed.py --studies 60 # smoke run
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import pandas as pd
from results_file import load_average, machine, write_section

from study.analysis import sequential, stats

VALUES = ("A", "B", "C")
SPREAD = 0.023  # sd of a paired difference: the quick study's
MARGIN = 0.02
SCORE = "best_val_accuracy"
# true means of A, B, C: the scenarios the goal names (zero, large) and one between, for the record
SCENARIOS = {"zero": (0.80, 0.80, 0.80), "large (4 margins)": (0.96, 0.88, 0.80),
             "moderate (2 margins)": (0.88, 0.84, 0.80)}
GOAL = ("zero", "large (4 margins)")


def draws(means, rounds: int, rng) -> pd.DataFrame:
    offsets = rng.normal(0.0, 0.05, size=(rounds, 1))
    noise = rng.normal(0.0, SPREAD / np.sqrt(2), size=(rounds, len(VALUES)))
    return pd.DataFrame(np.asarray(means) + offsets + noise, columns=list(VALUES))


def truth(means) -> dict:
    states = {}
    for (a, ma), (b, mb) in itertools.combinations(zip(VALUES, means), 2):
        states[(a, b)] = "equivalent" if abs(ma - mb) < 1e-12 else ("first better" if ma > mb else "second better")
    return states


def run_until_decided(table: pd.DataFrame, cap: int) -> tuple[int, dict]:
    """Rounds used and the states at the stop, looking after every round as the sweep does."""
    for n in range(2, cap + 1):
        look = sequential.look(table.head(n), list(VALUES), SCORE, MARGIN)
        if sequential.all_decided(look) or n == cap:
            return n, {(row.a, row.b): row.state for row in look.itertuples()}
    raise AssertionError("unreachable")


def fixed_states(table: pd.DataFrame) -> dict:
    result = stats.paired_pairwise(table, list(VALUES), score=SCORE, margin=MARGIN)
    states = {}
    for row in result.itertuples():
        if row.significant:
            states[(row.a, row.b)] = "first better" if row.difference > 0 else "second better"
        else:
            states[(row.a, row.b)] = "equivalent" if row.equivalent else "undecided"
    return states


def scenario(means, studies: int, cap: int, seed: int) -> dict:
    """Run until decided on `studies` simulated studies, and the fixed analysis's power at each n."""
    rng = np.random.default_rng(seed)
    tables = [draws(means, cap, rng) for _ in range(studies)]
    right = truth(means)
    used, correct = [], []
    for table in tables:
        n, states = run_until_decided(table, cap)
        used.append(n)
        correct.append(states == right)

    def fixed_power(n: int) -> float:
        return float(np.mean([fixed_states(table.head(n)) == right for table in tables]))

    low, high = 2, cap  # the fixed design's right decisions grow with n: bisect for 80%
    if fixed_power(high) < stats.POWER:
        fixed_n = None
    else:
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fixed_power(middle) >= stats.POWER else (middle, high)
        fixed_n = high
    return {"power": float(np.mean(correct)), "mean": statistics.fmean(used), "median": statistics.median(used),
            "p90": float(np.quantile(used, 0.9)), "capped": float(np.mean([n == cap for n in used])),
            "fixed_n": fixed_n, "fixed_power": fixed_power}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=300)
    parser.add_argument("--cap", type=int, default=200, help="rounds a study may use at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    results = {name: scenario(means, args.studies, args.cap, args.seed + index)
               for index, (name, means) in enumerate(SCENARIOS.items())}
    if any(result["fixed_n"] is None for result in results.values()):
        raise SystemExit(f"error: a fixed design does not reach {stats.POWER:.0%} power within --cap {args.cap}")
    planned = max(result["fixed_n"] for result in results.values())  # sized before the truth is known
    rows, ratios = [], {}
    for name, result in results.items():
        ratios[name] = result["mean"] / planned
        rows.append(f"| {name} | {result['mean']:.1f} ({result['median']:.0f}, {result['p90']:.0f}) | "
                    f"{result['power']:.1%} | {result['capped']:.1%} | {result['fixed_n']} | "
                    f"{result['fixed_power'](planned):.1%} | {3 * result['mean']:.0f} vs {3 * planned} | "
                    f"{ratios[name]:.2f}x |")
        print(rows[-1], flush=True)
    average = statistics.fmean(ratios[name] for name in GOAL)
    verdict = "met" if average <= 0.6 else "not met"
    suggested = stats.n_to_tell(SPREAD, MARGIN, pairs=3, paired=True)
    body = "\n".join([
        f"Machine: {machine()}; load {load_average()}.",
        f"Command: `.venv/bin/python benchmarks/sequential_vs_fixed.py --studies {args.studies} --cap {args.cap}`"
        f" ({time.perf_counter() - started:.0f} s).",
        "",
        f"{args.studies} simulated studies per scenario: 3 values, one trial of each per round, paired differences "
        f"spread by {SPREAD * 100:.1f} pp, margin {MARGIN * 100:.0f} pp. A round is one paired draw (3 trials). "
        "Power: the share of studies whose every pair ends in its true state. A fixed design is sized before the "
        f"truth is known: the fewest rounds at which the fixed analysis (Wilcoxon + Holm, TOST) is right in "
        f"{stats.POWER:.0%} of studies in every scenario, here {planned} rounds (the largest of the column \"fixed, "
        f"{stats.POWER:.0%} power, knowing the truth\"; `stats.n_to_tell`, which plans for telling a margin-sized "
        f"difference only, suggests {suggested}).",
        "",
        "| true means | rounds until decided: mean (median, 90th pct) | its power | stopped by the cap | "
        f"fixed, {stats.POWER:.0%} power, knowing the truth | fixed design's power at {planned} | "
        "trials, sequential vs fixed | ratio |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Goal (<= 0.6x on average over {' and '.join(GOAL)}): {average:.2f}x, {verdict}.",
    ])
    print(body.splitlines()[-1])
    print(f"wrote {write_section('sequential', 'Run until decided against a fixed design', body)}")


if __name__ == "__main__":
    main()
