"""Retraining recorded trials: rerun one exactly, or replicate the best of each compared value.

A trial is fully described by its recorded params, seed and the study's config, so it can be
trained again. `rerun_trial` repeats a trial with its own seed and says how close it came to the
recorded score (a reproducibility check); `replicate_best` retrains the best configuration of
each compared value (e.g. each cell) with new seeds, so reports can show mean and spread instead
of one lucky run. Every retraining is an MLflow run nested under the study's parent run, tagged
with its role (`rerun` or `replicate`) and the trial it repeats.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from study.analysis.scoring import best_per_value
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.seeds import replicate_seed
from study.store.stores import Stores
from study.store.trials import TrialRecord, load_trial
from study.train.interrupts import CTRL_C, Interrupted, on_hard_stop


@dataclass
class RetrainResult:
    study_name: str
    trial: int
    role: str  # "rerun" or "replicate"
    seed: int
    metric: str
    recorded: float | None  # the trial's recorded score
    value: float  # this retraining's score (best validation value over the epochs)
    test_metrics: dict[str, float] = field(default_factory=dict)
    param_count: int = 0
    run_id: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.recorded is None else self.value - self.recorded


def retrain(record: TrialRecord, seed: int, tracking_uri: str, role: str, index: int = 0) -> RetrainResult:
    """Train `record`'s configuration again with `seed` and track it as a nested run."""
    from study.store.tracking import SweepTracker

    tracker = SweepTracker(tracking_uri, experiment_name=record.config.name)
    tracker.attach_parent(record.study_name)
    tracker.close_dead_retrain_runs()  # reruns or replicates of a process killed before it closed them
    return _train(record, seed, _start_run(tracker, record, seed, role, index), role)


def _start_run(tracker, record: TrialRecord, seed: int, role: str, index: int):
    """The RUNNING MLflow run of one retraining, nested under the study's parent run."""
    from study.search.trial import fixed_settings

    config = record.config
    return tracker.start_trial(
        record.number,
        params={**record.params, **fixed_settings(config)},
        tags={"study": record.study_name, "task": config.task.name, "cell": record.params.get("cell"),
              "seed": seed, f"{role}_of_trial": record.number, f"{role}_index": index},
        role=role,
        run_name=f"{role}-{record.number:04d}-{index}" if role == "replicate" else f"rerun-{record.number:04d}",
    )


def _train(record: TrialRecord, seed: int, run, role: str) -> RetrainResult:
    """Train the retraining whose run `run` is, record it there and end the run (never left RUNNING)."""
    from study.train.data import load_task
    from study.train.fit import train_and_evaluate
    from study.search.trial import failure_reason, record_failure, record_result, result_metrics

    config = record.config
    metric = config.objective.metric
    data = load_task(config.task)
    try:
        with on_hard_stop(lambda: record_failure(run, Interrupted(), CTRL_C)):
            result = train_and_evaluate(
                data, record.params, epochs=config.epochs, batch_size=config.batch_size, seed=seed,
                metric=metric, direction=config.objective.direction, on_epoch=run.log_epoch,
                jit_compile=config.jit_compile,  # the same kernels as the original trial
            )
        summary = result_metrics(result, metric)
        if record.value is not None:
            summary[f"recorded_{metric}"] = record.value
        record_result(run, result, record.params, seed, summary, log_model=False)
    except (Exception, KeyboardInterrupt) as err:  # recording too: a run is never left RUNNING
        with contextlib.suppress(Exception):
            record_failure(run, err, failure_reason(err))
        raise
    return RetrainResult(
        study_name=record.study_name, trial=record.number, role=role, seed=seed, metric=metric,
        recorded=record.value if role == "rerun" else None, value=result.value,
        test_metrics=result.test_metrics, param_count=result.param_count, run_id=run.run_id,
    )


def rerun_trial(study_name: str, number: int, stores: Stores) -> RetrainResult:
    """Retrain trial `number` from its recorded params and seed; compare with its recorded score."""
    record = load_trial(study_name, number, stores.optuna_storage())
    if record.state != "COMPLETE":
        raise ValueError(f"trial {number} of {study_name!r} is {record.state}; only completed trials have a score to reproduce")
    return retrain(record, record.seed, stores.tracking_uri, role="rerun")


