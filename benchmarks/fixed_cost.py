"""Benchmark: the fixed cost of one trial besides its epochs (target: <= 1.0 s on MNIST-1D).

The workload is the search of `benchmarks/sweeps/pruning.yaml` (cell x units x learning rate on
MNIST-1D, random sampler, seed 0: the same configurations in the same order in every run), run
through the real path, `study.search.sweep.run_sweep` with Optuna storage, MLflow runs and `log_models`,
as two studies in their own stores, one trial at a time, alternated (the order swapped each pair):

- **complete**: every trial trains its epochs (default 12, the sweep file's), its test set is
  evaluated at the best epoch and its model saved;
- **pruned**: the same trials (same params, same seeds), each stopped after its first epoch (a stub
  pruner says yes at the first report), as a pruner stops hopeless trials.

Per trial: its wall time (from the sweep loop's claim of the trial to the end of Optuna's `tell`,
so the marginal cost of one more trial in a sweep; opening and closing the study are per sweep
and not counted), its epochs (Keras, from `on_epoch_begin` to `on_epoch_end`, validation
included), the steady epoch time (median of epochs 2..n; a pruned trial takes its complete twin's)
and the **fixed cost = wall - epochs x steady epoch time**, split by timers around:

- build: `clear_session`, seeding, building and compiling the model, and getting it ready to train
  (`study.train.reuse.TracedModels.take`: a kept model loaded with its initial state, or a new one's
  optimizer and metric state built);
- first epoch: its excess over the steady epoch time (tracing and instantiating the training and
  validation steps for a new model);
- later epochs: their deviation from the steady time: load noise summed over n - 1 epochs, not a
  cost of the trial, so the headline figure leaves it out (it is printed beside it);
- fit other: Keras `fit` outside its epochs (data adapters, callbacks), less the writes below;
- test: evaluating the test set at the best epoch;
- model save: `TrialRun.log_model` (the best epoch's model written and logged as an MLflow Model);
- MLflow: `start_trial` (with its dataset input and the start of MLflow's system-metrics monitor, on
  unless `MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=false`), `log_epoch` (per epoch) and `finish` (final
  figures, `trial.json`);
- Optuna: every call into its storage from the trial's thread (claim, sampling, `report`,
  user attributes, `tell`);
- rest: what no timer covers (best weights kept and restored, parameter count, the sweep loop).

    .venv/bin/python benchmarks/fixed_cost.py                       # ~4 min on 2 idle cores; writes RESULTS.md
    .venv/bin/python benchmarks/fixed_cost.py --pairs 4 --epochs 4 --no-record
    .venv/bin/python benchmarks/fixed_cost.py --quick               # smoke run: 2 pairs, 3 epochs
    .venv/bin/python benchmarks/fixed_cost.py --profile /tmp/fc.prof --no-record   # cProfile of the trials
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import os
import pstats
import statistics
import tempfile
import threading
import time
import weakref
from collections import defaultdict
from pathlib import Path

import yaml
from results_file import load_average, machine, write_section

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _name in ("RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_name, None)

HERE = Path(__file__).resolve().parent
SWEEP_FILE = HERE / "sweeps" / "pruning.yaml"
TARGET = 1.0  # seconds
# The same benchmark on the code before issue 14 (commit 94d63c1; no model was reused), just before
# the recorded run: `PYTHONPATH=<a worktree of 94d63c1> .venv/bin/python benchmarks/fixed_cost.py --no-record`.
BEFORE = "complete 2.97 s, pruned 2.45 s (CPU 2.92 s, 2.45 s; first epoch 2.08 s and 2.11 s of it)"
VARIANTS = ("complete", "pruned")
PARTS = ("build", "first epoch", "later epochs", "fit other", "test", "model save", "MLflow", "Optuna", "rest")


# --------------------------------------------------------------------------- timers


class Timers:
    """Seconds spent in wrapped functions, per trial: outermost calls of the main thread only."""

    def __init__(self):
        self.main = threading.main_thread()
        self.active: set[str] = set()
        self.trial: dict[str, float] = defaultdict(float)
        self.trials: list[dict] = []
        self.loop_started: float | None = None
        self.profile: cProfile.Profile | None = None
        self.models: list[weakref.ref] = []  # every trial's model, to tell a reused one

    def wrap(self, owner, name: str, part: str) -> None:
        original = owner.__dict__[name]
        timers = self

        def timed(*args, **kwargs):
            if (threading.current_thread() is not timers.main or part in timers.active
                    or (part == "evaluate" and "fit" in timers.active)):  # validation: part of the epochs
                return original(*args, **kwargs)
            timers.active.add(part)
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                timers.active.discard(part)
                timers.add(part, seconds, cpu)
                if "fit" in timers.active and part in ("optuna", "log_epoch"):
                    timers.add(f"{part} in fit", seconds, cpu)

        setattr(owner, name, timed)

    def add(self, part: str, seconds: float, cpu: float) -> None:
        self.trial[part] += seconds
        self.trial[f"{part} cpu"] += cpu

    def install(self) -> None:
        import keras
        import optuna

        import study.search.sweep
        import study.search.trial
        import study.train.fit
        import study.train.reuse
        from study.store.tracking import SweepTracker, TrialRun

        self.wrap(keras.backend, "clear_session", "build")
        self.wrap(keras.utils, "set_random_seed", "build")
        self.wrap(study.train.fit, "build_model", "build")
        self.wrap(study.train.reuse.TracedModels, "take", "build")
        for name in ("fit", "evaluate"):
            if name not in keras.Model.__dict__:
                setattr(keras.Model, name, getattr(keras.Model, name))  # a copy on keras.Model itself, to wrap
            self.wrap(keras.Model, name, name)
        self.wrap(SweepTracker, "start_trial", "mlflow")
        self.wrap(TrialRun, "log_epoch", "log_epoch")
        self.wrap(TrialRun, "finish", "mlflow")
        self.wrap(TrialRun, "log_model", "model save")
        storage = optuna.storages.RDBStorage
        for name, value in list(vars(storage).items()):
            if callable(value) and not name.startswith("_"):
                self.wrap(storage, name, "optuna")
        self._wrap_training(study.search.trial)  # where the objective looks it up
        self._wrap_epochs(study.train.fit._BestEpochKeeper)
        self._wrap_loop(study.search.sweep)
        self._wrap_optimize(optuna.Study)

    def _wrap_training(self, module) -> None:
        original = module.train_and_evaluate
        timers = self

        def train_and_evaluate(*args, **kwargs):
            started = time.perf_counter()
            result = original(*args, **kwargs)
            timers.trial["train_and_evaluate"] += time.perf_counter() - started
            timers.trial["epoch_seconds"] = list(result.epoch_seconds)
            timers.trial["pruned_at"] = result.pruned_at
            timers.trial["value"] = result.value
            # The same model object as an earlier trial's: it was reused (study.train.reuse.TracedModels).
            timers.trial["reused"] = any(ref() is result.model for ref in timers.models)
            timers.models.append(weakref.ref(result.model))
            return result

        module.train_and_evaluate = train_and_evaluate

    def _wrap_epochs(self, keeper) -> None:
        """Each epoch's CPU seconds (all threads of the process) beside Keras' wall times."""
        begin, end = keeper.on_epoch_begin, keeper.on_epoch_end
        timers = self

        def on_epoch_begin(callback, epoch, logs=None):
            timers.epoch_cpu_started = time.process_time()
            return begin(callback, epoch, logs)

        def on_epoch_end(callback, epoch, logs=None):
            timers.trial.setdefault("epoch_cpu", []).append(time.process_time() - timers.epoch_cpu_started)
            return end(callback, epoch, logs)

        keeper.on_epoch_begin, keeper.on_epoch_end = on_epoch_begin, on_epoch_end

    def _wrap_loop(self, module) -> None:
        original = module._run_until_target
        timers = self

        def run_until_target(*args, **kwargs):
            timers.loop_started = time.perf_counter()  # the first trial's claim starts here
            timers.loop_cpu_started = time.process_time()
            if timers.profile is not None:
                timers.profile.enable()
            try:
                return original(*args, **kwargs)
            finally:
                if timers.profile is not None:
                    timers.profile.disable()

        module._run_until_target = run_until_target

    def _wrap_optimize(self, cls) -> None:
        original = cls.optimize
        timers = self

        def optimize(study, *args, **kwargs):
            try:
                return original(study, *args, **kwargs)
            finally:
                now, cpu = time.perf_counter(), time.process_time()
                trial = dict(timers.trial, wall=now - timers.loop_started, cpu=cpu - timers.loop_cpu_started)
                timers.trials.append(trial)
                timers.trial = defaultdict(float)
                timers.loop_started, timers.loop_cpu_started = now, cpu

        cls.optimize = optimize


def breakdown(trial: dict, cpu: bool = False) -> dict[str, float]:
    """The fixed cost of one trial split into PARTS (they add up to wall - epochs x steady), in wall
    seconds or, with `cpu`, in CPU seconds of the whole process."""
    suffix = " cpu" if cpu else ""
    epochs, steady = (trial["epoch_cpu"], trial["steady_cpu"]) if cpu else (trial["epoch_seconds"], trial["steady"])

    def get(part: str) -> float:
        return trial.get(part + suffix, 0.0)

    parts = {
        "build": get("build"),
        "first epoch": epochs[0] - steady,
        "later epochs": sum(e - steady for e in epochs[1:]),
        "fit other": get("fit") - sum(epochs) - get("optuna in fit") - get("log_epoch in fit"),
        "test": get("evaluate"),  # evaluate outside fit (the validation runs inside it, in the epochs)
        "model save": get("model save"),
        "MLflow": get("mlflow") + get("log_epoch"),
        "Optuna": get("optuna"),
    }
    fixed = trial["cpu" if cpu else "wall"] - len(epochs) * steady
    parts["rest"] = fixed - sum(parts.values())
    # The later epochs' deviation from their median is epoch-time noise (on a shared machine it sums
    # the load spikes of n - 1 epochs), not a cost of the trial: the headline leaves it out.
    return {"fixed": fixed, "fixed steady": fixed - parts["later epochs"], **parts}


# --------------------------------------------------------------------------- running


def write_sweep(raw: dict, name: str, folder: Path) -> Path:
    raw = copy.deepcopy(raw)
    raw["name"] = name
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@contextlib.contextmanager
def pruned_after_first_epoch():
    """The study's pruner stops every trial at its first report (epoch 1), through Optuna's own
    `report` and `should_prune`, as a pruner stops a hopeless trial."""
    import optuna

    import study.search.sweep

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    original = study.search.sweep.make_pruner
    study.search.sweep.make_pruner = lambda *args, **kwargs: AlwaysPrune()
    try:
        yield
    finally:
        study.search.sweep.make_pruner = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="counted pairs of trials (after 1 warm-up pair)")
    parser.add_argument("--epochs", type=int, help="epochs of a complete trial (default: the sweep file's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 pairs, 3 epochs")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the counted trials here; print the top")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.epochs = 2, args.epochs or 3

    raw = yaml.safe_load(SWEEP_FILE.read_text())
    raw["epochs"] = args.epochs or raw["epochs"]
    if raw["epochs"] < 3:
        raise SystemExit("--epochs must be at least 3 (the steady epoch time is the median of epochs 2..n)")
    raw["log_models"] = True

    import tensorflow as tf

    import study.train.reuse
    from study.spec.sweep_file import load_sweep
    from study.search.sweep import run_sweep

    folder = Path(tempfile.mkdtemp(prefix="fixed-cost-benchmark-"))
    sweeps = {variant: load_sweep(write_sweep(raw, f"fixed-cost-{variant}", folder)) for variant in VARIANTS}
    timers = Timers()
    timers.install()
    print(f"MNIST-1D, {raw['epochs']} epochs, batch {raw['batch_size']}; TensorFlow intra-op threads: "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; models reused: yes; "
          f"stores in {folder}", flush=True)

    trials = []
    for pair in range(args.pairs + 1):  # pair 0 is the warm-up, not counted
        if args.profile and pair == 1:
            timers.profile = cProfile.Profile()
        study.train.reuse.TRACED_MODELS.clear()  # the pair's first trial builds and traces its model, the second reuses it
        order = VARIANTS if pair % 2 == 0 else VARIANTS[::-1]
        done = {}
        for variant in order:
            stores = folder / variant
            with pruned_after_first_epoch() if variant == "pruned" else contextlib.nullcontext():
                result = run_sweep(sweeps[variant], trials=pair + 1, storage=f"sqlite:///{stores}/optuna.db",
                                   tracking_uri=f"sqlite:///{stores}/mlflow.db")
            trial = timers.trials[-1]
            row = result.trials.set_index("trial").loc[pair]
            expected = "COMPLETE" if variant == "complete" else "PRUNED"
            if row["state"] != expected:
                raise SystemExit(f"{variant} trial {pair} ended {row['state']}: {row.get('fail_reason')}")
            trial.update(pair=pair, variant=variant, params={k: row[k] for k in ("cell", "units", "learning_rate")},
                         seed=row["seed"])
            done[variant] = trial
        complete, pruned = done["complete"], done["pruned"]
        if complete["params"] != pruned["params"] or complete["seed"] != pruned["seed"]:
            raise SystemExit(f"pair {pair}: the two studies drew different trials: {complete['params']} / {pruned['params']}")
        for trial in (complete, pruned):  # a pruned trial has one epoch: it takes its complete twin's steady time
            trial["steady"] = statistics.median(complete["epoch_seconds"][1:])
            trial["steady_cpu"] = statistics.median(complete["epoch_cpu"][1:])
        if pair:
            trials += [complete, pruned]
        label = "warm-up" if pair == 0 else f"pair {pair}"
        model = f"{complete['params']['cell']}-{complete['params']['units']} lr {complete['params']['learning_rate']:.4f}"
        print(f"{label:>8}: {model}: steady epoch {complete['steady']:.2f} s; " + "; ".join(
            f"{t['variant']} ({'reused' if t['reused'] else 'new'}) {t['wall']:.2f} s -> fixed {breakdown(t)['fixed steady']:.2f} s "
            f"(CPU {breakdown(t, cpu=True)['fixed steady']:.2f} s) [" + ", ".join(f"{k} {breakdown(t)[k]:.2f}" for k in PARTS) + "]"
            for t in (done[v] for v in order)), flush=True)

    report(trials, raw, args)
    if timers.profile is not None:
        timers.profile.dump_stats(str(args.profile))
        print(f"\ncProfile of the counted trials: {args.profile}")
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)


def report(trials: list[dict], raw: dict, args) -> None:
    median = statistics.median
    groups: dict[tuple[str, str], dict] = {}
    for variant in VARIANTS:
        for model in ("new", "reused"):
            chosen = [t for t in trials if t["variant"] == variant and t["reused"] == (model == "reused")]
            if not chosen:
                continue
            parts, cpu_parts = [breakdown(t) for t in chosen], [breakdown(t, cpu=True) for t in chosen]
            groups[variant, model] = {
                "n": len(chosen), "wall": median(t["wall"] for t in chosen), "steady": median(t["steady"] for t in chosen),
                "cpu": median(t["cpu"] for t in chosen), "steady cpu": median(t["steady_cpu"] for t in chosen),
                **{k: median(p[k] for p in parts) for k in ("fixed", "fixed steady", *PARTS)},
                **{f"{k} cpu": median(p[k] for p in cpu_parts) for k in ("fixed", "fixed steady", *PARTS)},
            }
    verdicts = []
    for model, what in (("reused", "a trial of an architecture this process trained before"),
                        ("new", "a trial that builds a new model")):
        figures = {variant: g["fixed steady"] for (variant, kind), g in groups.items() if kind == model}
        if figures:
            shown = ", ".join(f"{variant} {value:.2f} s" for variant, value in figures.items())
            met = "met" if max(figures.values()) <= TARGET else "missed"
            verdicts.append(f"{what}: {shown} ({met})")
    verdict = "; ".join(verdicts)
    lines = [f"{variant} trial, {model} model: median fixed cost {g['fixed steady']:.2f} s (CPU {g['fixed steady cpu']:.2f} s); "
             f"with the later epochs' noise {g['fixed']:.2f} s; {g['n']} trials, median wall {g['wall']:.2f} s at a steady "
             f"epoch of {g['steady']:.2f} s" for (variant, model), g in groups.items()]
    print("\n" + "\n".join(lines) + f"\ntarget <= {TARGET:.1f} s: {verdict}; load average: {load_average()}")
    table = ["| trial | model | n | seconds | trial | steady epoch | fixed | fixed, noise in | " + " | ".join(PARTS) + " |",
             "|---|---|---|---|---|---|---|---|" + "---|" * len(PARTS)]
    for (variant, model), g in groups.items():
        for unit, suffix in (("wall", ""), ("CPU", " cpu")):
            trial, steady = (g["wall"], g["steady"]) if not suffix else (g["cpu"], g["steady cpu"])
            table.append(f"| {variant} | {model} | {g['n']} | {unit} | {trial:.2f} | {steady:.2f} | "
                         f"**{g['fixed steady' + suffix]:.2f}** | {g['fixed' + suffix]:.2f} | "
                         + " | ".join(f"{g[k + suffix]:.2f}" for k in PARTS) + " |")
    print("\n".join(table))
    if args.no_record or args.quick:
        return

    body = f"""
