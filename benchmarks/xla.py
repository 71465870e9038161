"""Benchmark: where XLA (`jit_compile: true`) wins on this machine, trial by trial.

XLA compiles each new model's training and evaluation steps (several seconds, paid by every
trial, since every trial builds a new model) and then runs each epoch faster. Whether a trial
gains depends on how much training it does. For each workload below, one trial is trained with
XLA off and on (alternated, same seed, same arrays, `study.train.fit.train_and_evaluate`, TensorFlow's
default threads unless --threads), and the script prints the trial's wall time, its first epoch
(tracing and compiling included), the median of the later epochs, and the break-even: the epochs
after which XLA's faster epochs have paid for its compiling. `jit_compile: auto` uses that
figure (see `study.train.models.resolve_jit_compile`).

    .venv/bin/python benchmarks/xla.py                 # ~6 min on 2 cores; writes RESULTS.md
    .venv/bin/python benchmarks/xla.py --threads 1     # as each of 2 workers runs (no RESULTS.md)
    .venv/bin/python benchmarks/xla.py --quick         # smoke run: the smallest workload, 2 epochs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from results_file import load_average, machine, write_section

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (label, task, params, epochs, batch size): the offline tasks, from tiny to MNIST-shaped.
WORKLOADS = [
    ("digits, GRU-32", {"name": "digits"}, {"cell": "GRU", "units": 32}, 5, 64),
    ("sine, LSTM-50", {"name": "sine", "length": 4000, "window": 20}, {"cell": "LSTM", "units": 50}, 5, 32),
    ("mnist1d, GRU-64", {"name": "mnist1d"}, {"cell": "GRU", "units": 64}, 5, 64),
    ("mnist1d, SimpleRNN-64 relu", {"name": "mnist1d"}, {"cell": "SimpleRNN", "units": 64, "activation": "relu"}, 5, 64),
    ("fashion rows 10k, GRU-64", {"name": "fashion_mnist", "layout": "rows", "train_size": 10000},
     {"cell": "GRU", "units": 64}, 3, 256),
    ("fashion rows 10k, LSTM-64", {"name": "fashion_mnist", "layout": "rows", "train_size": 10000},
     {"cell": "LSTM", "units": 64}, 3, 256),
]


def time_trial(task: dict, params: dict, epochs: int, batch_size: int, jit: bool) -> dict:
    from study.spec.sweep_file import parse_config
    from study.train.data import load_task
    from study.train.fit import train_and_evaluate

    config = parse_config({"name": "xla", "task": task, "space": {k: {"value": v} for k, v in params.items()},
                           "trials": 1, "epochs": epochs, "batch_size": batch_size}, "benchmarks/xla.py")
    data = load_task(config.task)
    metric = config.objective.metric
    started = time.perf_counter()
    result = train_and_evaluate(data, config.fixed_params(), epochs=epochs, batch_size=batch_size, seed=0,
                                metric=metric, direction=config.objective.direction, jit_compile=jit)
    return {"seconds": time.perf_counter() - started, "first": result.epoch_seconds[0],
            "later": statistics.median(result.epoch_seconds[1:]), "value": result.value,
            "samples": len(data.x_train), "steps": data.x_train.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="off/on pairs per workload (order swapped each time)")
    parser.add_argument("--threads", type=int, help="TensorFlow CPU threads (default: TensorFlow's choice)")
    parser.add_argument("--quick", action="store_true", help="smoke run: the smallest workload, 2 epochs, 1 pair")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from study.search.trial import configure_threads

    configure_threads(args.threads)
    workloads = [(*WORKLOADS[0][:3], 2, WORKLOADS[0][4])] if args.quick else WORKLOADS
    repeats = 1 if args.quick else args.repeats

    rows = []
    for label, task, params, epochs, batch_size in workloads:
        runs = {False: [], True: []}
        for repeat in range(repeats):
            for jit in ((False, True) if repeat % 2 == 0 else (True, False)):
                runs[jit].append(time_trial(task, params, epochs, batch_size, jit))
        off, on = ({k: statistics.median(r[k] for r in runs[jit]) for k in runs[jit][0]} for jit in (False, True))
        saved_per_epoch = off["later"] - on["later"]
        # Extra seconds XLA costs up front: its first epoch (compiling), plus compiling the test step.
        upfront = (on["seconds"] - epochs * on["later"]) - (off["seconds"] - epochs * off["later"])
        break_even = upfront / saved_per_epoch if saved_per_epoch > 0 else float("inf")
        rows.append((label, epochs, off, on, break_even))
        print(f"{label:>28}: trial off {off['seconds']:6.1f} s, on {on['seconds']:6.1f} s ({on['seconds'] / off['seconds']:.2f}x); "
              f"later epochs {off['later']:.2f} -> {on['later']:.2f} s; first epoch {off['first']:.1f} -> {on['first']:.1f} s; "
              f"break-even {break_even:.1f} epochs; best value {off['value']:.4f} / {on['value']:.4f}", flush=True)
    if args.no_record or args.quick or args.threads:
        return

    table = ["| workload | train samples x steps | epochs | trial s, XLA off | trial s, XLA on | on/off | epoch s off -> on | "
             "first epoch s off -> on | break-even (epochs) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, epochs, off, on, break_even in rows:
        table.append(f"| {label} | {off['samples']} x {off['steps']} | {epochs} | {off['seconds']:.1f} | {on['seconds']:.1f} "
                     f"| {on['seconds'] / off['seconds']:.2f} | {off['later']:.2f} -> {on['later']:.2f} "
                     f"| {off['first']:.1f} -> {on['first']:.1f} | {break_even:.1f} |")
    body = f"""
XLA per trial, off vs on (medians of {repeats} alternated pairs). Machine: {machine()}. Load average
at the end: {load_average()}. Rerun: `.venv/bin/python benchmarks/xla.py`

{chr(10).join(table)}

Break-even = XLA's extra up-front seconds (compiling the training and test steps) / seconds it
saves per epoch. `jit_compile: auto` turns XLA on for a trial when its epochs exceed that point.
"""
    print(f"wrote {write_section('xla', 'XLA: which trials it speeds up (CPU)', body)}")


if __name__ == "__main__":
    main()
