"""Benchmark: compute a pruner saves in the same search (target: <= 0.4x the epochs of no pruning).

The search is `benchmarks/sweeps/pruning.yaml` (cell x units x learning rate on MNIST-1D, 30
trials of 12 epochs, random sampler, seed 0); `--sweep benchmarks/sweeps/pruning_cells.yaml` is
the same search with the cell compared (scientific, `budget: equal`), where each trial is judged
only against trials of its own cell. It runs once without a pruner and once with each pruner
setting compared, every run in its own temporary stores. Random sampling with one seed draws the
same configurations in the same order in every run, and each trial's training seed depends only
on its number, so a trial the pruner lets finish scores exactly as it did without pruning: the
pruner's stops are the only difference.

A setting is `name[:key=value,...]` with the keys of a sweep file's `pruner` (see the README),
e.g. `hyperband:warmup_epochs=2,reduction_factor=4`. Settings are separated by spaces or commas;
a `key=value` after a comma belongs to the setting before it (`median,hyperband:warmup_epochs=2`).
Replays (below) also take `across=true`: compare across compared values, as before issue 14.

Read back from the stores: epochs trained per trial (MLflow `val_accuracy` steps, checked
against the Optuna trials table: the epoch budget, or `pruned_at_epoch`) and each trial's
start and end (Optuna). The figure: epochs (and wall time) a run spends, trials in the order
they ran, until its first completed trial within 0.5 pp of the no-pruning run's best validation
accuracy, divided by what the no-pruning run spends to get there. Also printed: the ratio over
the whole budget and the best each run found.

Replays. A pruner changes nothing but where trials stop, so the no-pruning run's per-epoch
validation accuracies (its Optuna intermediate values) tell what any setting does: a replay
feeds them epoch by epoch to the sweep's own pruner (`study.search.samplers.make_pruner`) in an
in-memory study of the same name and trial numbers, in about a second and without training.
Every run replays the settings it trained (a check: replayed and trained epochs must agree) and
the screening list SCREEN; and replays each setting over `--orders` random orders of the same
trials too, since one order can flatter or sink a setting (which trial comes first, or an
exact tie at a rung, can decide it).

    .venv/bin/python benchmarks/pruning.py                     # none + DEFAULT_PRUNERS (2 cores: ~11 min unpruned, 2-4 min a pruned run)
    .venv/bin/python benchmarks/pruning.py --pruners median hyperband:warmup_epochs=2,reduction_factor=4
    .venv/bin/python benchmarks/pruning.py --replay --keep /tmp/p --pruners successive_halving:warmup_epochs=2
                                                               # replays only, no training once /tmp/p has the no-pruning run (~10-30 s a setting)
    .venv/bin/python benchmarks/pruning.py --sweep benchmarks/sweeps/pruning_cells.yaml
    .venv/bin/python benchmarks/pruning.py --quick             # smoke run: digits, 6 trials x 4 epochs, median only
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import re
import statistics
import tempfile
import warnings
from dataclasses import dataclass, field
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
DEFAULT_PRUNERS = ["median", "hyperband", "successive_halving", "successive_halving:warmup_epochs=2"]
# Replayed on every run beside the trained settings: the defaults and what a search over
# warm-up, start-up, reduction factor, percentile and p-threshold found best here.
SCREEN = [
    "median", "median:startup_trials=1,warmup_epochs=2", "median:startup_trials=1,warmup_epochs=2,patience=1",
    "percentile:percentile=40,startup_trials=1,warmup_epochs=2",
    "successive_halving", "successive_halving:reduction_factor=2", "successive_halving:warmup_epochs=2",
    "successive_halving:warmup_epochs=4",
    "hyperband", "hyperband:reduction_factor=2", "hyperband:warmup_epochs=2",
    "hyperband:warmup_epochs=2,reduction_factor=4", "hyperband:warmup_epochs=4,reduction_factor=4",
    "wilcoxon", "wilcoxon:warmup_epochs=4,p_threshold=0.2",
]
VALUES_NOTE = """ "Values at their best":
the compared values (cells) whose best completed trial is still within 0.5 pp of their own no-pruning best:
what pruning must not take from a comparison; `across=true` rows judge every trial against every other."""
# Replayed too when the sweep has compared values: the same pruners judging across them (before issue 14).
SCREEN_ACROSS = ["median:across=true", "successive_halving:across=true", "hyperband:across=true"]


@dataclass(frozen=True)
class Setting:
    """One pruner setting compared: its label as given and the sweep file's `pruner` mapping."""

    label: str
    pruner: dict
    within_value: bool = True  # False (`across=true`, replays only): judge against every trial

    @property
    def slug(self) -> str:
        """The label as a study and folder name; `across` left out, so a replay across values draws
        the same Hyperband brackets (hashed from the study name) as the one within them."""
        label = re.sub(r"[:,]across=true", "", self.label)
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")