def replicate_best(
    study_name: str,
    seeds: int,
    compare: list[str] | None,
    stores: Stores,
    progress=None,
) -> list[RetrainResult]:
    """Retrain the best trial of each compared value with `seeds` new seeds each.

    Replicates already tracked are skipped, so an interrupted replication resumes where it
    stopped and asking again for the same number of seeds trains nothing. Each replicate, a
    (trial, seed index), is claimed once: its run is created under the study's lock, after looking
    at the replicates finished or running, so replications that run at once (two `study replicate`,
    or one beside a sweep's) share the work instead of each training every seed.
    """
    from study.store.locations import StudyLock
    from study.store.tracking import SweepTracker
    from study.search.trial import long_lived_objects_frozen  # TensorFlow: only once there is something to train

    storage, tracking = stores.optuna_storage(), stores.tracking_uri
    table = stores.trials(study_name)
    first = load_trial(study_name, int(table["trial"].iloc[0]), storage) if not table.empty else None
    if first is None:
        raise ValueError(f"study {study_name!r} has no trials to replicate")
    config = first.config
    dimensions = compare if compare is not None else config.scientific
    choices = [name for name in HYPERPARAMETERS if name in table]
    for dimension in dimensions:
        if dimension not in choices:
            raise ValueError(f"cannot compare by {dimension!r}: not a hyperparameter of study {study_name!r}; "
                             f"choose from {', '.join(choices)}")
    best = best_per_value(table, dimensions, direction=config.objective.direction, config=config).dropna(subset=["trial"])
    if best.empty:
        states = table["state"].value_counts()
        raise ValueError(f"study {study_name!r} has no completed trial to replicate ("
                         + ", ".join(f"{count} {state.lower()}" for state, count in states.items()) + ")")
    records = [load_trial(study_name, int(number), storage) for number in best["trial"]]
    wanted = [(record, index) for record in records for index in range(seeds)]
    if not wanted or not set(_key(r, i) for r, i in wanted) - claimed_replicates(tracking, study_name):
        return []  # nothing to train: no tracker, lock or TensorFlow
    tracker = SweepTracker(tracking, experiment_name=config.name)
    tracker.attach_parent(study_name)
    lock = StudyLock(storage, stores.storage, study_name)
    results = []
    with long_lived_objects_frozen():  # as in a sweep: no full GC walk before each model
        for record, index in wanted:
            seed = replicate_seed(config.seed, record.number, index)
            with lock:
                tracker.close_dead_retrain_runs()  # replicates of a process killed before it closed them
                if _key(record, index) in claimed_replicates(tracking, study_name):
                    continue  # finished already, or another process runs it now
                run = _start_run(tracker, record, seed, "replicate", index)
            if progress is not None:
                progress(record, index)
            results.append(_train(record, seed, run, "replicate"))
    return results


def _key(record: TrialRecord, index: int) -> tuple[int, int]:
    return record.number, index


def claimed_replicates(tracking_uri: str, study_name: str) -> set[tuple[int, int]]:
    """(trial, index) of every replicate that finished or is claimed: RUNNING in a process that is
    alive, or of another machine, which cannot be told (one whose process died is free again)."""
    from study.store.owners import owner_alive
    from study.store.tracking import OWNER_TAG, load_runs

    runs = load_runs(tracking_uri, study_name, role="replicate")
    if runs.empty:
        return set()
    owners = runs[f"tags.{OWNER_TAG}"] if f"tags.{OWNER_TAG}" in runs else pd.Series("", index=runs.index)
    alive = owners.map(lambda owner: owner_alive(owner if isinstance(owner, str) else "") is not False)
    return tracked_replicates(runs) | tracked_replicates(runs[alive.astype(bool)], status="RUNNING")


def tracked_replicates(runs: pd.DataFrame, status: str = "FINISHED") -> set[tuple[int, int]]:
    """(trial, index) of every replicate run that finished (or has another `status`)."""
    if runs.empty:
        return set()
    chosen = runs[runs["status"] == status]
    return {(int(t), int(i)) for t, i in zip(chosen["tags.replicate_of_trial"], chosen["tags.replicate_index"])}


def describe(result: RetrainResult) -> dict[str, Any]:
    return {
        "trial": result.trial, "role": result.role, "seed": result.seed,
        f"recorded_{result.metric}": result.recorded, result.metric: result.value,
        "difference": result.difference, **result.test_metrics, "run_id": result.run_id,
    }