**Fixed cost per trial (wall - epochs x steady epoch time), medians, target <= {TARGET:.1f} s: {verdict}.**

Machine: {machine()}. Load average at the end: {load_average()} (shared machine: medians over
alternated pairs; CPU seconds, of the whole process, are less sensitive to other load than wall seconds).
Workload: `benchmarks/sweeps/pruning.yaml` (MNIST-1D, cell x units x learning rate, random sampler
seed 0), {raw['epochs']} epochs, batch {raw['batch_size']}, `log_models` on; {args.pairs} pairs of trials with the
same params and seed (complete; pruned after epoch 1) after a warm-up pair, the order swapped each
pair. Before each pair the kept models are dropped, so the pair's first trial builds and traces a new
model and the second reuses it, as every later trial of an architecture does in a search. "Fixed"
leaves out the later epochs' deviation from their median (load noise summed over n - 1 epochs);
"fixed, noise in" is wall - n x steady as it comes.
Rerun: `.venv/bin/python benchmarks/fixed_cost.py`

{chr(10).join('- ' + line for line in lines)}
- before issue 14 (every trial built and traced a new model): {BEFORE}

Medians per part, in wall seconds and in CPU seconds of the process ("new": a model of an
architecture this process has not trained yet; "reused": one it has):

{chr(10).join(table)}
"""
    print(f"wrote {write_section('fixed_cost', 'Fixed cost per trial (MNIST-1D)', body)}")


if __name__ == "__main__":
    main()