def parse_settings(arguments: list[str]) -> list[Setting]:
    """`["median,hyperband:warmup_epochs=2,reduction_factor=4"]` -> two settings (see the docstring)."""
    parsed: list[tuple[str, dict]] = []
    for token in (t.strip() for argument in arguments for t in argument.split(",")):
        if not token:
            continue
        name, colon, first = token.partition(":")
        if "=" in token and not colon:  # a further key=value of the setting before it
            if not parsed:
                raise SystemExit(f"--pruners: {token!r} follows no pruner name")
            name, first = parsed[-1][0], token
        else:
            parsed.append((name, {}))
        if first:
            key, equals, value = first.partition("=")
            if not equals:
                raise SystemExit(f"--pruners: {first!r} in {token!r} is not key=value")
            parsed[-1][1][key.strip()] = yaml.safe_load(value)
    settings = []
    for name, options in parsed:
        across = bool(options.pop("across", False))
        label = name + (":" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
        settings.append(Setting(label + (",across=true" if across and options else ":across=true" if across else ""),
                                {"name": name, **options}, within_value=not across))
    return settings


def check_settings(raw: dict, settings: list[Setting]) -> None:
    """Refuse a setting the sweep schema refuses, with its message, before anything trains."""
    from study.spec.base import ConfigError
    from study.spec.sweep_file import parse_config

    for setting in settings:
        try:
            parse_config({**raw, "pruner": setting.pruner}, source=f"--pruners {setting.label}")
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None


@dataclass
class Run:
    label: str
    trials: list[dict]  # in the order they finished: number, state, value, epochs; trained: end, seconds
    replayed: bool = False
    curves: dict[int, list[float]] = field(default_factory=dict)  # trial -> validation value per epoch
    values: dict[int, tuple] = field(default_factory=dict)  # trial -> compared (scientific) values
    params: dict[int, dict] = field(default_factory=dict)

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

    def best_per_value(self) -> dict[tuple, float]:
        """The best completed score of each compared value (empty without compared values)."""
        best: dict[tuple, float] = {}
        for t in self.trials:
            value = self.values.get(t["number"], ())
            if value and t["state"] == "COMPLETE":
                best[value] = max(best.get(value, t["value"]), t["value"])
        return best

    def values_kept(self, base: Run) -> str:
        """How many compared values still come within 0.5 pp of their own no-pruning best."""
        reference, best = base.best_per_value(), self.best_per_value()
        if not reference:
            return "-"
        kept = [v for v, score in reference.items() if best.get(v, -1.0) >= score - WITHIN - 1e-12]
        lost = ", ".join(f"{'/'.join(map(str, v))} {best[v]:.3f} < {score:.3f}" if v in best else f"{'/'.join(map(str, v))} none"
                         for v, score in reference.items() if v not in kept)
        return f"{len(kept)}/{len(reference)}" + (f" ({lost})" if lost else "")

    def reach(self, threshold: float) -> tuple[dict, int, float | None] | None:
        """The first completed trial scoring >= threshold, the epochs and seconds spent until it ended."""
        spent = 0
        for trial in self.trials:
            spent += trial["epochs"]
            if trial["state"] == "COMPLETE" and trial["value"] >= threshold - 1e-12:
                return trial, spent, trial.get("end")
        return None


def run_search(raw: dict, setting: Setting, folder: Path) -> Run:
    import optuna

    from study.spec.sweep_file import load_sweep
    from study.search.samplers import scientific_value
    from study.search.sweep import run_sweep
    from study.store.tracking import load_histories

    raw = copy.deepcopy(raw)
    raw["name"] = f"{raw['name']}-{setting.slug}"
    raw["pruner"] = setting.pruner
    path = folder / f"{setting.slug}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    where = folder / setting.slug
    storage, tracking = f"sqlite:///{where}/optuna.db", f"sqlite:///{where}/mlflow.db"
    # In a kept folder whose stores already hold the finished search, this only reads it back.
    sweep = load_sweep(path)
    result = run_sweep(sweep, storage=storage, tracking_uri=tracking)

    table = result.trials.set_index("trial")
    histories = load_histories(tracking, table["mlflow_run_id"].dropna().tolist(), ["val_accuracy"])
    steps = histories.groupby("run_id")["epoch"].nunique()
    frozen = optuna.load_study(study_name=raw["name"], storage=storage).trials
    first = min(t.datetime_start for t in frozen)
    run = Run(setting.label, [])
    for t in sorted(frozen, key=lambda t: t.datetime_complete):
        row = table.loc[t.number]
        epochs = int(steps.get(row["mlflow_run_id"], 0))
        recorded = raw["epochs"] if row["state"] == "COMPLETE" else row["pruned_at_epoch"]
        if row["state"] in ("COMPLETE", "PRUNED") and epochs != int(recorded):
            print(f"  note: trial {t.number}: MLflow has {epochs} epochs, Optuna says {recorded}")
        run.trials.append({"number": t.number, "state": row["state"], "value": float(row["best_val_accuracy"]),
                           "epochs": epochs, "end": (t.datetime_complete - first).total_seconds(),
                           "seconds": (t.datetime_complete - t.datetime_start).total_seconds(),
                           "seconds_per_epoch": float(row["seconds_per_epoch"])})
        run.curves[t.number] = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        run.values[t.number] = scientific_value(t, sweep.config.scientific)
        run.params[t.number] = t.user_attrs.get("params", {})
    return run


def replay(raw: dict, base: Run, setting: Setting, order: list[int] | None = None) -> Run:
    """What `setting` does to the no-pruning run's trials, taken in `order` (default: as they ran).

    The trials are told to an in-memory study named as the trained run's, with the same numbers
    (a Hyperband bracket is drawn from both) and, under an equal budget, the same recorded
    compared value: all a pruner reads. Nothing trains.
    """
    import optuna

    from study.spec.sweep_file import parse_config
    from study.search.samplers import EQUAL_BUDGET_ATTR, make_pruner

    config = parse_config({**raw, "name": f"{raw['name']}-{setting.slug}", "pruner": setting.pruner})
    pruner = make_pruner(config, within_value=None if setting.within_value else False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=config.name, pruner=pruner, direction="maximize")
    run, assigned = Run(setting.label, [], replayed=True), []
    for number in order if order is not None else [t["number"] for t in base.trials]:
        trial, best = study.ask(), None
        if config.scientific:
            value = base.values[number]
            study._storage.set_trial_system_attr(
                trial._trial_id, EQUAL_BUDGET_ATTR, {"value": list(value), "index": assigned.count(value)},
            )
            assigned.append(value)
        state = "COMPLETE"
        for epoch, value in enumerate(base.curves[number], start=1):
            best = value if best is None else max(best, value)
            trial.report(value, epoch)
            if trial.should_prune():
                state = "PRUNED"
                break
        study.tell(trial, best if state == "COMPLETE" else None,
                   state=optuna.trial.TrialState.COMPLETE if state == "COMPLETE" else optuna.trial.TrialState.PRUNED)
        run.trials.append({"number": number, "state": state, "value": best, "epochs": epoch})
    run.values = dict(base.values)  # by the original trial numbers, as `trials` are
    return run


@dataclass
class OverOrders:
    """A setting replayed over random orders of the same trials: epochs-to-the-bar ratios, and per
    order where the epochs to the bar went (see `epoch_split`) and what no pruning spent."""

    ratios: list[float]
    splits: list[tuple[int, int, int] | None] = field(default_factory=list)
    spent_none: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def quartiles(self) -> tuple[float, float]:
        """The first and third quartiles of the ratios (inf where the bar was not reached)."""
        ranked = sorted(self.ratios)
        return ranked[len(ranked) // 4], ranked[(3 * len(ranked)) // 4]

    def spread(self) -> str:
        low, high = self.quartiles
        return f"{self.median:.2f} ({low:.2f}-{high:.2f})"

    def share(self, test) -> float:
        return sum(1 for r in self.ratios if test(r)) / len(self.ratios)


def over_orders(raw: dict, base: Run, setting: Setting, threshold: float, count: int) -> OverOrders:
    numbers = [t["number"] for t in base.trials]
    ratios, result = [], OverOrders([])
    for seed in range(count):
        order = random.Random(seed).sample(numbers, len(numbers))
        spent_none = 0
        for number in order:  # no pruning: every trial its full curve, until the first at the bar
            spent_none += len(base.curves[number])
            if max(base.curves[number]) >= threshold - 1e-12:
                break
        run = replay(raw, base, setting, order)
        reached = run.reach(threshold)
        ratios.append(reached[1] / spent_none if reached else float("inf"))
        result.splits.append(epoch_split(run, threshold))
        result.spent_none.append(spent_none)
    result.ratios = ratios
    return result


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < float("inf") else "not reached"


def epoch_split(run: Run, threshold: float) -> tuple[int, int, int] | None:
    """The epochs to the bar: to trials completed before it, to pruned trials, to the trial itself."""
    reached = run.reach(threshold)
    if reached is None:
        return None
    before = run.trials[:run.trials.index(reached[0])]
    return (sum(t["epochs"] for t in before if t["state"] == "COMPLETE"),
            sum(t["epochs"] for t in before if t["state"] == "PRUNED"), reached[0]["epochs"])


def where_the_epochs_go(run: Run, base: Run, threshold: float) -> str:
    """How the epochs up to the bar split: trials completed before it, pruned ones, the trial itself."""
    reached = run.reach(threshold)
    if reached is None:
        kept = [t for t in run.trials if t["state"] == "COMPLETE"]
        stopped = [t for t in run.trials if t["state"] == "PRUNED" and max(base.curves[t["number"]]) >= threshold - 1e-12]
        return (f"{run.label}: every trial that would reach the bar was pruned ("
                + ", ".join(f"trial {t['number']} at epoch {t['epochs']}" for t in stopped)
                + f"); {len(kept)} completed trials, best {run.best:.4f}")
    trial, epochs, _ = reached
    before = run.trials[:run.trials.index(trial)]
    complete = [t for t in before if t["state"] == "COMPLETE"]
    pruned = [t for t in before if t["state"] == "PRUNED"]
    return (f"{run.label}: of its {epochs} epochs to the bar, {sum(t['epochs'] for t in complete)} went to "
            f"{len(complete)} trials it let finish before (trials {', '.join(str(t['number']) for t in complete) or 'none'}), "
            f"{sum(t['epochs'] for t in pruned)} to {len(pruned)} pruned trials (median {statistics.median([t['epochs'] for t in pruned]) if pruned else 0:g} "
            f"epochs each) and {trial['epochs']} to trial {trial['number']} itself")


def over_orders_split(label: str, orders: OverOrders, base: Run, threshold: float) -> str:
    """`where_the_epochs_go` as medians over random orders, beside what no pruning spends there."""
    splits = [split for split in orders.splits if split is not None]
    at_bar = sum(max(curve) >= threshold - 1e-12 for curve in base.curves.values())
    text = (f"{label}: no pruning spends a median {statistics.median(orders.spent_none):g} epochs to its first trial at "
            f"the bar ({at_bar} of the {len(base.trials)} trials reach it: in a random order the first of them is, on average, "
            f"trial {(len(base.trials) + 1) / (at_bar + 1):.0f} of the search); ")
    if splits:
        text += (f"{label} a median {statistics.median(sum(s) for s in splits):g} (medians of each part: "
                 f"{statistics.median(s[0] for s in splits):g} to trials it let finish before, "
                 f"{statistics.median(s[1] for s in splits):g} to pruned trials and {statistics.median(s[2] for s in splits):g} "
                 "to the trial at the bar)")
    missed = 1 - len(splits) / len(orders.splits)
    return text + (f"; in {missed:.0%} of the orders it pruned every trial that would reach the bar" if missed else "")


def describe_bar_trials(base: Run, threshold: float) -> str:
    """Which trials reach the bar, and how they rank among the trials before them epoch by epoch."""
    parts = []
    numbers = [t["number"] for t in base.trials]
    for position, number in enumerate(numbers):
        curve = base.curves[number]
        if max(curve) < threshold - 1e-12:
            continue
        ranks = []
        for epoch in range(min(4, len(curve))):
            earlier = [base.curves[n][epoch] for n in numbers[:position + 1]]
            ranks.append(f"{1 + sum(v > curve[epoch] for v in earlier)}/{len(earlier)}")
        cell = base.params.get(number, {}).get("cell", "?")
        parts.append(f"trial {number} ({cell}; at epochs 1-4: {', '.join(f'{v:.3f}' for v in curve[:4])}, "
                     f"ranked {', '.join(ranks)} among the trials so far)")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pruners", nargs="+", default=DEFAULT_PRUNERS,
                        help="settings, name[:key=value,...]: e.g. median hyperband:warmup_epochs=2,reduction_factor=4")
    parser.add_argument("--sweep", type=Path, default=SWEEP_FILE, help="the search (default benchmarks/sweeps/pruning.yaml)")
    parser.add_argument("--trials", type=int, help="override the sweep file's trials")
    parser.add_argument("--epochs", type=int, help="override the sweep file's epochs")
    parser.add_argument("--replay", action="store_true", help="replay the settings on the no-pruning run; train none of them")
    parser.add_argument("--orders", type=int, default=40, help="random trial orders each setting is replayed over (default 40)")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, 6 trials x 4 epochs, median only")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep its stores; a second run reads them back")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    raw = yaml.safe_load(args.sweep.read_text())
    settings = parse_settings(args.pruners)
    if args.quick:
        raw["task"], raw["trials"], raw["epochs"], settings = {"name": "digits"}, 6, 4, parse_settings(["median"])
    raw["trials"] = args.trials or raw["trials"]
    raw["epochs"] = args.epochs or raw["epochs"]
    check_settings(raw, settings + parse_settings(SCREEN))
    if not args.replay and any(not s.within_value for s in settings):
        raise SystemExit("error: across=true is for replays (--replay): a sweep always prunes within compared values")
    warnings.filterwarnings("ignore", message=".*WilcoxonPruner is experimental.*")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="pruning-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    base = run_search(raw, Setting("none", {"name": "none"}), folder)
    print(f"{'none':>40}: {base.epochs} epochs in {base.wall:.0f} s; best val accuracy {base.best:.4f}", flush=True)
    if base.count("COMPLETE") != len(base.trials):
        raise SystemExit("error: the no-pruning run has failed trials; replays need every trial's curve")
    threshold = base.best - WITHIN
    base_reach = base.reach(threshold)

    trained: dict[str, Run] = {}
    if not args.replay:
        for setting in settings:
            trained[setting.label] = run = run_search(raw, setting, folder)
            print(f"{setting.label:>40}: {run.count('COMPLETE')} complete, {run.count('PRUNED')} pruned, "
                  f"{run.count('FAIL')} failed; {run.epochs} epochs in {run.wall:.0f} s; best {run.best:.4f}", flush=True)

    replayed: dict[str, tuple[Run, OverOrders, Setting]] = {}
    compared = bool(base.values[base.trials[0]["number"]])
    for setting in [*settings, *parse_settings(SCREEN + (SCREEN_ACROSS if compared else []))]:
        if setting.label not in replayed:
            replayed[setting.label] = (replay(raw, base, setting),
                                       over_orders(raw, base, setting, threshold, args.orders), setting)

    lines, rows, figures = [], [], {}

    def kept(run: Run) -> str:  # the "values at their best" column, for sweeps with compared values
        return f" {run.values_kept(base)} |" if compared else ""
    for label, run in {"none": base, **trained}.items():
        counts = f"{run.count('COMPLETE')} / {run.count('PRUNED')} / {run.count('FAIL')}"
        whole = f"{run.epochs} ({run.epochs / base.epochs:.2f}) | {run.wall:.0f} ({run.wall / base.wall:.2f})"
        agrees = ""
        if label in replayed:
            same = [t["epochs"] for t in run.trials] == [t["epochs"] for t in replayed[label][0].trials]
            agrees = "yes" if same else "**no**"
            if not same:
                lines.append(f"{label}: the replay stops trials at other epochs than training did: training was not "
                             "exactly repeatable here (CPU threads), so the replayed figures are estimates")
        reached = run.reach(threshold)
        if reached is None:
            rows.append(f"| {label} | {counts} | {whole} | {run.best:.4f} | not reached | | | |{kept(run)} {agrees} |")
            lines.append(f"{label}: never came within {WITHIN * 100:.1f} pp of {base.best:.4f} (its best: {run.best:.4f}); "
                         f"whole budget {run.epochs / base.epochs:.2f}x the epochs, {run.wall / base.wall:.2f}x the wall time")
            continue
        trial, epochs, seconds = reached
        ratio, budget_ratio, time_ratio = epochs / base_reach[1], epochs / base.epochs, seconds / base_reach[2]
        rows.append(f"| {label} | {counts} | {whole} | {run.best:.4f} | trial {trial['number']} ({trial['value']:.4f}) "
                    f"| {epochs} ({ratio:.2f}) | {budget_ratio:.2f} | {seconds:.0f} ({time_ratio:.2f}) "
                    f"|{kept(run)} {agrees} |")
        if label != "none":
            figures[label] = ratio
            lines.append(f"{label}: reached {threshold:.4f} (trial {trial['number']}) after {ratio:.2f}x the epochs the "
                         f"no-pruning search needed to get there ({budget_ratio:.2f}x its whole budget) and {time_ratio:.2f}x "
                         f"its wall time; whole budget {run.epochs / base.epochs:.2f}x the epochs, {run.wall / base.wall:.2f}x "
                         "the wall time")

    replay_rows = []
    for label, (run, orders, _) in replayed.items():
        reached = run.reach(threshold)
        to_bar = f"{reached[1]} ({reached[1] / base_reach[1]:.2f})" if reached else "not reached"
        replay_rows.append(
            f"| {label} | {run.count('COMPLETE')} / {run.count('PRUNED')} | {run.epochs} ({run.epochs / base.epochs:.2f}) "
            f"| {run.best:.4f} | {to_bar} | {orders.spread()} | {orders.share(lambda r: r <= TARGET):.0%} "
            f"| {orders.share(lambda r: r < float('inf')):.0%} |{kept(run)}")
    # The best replayed setting on the benchmark's own order, and the one best over orders.
    def on_order(item):
        reached = item[1][0].reach(threshold)
        return reached[1] if reached else float("inf")
    best_here = min(replayed.items(), key=on_order)
    best_orders = min(replayed.items(), key=lambda item: item[1][1].median)
    lines.append(f"where the epochs go: no pruning reaches the bar with {describe_bar_trials(base, threshold)}")
    position = [t["number"] for t in base.trials].index(base_reach[0]["number"])
    bounds = ", ".join(f"{k}: {(position * k + len(base.curves[base_reach[0]['number']])) / base_reach[1]:.2f}x"
                       for k in range(1, 6))
    lines.append(f"the floor: a pruner that stopped each of the {position} trials before trial {base_reach[0]['number']} "
                 f"at epoch k, and let that one finish, would need (by k) {bounds} of the no-pruning epochs; a pruner "
                 "that ranks trials must stop them early yet keep the slow starters above, and completes some "
                 "trials to rank against")
    for label in dict.fromkeys([best_here[0], best_orders[0], *figures]):
        source = trained.get(label) or replayed[label][0]
        lines.append("where the epochs go, " + where_the_epochs_go(source, base, threshold))
    for label in dict.fromkeys([best_here[0], best_orders[0]]):
        lines.append(f"where the epochs go over {args.orders} random orders, " + over_orders_split(label, replayed[label][1], base, threshold))
    # Why wall time falls less than epochs: a trial costs a fixed part besides its epochs.
    short = [t["seconds"] for r in trained.values() for t in r.trials if t["state"] == "PRUNED" and t["epochs"] == 1]
    epoch = statistics.median(t["seconds_per_epoch"] for t in base.trials)
    if short:
        fixed = max(0.0, statistics.median(short) - epoch)
        lines.append(f"a trial pruned after 1 epoch still takes {statistics.median(short):.1f} s (median of {len(short)}), "
                     f"against {epoch:.2f} s for each further epoch (median, no-pruning run): "
                     + (f"building and compiling the model, tracing the first epoch and tracking add about {fixed:.1f} s ({fixed / epoch:.1f} epochs) "
                        "per trial, which pruning cannot save" if fixed > 0.1 * epoch else
                        "the runs' loads differed too much to tell the fixed cost per trial")
                     + " (wall times under this shared machine's load)")
    if compared:
        def at_best(setting: Setting) -> bool:
            run = replayed[setting.label][0]
            return run.values_kept(base).split(" ")[0] == f"{len(base.best_per_value())}/{len(base.best_per_value())}"
        within = [item[2] for item in replayed.values() if item[2].within_value]
        across = [item[2] for item in replayed.values() if not item[2].within_value]
        lines.append(f"what judging within each cell buys: {sum(map(at_best, within))} of {len(within)} settings keep "
                     f"every cell within 0.5 pp of its own no-pruning best; judged across cells, {sum(map(at_best, across))} "
                     f"of {len(across)} do ({', '.join(s.label for s in across)}; the last column names the cells whose "
                     "best trial was stopped for being slower than other cells in its first epochs). Within a cell the "
                     "first trial of each cell always finishes, which is what keeps the epochs to the bar high here")
    print(f"\nno-pruning best {base.best:.4f}; within {WITHIN * 100:.1f} pp = {threshold:.4f}, first reached by trial "
          f"{base_reach[0]['number']} after {base_reach[1]} epochs, {base_reach[2]:.0f} s")
    print("\n".join(rows))
    print("\nreplays (epochs exact; 'orders': the ratio of epochs to the bar over random trial orders):")
    print("\n".join(replay_rows))
    print("\n".join(lines))
    if args.no_record or args.quick or args.replay:
        return

    best = min(figures.values(), default=None)
    headline = ", ".join(f"{p} {r:.2f}x" for p, r in figures.items()) or "no pruner reached it"
    missing = [s.label for s in settings if s.label not in figures]
    if missing:
        headline += f"; {', '.join(missing)}: not reached"
    verdict = "met" if best is not None and best <= TARGET else "missed"
    if best is not None:
        label = min(figures, key=figures.get)
        orders = replayed[label][1]
        headline += (f". The best, {label}, over {args.orders} random orders of the same trials: median "
                     f"{orders.median:.2f}x (quartiles {' to '.join(_times(q) for q in orders.quartiles)}), <= {TARGET}x in "
                     f"{orders.share(lambda r: r <= TARGET):.0%} of them")
        if verdict == "met" and orders.median > TARGET:
            verdict = "met on this order of the trials, not over most orders"
    sweep_file = args.sweep.resolve().relative_to(HERE.parent) if args.sweep.resolve().is_relative_to(HERE.parent) else args.sweep
    search = "cell compared (`budget: equal`: each trial judged within its cell)" if compared else "no compared value"
    rerun = f".venv/bin/python benchmarks/pruning.py {'--sweep ' + str(sweep_file) + ' ' if args.sweep != SWEEP_FILE else ''}" \
            f"--pruners {' '.join(s.label for s in settings)}"
    body = f"""
**Epochs to reach within 0.5 pp of the no-pruning best, vs the no-pruning search: {headline}** (target <= {TARGET}x: {verdict}).

Machine: {machine()}. Load average at the end: {load_average()} (shared machine:
wall times are single runs, one after the other, and only indicative; epochs are exact).
Search: `{sweep_file}` (task {raw['task']['name']}, cell x units x learning rate, {search}, {raw['trials']}
trials x {raw['epochs']} epochs, random sampler seed {raw['seed']}: the same configurations in the same order in every run).
No-pruning best validation accuracy {base.best:.4f}; the bar is {threshold:.4f}, first reached by its trial
{base_reach[0]['number']} after {base_reach[1]} epochs ({base_reach[2]:.0f} s). Wall times run from the first
trial's start to the last trial's end (Optuna's timestamps). A setting is the sweep file's `pruner` (README).
Rerun: `{rerun}`

| pruner | complete / pruned / failed | epochs (vs none) | wall s (vs none) | best val acc | first within 0.5 pp | epochs to it (vs none's) | vs none's whole budget | wall s to it (vs none's) |{' values at their best |' if compared else ''} replay agrees |
|---|---|---|---|---|---|---|---|---|---|{'---|' if compared else ''}
{chr(10).join(rows)}

Replays of the no-pruning run's curves (exact epochs, no training; see the script's docstring), on this
order of trials and over {args.orders} random orders of the same trials (median and quartiles of the ratio of
epochs to the bar, inf where it is not reached; share of orders at or under {TARGET}x, share of orders where the bar is reached at all).{VALUES_NOTE if compared else ''}

| setting | complete / pruned | epochs (vs none) | best val acc | epochs to the bar (vs none's) | orders: median ratio (quartiles) | orders: <= {TARGET}x | orders: reached |{' values at their best |' if compared else ''}
|---|---|---|---|---|---|---|---|{'---|' if compared else ''}
{chr(10).join(replay_rows)}

{chr(10).join('- ' + line for line in lines)}
"""
    # pruning.yaml writes the section "pruning", pruning_cells.yaml "pruning-cells".
    title = "Pruning: compute to reach the no-pruning best"
    section = ("pruning", f"2. {title}") if args.sweep == SWEEP_FILE else \
        (args.sweep.stem.replace("_", "-"), f"2b. {title}, `{args.sweep.name}`")
    print(f"wrote {write_section(*section, body)}")


if __name__ == "__main__":
    main()
