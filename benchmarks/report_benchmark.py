"""Benchmark: how long `study.reporting.build.build_report` takes for a 100-trial study (target: < 60 s on 2 cores).

It fills a fresh MLflow store and Optuna storage with a synthetic 100-trial digits study, written
directly rather than trained: the runs through `study.store.tracking.SweepTracker` as a sweep writes them
(params, 20 epochs of metrics, summary metrics, a `model.keras` for each completed trial; some trials
failed or pruned), and the matching Optuna trials through optuna itself (this script is a fixture,
outside the package's one-module-per-store rule). Then it times `build_report` in a fresh Python
process, so the time includes importing TensorFlow, pandas and matplotlib, as `study report` pays.

    .venv/bin/python benchmarks/report_benchmark.py              # fill a temporary folder, time, clean up
    .venv/bin/python benchmarks/report_benchmark.py --trials 200 --keep /tmp/bench   # keep stores and report
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState, create_trial  # noqa: E402

from study.spec.sweep_file import parse_config  # noqa: E402
from study.store.tracking import SweepTracker  # noqa: E402

NAME = "report-benchmark"
EPOCHS = 20
SPACE = {
    "cell": {"role": "scientific", "choices": ["SimpleRNN", "GRU", "LSTM"]},
    "units": {"choices": [16, 32, 64]},
    "depth": {"choices": [1, 2]},
    "output_dropout": {"low": 0.0, "high": 0.3},
    "learning_rate": {"low": 1e-4, "high": 3e-2, "log": True},
}
DISTRIBUTIONS = {
    "cell": CategoricalDistribution(["SimpleRNN", "GRU", "LSTM"]),
    "units": CategoricalDistribution([16, 32, 64]),
    "depth": CategoricalDistribution([1, 2]),
    "output_dropout": FloatDistribution(0.0, 0.3),
    "learning_rate": FloatDistribution(1e-4, 3e-2, log=True),
}
BASE_ACCURACY = {"SimpleRNN": 0.90, "GRU": 0.95, "LSTM": 0.955}


def synthetic_trial(rng: np.random.Generator) -> tuple[dict, str, list[float]]:
    """Params, final state and a validation-accuracy curve shaped like a real trial's."""
    params = {
        "cell": str(rng.choice(["SimpleRNN", "GRU", "LSTM"])),
        "units": int(rng.choice([16, 32, 64])),
        "depth": int(rng.choice([1, 2])),
        "output_dropout": float(rng.uniform(0.0, 0.3)),
        "learning_rate": float(10 ** rng.uniform(-4, math.log10(3e-2))),
    }
    state = str(rng.choice(["COMPLETE", "FAIL", "PRUNED"], p=[0.85, 0.08, 0.07]))
    # Best near lr = 5e-3; more units help a little; noise between trials.
    final = (BASE_ACCURACY[params["cell"]] - 0.04 * (math.log10(params["learning_rate"]) + 2.3) ** 2
             + 0.01 * math.log2(params["units"] / 16) + rng.normal(0, 0.01))
    epochs = EPOCHS if state == "COMPLETE" else int(rng.integers(2, 6))
    curve = [min(0.995, final * (1 - math.exp(-(e + 1) / 3)) + rng.normal(0, 0.005)) for e in range(epochs)]
    return params, state, curve


def fill(tracking_uri: str, storage: str, trials: int, seed: int = 0) -> None:
    import keras

    from study.train.models import build_model
    from study.train.sizes import ModelSpec

    config = parse_config({"name": NAME, "task": {"name": "digits"}, "space": SPACE, "trials": trials,
                           "epochs": EPOCHS, "batch_size": 32, "sampler": "tpe"})
    tracker = SweepTracker(tracking_uri, experiment_name=NAME)
    tracker.open_parent(NAME, tags={"task": "digits", "metric": "val_accuracy", "scientific": "cell",
                                    "target_trials": trials, "optuna_storage": storage},
                        config=json.loads(config.model_dump_json()))
    study = optuna.create_study(study_name=NAME, storage=storage, direction="maximize")
    spec = ModelSpec(input_shape=(8, 8), kind="multiclass", num_classes=10)
    models = {}  # one real (untrained) model per (cell, units, depth): the report loads a few of them
    rng = np.random.default_rng(seed)
    for number in range(trials):
        params, state, curve = synthetic_trial(rng)
        run = tracker.start_trial(number, params={**config.fixed_params(), **params, "epochs": EPOCHS},
                                  tags={"cell": params["cell"], "seed": number})
        for epoch, value in enumerate(curve, 1):
            run.log_epoch(epoch, {"loss": 2.3 * (1 - value) + 0.05, "val_loss": 2.3 * (1 - value) + 0.08,
                                  "accuracy": min(0.999, value + 0.01), "val_accuracy": value})
        best = float(max(curve))
        key = (params["cell"], params["units"], params["depth"])
        if state == "FAIL":
            run.finish("FAIL", metrics={}, tags={"fail_reason": f"loss became nan at epoch {len(curve)}"})
            study.add_trial(create_trial(state=TrialState.FAIL, params=params, distributions=DISTRIBUTIONS))
            continue
        if state == "COMPLETE":
            if key not in models:
                keras.backend.clear_session()
                models[key] = build_model(spec, {**params, "output_dropout": 0.0})
            run.log_model(models[key])
        summary = {"best_val_accuracy": best, "best_epoch": int(np.argmax(curve)) + 1, "test_accuracy": best - 0.01,
                   "test_loss": 0.3, "param_count": models[key].count_params() if key in models else 1000,
                   "train_seconds": 2.0 * len(curve), "seconds_per_epoch": 2.0}
        run.finish(state, metrics=summary if state == "COMPLETE" else {"best_val_accuracy": best}, tags={})
        study.add_trial(create_trial(
            state=TrialState[state], params=params, distributions=DISTRIBUTIONS,
            value=best if state == "COMPLETE" else None,
            intermediate_values={e: v for e, v in enumerate(curve, 1)},
        ))
    tracker.close_parent(summary={}, best=None, finished=True)


TIMED = """
import sys, time
started = time.perf_counter()
from study.reporting.build import build_report
result = build_report(sys.argv[1], out=sys.argv[2], storage=sys.argv[3], tracking_uri=sys.argv[4])
print(f"{time.perf_counter() - started:.1f}", len(result.files), len(result.trials), sep="\\t")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="fill and report into this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    tracking_uri, storage = f"sqlite:///{folder}/mlflow.db", f"sqlite:///{folder}/optuna.db"
    try:
        if not (folder / "mlflow.db").exists():
            started = time.perf_counter()
            fill(tracking_uri, storage, args.trials)
            print(f"filled {args.trials} trials in {time.perf_counter() - started:.1f} s", flush=True)
        done = subprocess.run([sys.executable, "-c", TIMED, NAME, str(folder / "report"), storage, tracking_uri],
                              capture_output=True, text=True, check=True)
        seconds, files, rows = done.stdout.strip().splitlines()[-1].split("\t")
        print(f"build_report: {seconds} s for a {rows}-trial study ({files} files; fresh process, "
              f"imports included; {os.cpu_count()} CPU cores)")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
