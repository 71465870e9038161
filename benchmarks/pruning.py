"""Benchmark: compute a pruner saves in the same search (target: <= 0.4x the epochs of no pruning).

The search is `benchmarks/sweeps/pruning.yaml` (cell x units x learning rate on MNIST-1D, 30
trials of 12 epochs, random sampler, seed 0). It runs once without a pruner and once with each
pruner compared (the sweep schema's own settings: `median` = 5 start-up trials, prunable from
epoch 1; `hyperband` = min 1 epoch, max the epoch budget), every run in its own temporary stores.
Random sampling with one seed draws the same configurations in the same order in every run, and
each trial's training seed depends only on its number, so a trial the pruner lets finish scores
exactly as it did without pruning: the pruner's stops are the only difference.

Read back from the stores: epochs trained per trial (MLflow `val_accuracy` steps, checked
against the Optuna trials table: the epoch budget, or `pruned_at_epoch`) and each trial's
start and end (Optuna). The figure: epochs (and wall time) a run spends, trials in the order
they ran, until its first completed trial within 0.5 pp of the no-pruning run's best validation
accuracy, divided by what the no-pruning run spends to get there. Also printed: the ratio over
the whole budget and the best each run found.

    .venv/bin/python benchmarks/pruning.py                          # none, median, hyperband (~8 min on 2 cores)
    .venv/bin/python benchmarks/pruning.py --pruners median,percentile
    .venv/bin/python benchmarks/pruning.py --quick                  # smoke run: digits, 6 trials x 4 epochs
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from results_file import load_average, machine, write_section

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _name in ("RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_name, None)

HERE = Path(__file__).resolve().parent
SWEEP_FILE = HERE / "sweeps" / "pruning.yaml"
TARGET = 0.4
WITHIN = 0.005  # 0.5 percentage points of validation accuracy


@dataclass
class Run:
    pruner: str
    trials: list[dict]  # in the order they finished: number, state, value, epochs, end (s from the first start)

    @property
    def wall(self) -> float:
        """Seconds from the first trial's start to the last trial's end."""
        return max(t["end"] for t in self.trials)

    @property
    def epochs(self) -> int:
        return sum(t["epochs"] for t in self.trials)

    @property
    def best(self) -> float:
        return max(t["value"] for t in self.trials if t["state"] == "COMPLETE")

    def count(self, state: str) -> int:
        return sum(t["state"] == state for t in self.trials)

    def reach(self, threshold: float) -> tuple[dict, int, float] | None:
        """The first completed trial scoring >= threshold, the epochs and seconds spent until it ended."""
        spent = 0
        for trial in self.trials:
            spent += trial["epochs"]
            if trial["state"] == "COMPLETE" and trial["value"] >= threshold - 1e-12:
                return trial, spent, trial["end"]
        return None


def run_search(raw: dict, pruner: str, folder: Path) -> Run:
    import optuna

    from study.config import load_sweep
    from study.sweep import run_sweep
    from study.tracking import load_histories

    raw = copy.deepcopy(raw)
    raw["name"] = f"pruning-{pruner}"
    raw["pruner"] = pruner
    path = folder / f"{pruner}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    storage, tracking = f"sqlite:///{folder}/{pruner}/optuna.db", f"sqlite:///{folder}/{pruner}/mlflow.db"
    # In a kept folder whose stores already hold the finished search, this only reads it back.
    result = run_sweep(load_sweep(path), storage=storage, tracking_uri=tracking)

    table = result.trials.set_index("trial")
    histories = load_histories(tracking, table["mlflow_run_id"].dropna().tolist(), ["val_accuracy"])
    steps = histories.groupby("run_id")["epoch"].nunique()
    frozen = optuna.load_study(study_name=raw["name"], storage=storage).trials
    first = min(t.datetime_start for t in frozen)
    trials = []
    for t in sorted(frozen, key=lambda t: t.datetime_complete):
        row = table.loc[t.number]
        epochs = int(steps.get(row["mlflow_run_id"], 0))
        recorded = raw["epochs"] if row["state"] == "COMPLETE" else row["pruned_at_epoch"]
        if row["state"] in ("COMPLETE", "PRUNED") and epochs != int(recorded):
            print(f"  note: trial {t.number}: MLflow has {epochs} epochs, Optuna says {recorded}")
        trials.append({"number": t.number, "state": row["state"], "value": float(row["best_val_accuracy"]),
                       "epochs": epochs, "end": (t.datetime_complete - first).total_seconds(),
                       "seconds": (t.datetime_complete - t.datetime_start).total_seconds(),
                       "seconds_per_epoch": float(row["seconds_per_epoch"])})
    return Run(pruner, trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pruners", default="median,hyperband",
                        help="comma-separated: median, percentile, successive_halving, hyperband")
    parser.add_argument("--trials", type=int, help="override the sweep file's trials")
    parser.add_argument("--epochs", type=int, help="override the sweep file's epochs")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, 6 trials x 4 epochs, median only")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep its stores; a second run reads them back")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    raw = yaml.safe_load(SWEEP_FILE.read_text())
    pruners = [p.strip() for p in args.pruners.split(",") if p.strip()]
    if args.quick:
        raw["task"], raw["trials"], raw["epochs"], pruners = {"name": "digits"}, 6, 4, ["median"]
    raw["trials"] = args.trials or raw["trials"]
    raw["epochs"] = args.epochs or raw["epochs"]

    folder = args.keep or Path(tempfile.mkdtemp(prefix="pruning-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    runs = {}
    for pruner in ["none", *pruners]:
        runs[pruner] = run = run_search(raw, pruner, folder)
        print(f"{pruner:>18}: {run.count('COMPLETE')} complete, {run.count('PRUNED')} pruned, {run.count('FAIL')} failed; "
              f"{run.epochs} epochs in {run.wall:.0f} s; best val accuracy {run.best:.4f}", flush=True)

    base = runs["none"]
    threshold = base.best - WITHIN
    base_reach = base.reach(threshold)
    lines, rows, figures = [], [], {}
    for pruner, run in runs.items():
        counts = f"{run.count('COMPLETE')} / {run.count('PRUNED')} / {run.count('FAIL')}"
        whole = f"{run.epochs} ({run.epochs / base.epochs:.2f}) | {run.wall:.0f} ({run.wall / base.wall:.2f})"
        reached = run.reach(threshold)
        if reached is None:
            rows.append(f"| {pruner} | {counts} | {whole} | {run.best:.4f} | not reached | | | |")
            lines.append(f"{pruner}: never came within {WITHIN * 100:.1f} pp of {base.best:.4f} (its best: {run.best:.4f}); "
                         f"whole budget {run.epochs / base.epochs:.2f}x the epochs, {run.wall / base.wall:.2f}x the wall time")
            continue
        trial, epochs, seconds = reached
        ratio, budget_ratio, time_ratio = epochs / base_reach[1], epochs / base.epochs, seconds / base_reach[2]
        rows.append(f"| {pruner} | {counts} | {whole} | {run.best:.4f} | trial {trial['number']} ({trial['value']:.4f}) "
                    f"| {epochs} ({ratio:.2f}) | {budget_ratio:.2f} | {seconds:.0f} ({time_ratio:.2f}) |")
        if pruner != "none":
            figures[pruner] = ratio
            lines.append(f"{pruner}: reached {threshold:.4f} (trial {trial['number']}) after {ratio:.2f}x the epochs the "
                         f"no-pruning search needed to get there ({budget_ratio:.2f}x its whole budget) and {time_ratio:.2f}x "
                         f"its wall time; whole budget {run.epochs / base.epochs:.2f}x the epochs, {run.wall / base.wall:.2f}x "
                         "the wall time")
    # Why wall time falls less than epochs: a trial costs a fixed part besides its epochs.
    short = [t["seconds"] for r in runs.values() for t in r.trials if t["state"] == "PRUNED" and t["epochs"] == 1]
    epoch = statistics.median(t["seconds_per_epoch"] for t in base.trials)
    if short:
        lines.append(f"a trial pruned after 1 epoch still takes {statistics.median(short):.1f} s (median of {len(short)}), "
                     f"against {epoch:.2f} s for each further epoch (median, no-pruning run): building and compiling "
                     "the model, tracing the first epoch and tracking cost as much as several epochs")
    print(f"\nno-pruning best {base.best:.4f}; within {WITHIN * 100:.1f} pp = {threshold:.4f}, first reached by trial "
          f"{base_reach[0]['number']} after {base_reach[1]} epochs, {base_reach[2]:.0f} s")
    print("\n".join(lines))
    if args.no_record or args.quick:
        return

    best = min(figures.values(), default=None)
    headline = ", ".join(f"{p} {r:.2f}x" for p, r in figures.items()) or "no pruner reached it"
    missing = [p for p in pruners if p not in figures]
    if missing:
        headline += f"; {', '.join(missing)}: not reached"
    verdict = "met" if best is not None and best <= TARGET else "missed"
    body = f"""
