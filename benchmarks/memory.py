"""Benchmark: peak resident memory of one worker on the MNIST-shaped task (target: <= 2.5 GiB).

The workload is `benchmarks/sweeps/memory.yaml`: one GRU-64 trial on all of Fashion-MNIST read
row by row (54k train / 6k validation / 10k test images of 28 x 28), 2 epochs, batch 256. It runs
as the real command, `study sweep FILE` on fresh temporary stores, in a child process; its peak
resident set size is the `ru_maxrss` that `os.wait4` returns for that child (the kernel's
high-water mark, as `/usr/bin/time -v` reports it). For scale, two more children are measured
the same way: one that only imports what a worker imports (TensorFlow, Keras, MLflow, Optuna),
and a bare Keras script training the same model on the same arrays; and the data arrays' own
size is printed.

    .venv/bin/python benchmarks/memory.py                # ~2 min on 2 cores; writes RESULTS.md
    .venv/bin/python benchmarks/memory.py --epochs 1 --no-record
    .venv/bin/python benchmarks/memory.py --quick        # smoke run: 10k images, 1 epoch, study only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from results_file import machine, write_section

HERE = Path(__file__).resolve().parent
SWEEP_FILE = HERE / "sweeps" / "memory.yaml"
TARGET_GIB = 2.5

IMPORTS = "import tensorflow, keras, mlflow, optuna, study.search.sweep, study.search.trial, study.store.tracking"
BARE = """
import sys
import keras
from study.spec.sweep_file import load_sweep
from study.train.data import load_task
config = load_sweep(sys.argv[1]).config
data = load_task(config.task)
params = config.fixed_params()
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=data.x_train.shape[1:]), getattr(keras.layers, params["cell"])(params["units"]),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=config.epochs,
          batch_size=config.batch_size, verbose=0)
model.evaluate(data.x_test, data.y_test, batch_size=max(config.batch_size, 1024), verbose=0)
"""


def peak_rss(command: list[str]) -> tuple[float, float]:
    """Run `command` as a child; return (its peak resident memory in GiB, seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RNN_STUDY_THREADS", "RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE.parent)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(command[:4])} ... failed ({child.returncode}):\n{log.read()[-3000:]}")
    return usage.ru_maxrss / 2**20, time.perf_counter() - started  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override the sweep file's epochs")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the study command (the peak is their maximum)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k training images, 1 epoch, study only")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    raw = yaml.safe_load(SWEEP_FILE.read_text())
    if args.quick:
        raw["task"]["train_size"], raw["epochs"] = 10000, 1
    raw["epochs"] = args.epochs or raw["epochs"]
    folder = Path(tempfile.mkdtemp(prefix="memory-benchmark-"))
    sweep_path = folder / "memory.yaml"
    sweep_path.write_text(yaml.safe_dump(raw, sort_keys=False))

    from study.spec.sweep_file import load_sweep
    from study.train.data import load_task

    data = load_task(load_sweep(sweep_path).config.task)
    arrays = sum(value.nbytes for value in vars(data).values() if hasattr(value, "nbytes")) / 2**20
    print(f"{data.description}; data arrays {arrays:.0f} MiB", flush=True)

    study = str(Path(sys.executable).with_name("study"))
    peaks, times = [], []
    for repeat in range(args.repeats):
        store = folder / f"stores-{repeat}"
        peak, seconds = peak_rss([study, "sweep", str(sweep_path), "--storage", f"sqlite:///{store}/optuna.db",
                                  "--tracking-uri", f"sqlite:///{store}/mlflow.db"])
        peaks.append(peak)
        times.append(seconds)
        print(f"study sweep (one worker): peak RSS {peak:.2f} GiB ({seconds:.0f} s)", flush=True)
    peak = max(peaks)
    baselines = {}
    if not args.quick:
        baselines["imports only"] = peak_rss([sys.executable, "-c", IMPORTS])
        baselines["bare Keras, same model and arrays"] = peak_rss([sys.executable, "-c", BARE, str(sweep_path)])
        for label, (gib, seconds) in baselines.items():
            print(f"{label}: peak RSS {gib:.2f} GiB ({seconds:.0f} s)", flush=True)

    verdict = "met" if peak <= TARGET_GIB else "missed"
    print(f"\npeak resident memory of one worker: {peak:.2f} GiB (target <= {TARGET_GIB} GiB: {verdict})")
    if args.no_record or args.quick:
        return
    rows = "\n".join(f"| {label} | {gib:.2f} | {seconds:.0f} |" for label, (gib, seconds) in baselines.items())
    body = f"""
**Peak resident memory of one worker: {peak:.2f} GiB** (target <= {TARGET_GIB} GiB: {verdict}).

Machine: {machine()}.
Workload: `benchmarks/sweeps/memory.yaml` ({data.description}; GRU-64, {raw['epochs']} epochs, batch
{raw['batch_size']}); the data arrays themselves take {arrays:.0f} MiB. Peak = `ru_maxrss` of the child process
(`os.wait4`), {args.repeats} run(s) of `study sweep` on fresh stores.
Rerun: `.venv/bin/python benchmarks/memory.py`

| process | peak RSS (GiB) | seconds |
|---|---|---|
| `study sweep` (one worker, tracking and all) | {peak:.2f} | {max(times):.0f} |
{rows}
"""
    print(f"wrote {write_section('memory', '4. Memory: peak resident memory of one worker', body)}")


if __name__ == "__main__":
    main()