**Epochs to reach within 0.5 pp of the no-pruning best, vs the no-pruning search: {headline}** (target <= {TARGET}x: {verdict}).

Machine: {machine()}. Load average at the end: {load_average()} (shared machine:
wall times are single runs, one after the other, and only indicative; epochs are exact).
Search: `benchmarks/sweeps/pruning.yaml` (task {raw['task']['name']}, cell x units x learning rate, {raw['trials']}
trials x {raw['epochs']} epochs, random sampler seed {raw['seed']}: the same configurations in the same order in every run).
No-pruning best validation accuracy {base.best:.4f}; the bar is {threshold:.4f}, first reached by its trial
{base_reach[0]['number']} after {base_reach[1]} epochs ({base_reach[2]:.0f} s). Wall times run from the first
trial's start to the last trial's end (Optuna's timestamps).
Rerun: `.venv/bin/python benchmarks/pruning.py --pruners {','.join(pruners)}`

| pruner | complete / pruned / failed | epochs (vs none) | wall s (vs none) | best val acc | first within 0.5 pp | epochs to it (vs none's) | vs none's whole budget | wall s to it (vs none's) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{chr(10).join('- ' + line for line in lines)}
"""
    print(f"wrote {write_section('pruning', '2. Pruning: compute to reach the no-pruning best', body)}")


if __name__ == "__main__":
    main()
