"""Running a sweep: open or resume its Optuna study and MLflow runs, claim and run trials until the
target, then close the runs and replicate the best configurations if the sweep file asks for it.

A sweep is one Optuna study named after the sweep file's `name`; re-running the same file resumes
it until `trials` trials have finished (COMPLETE or PRUNED; failed trials are recorded and
replaced). The study remembers a fingerprint of the sweep definition, so a changed search space is
refused instead of silently mixed.

Any number of processes, on one machine or many, may run the same sweep at once (`study sweep
--jobs N`, `study worker`): they share the study through its storage. The study's lock
(`study.store.locations.StudyLock`) serialises the two moments that must not race: creating the study and
its MLflow runs, and claiming the next trial, so that workers stop at exactly `trials` finished
trials. Running trials send Optuna heartbeats; a trial whose process died (kill -9, a lost
machine) is failed once its heartbeat is older than the grace period, and its MLflow run is closed
as KILLED.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import optuna
import pandas as pd
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from study.analysis.scoring import best_per_value
from study.search.checks import check_model_size, refuse_lost_history
from study.search.progress import GuardedReporter, SilentReporter, SweepReporter
from study.search.samplers import make_pruner, make_sampler
from study.search.workers import sweep_target
from study.spec.base import ConfigError
from study.spec.states import finished_count
from study.spec.sweep_file import Sweep, SweepConfig
from study.store.locations import (
    StoreError, StoreFailed, StudyLock, check_tracking_reachable, check_writable, heartbeat_seconds, mask_password,
    store_failure, store_failures_in_threads_silenced, store_problem, threads_setting,
)
from study.store.parent_summary import summary_metrics
from study.store.stores import Stores
from study.store.trials import FINISHED, _best_trial, state_counts, trials_table
from study.train.data import load_task
from study.train.interrupts import on_hard_stop


def quiet_optuna() -> None:
    """Silence Optuna for this process, as every sweep does when it starts (never on import).

    Our own messages say what failed; Optuna's per-trial INFO/WARNING lines would repeat them.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass
class SweepResult:
    study_name: str
    storage: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    target: int
    started: int  # trials started by this call
    counts: dict[str, int]
    stopped_reason: str | None
    trials: pd.DataFrame = field(repr=False)
    best: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)
    replicates: list = field(default_factory=list)  # study.search.replicate.RetrainResult of the file's `replicates:`
    decided: bool = False  # a `decide:` sweep that stopped because every pair was decided

    @property
    def reached_target(self) -> bool:
        return self.decided or finished_count(self.counts) >= self.target


def _open_study(config: SweepConfig, storage: optuna.storages.BaseStorage, storage_url: str) -> optuna.Study:
    """Create the study, or load it after checking it was made from the same sweep definition."""
    fingerprint = config.study_fingerprint()
    if config.name in optuna.get_all_study_names(storage):
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        )
        recorded = study.user_attrs.get("fingerprint")
        if recorded is None and not study.trials:
            _describe_study(study, config)  # created by a process that stopped before describing it
            return study
        if recorded != fingerprint:
            changed = _changed_fields(json.loads(study.user_attrs.get("config", "{}")), config)
            raise ConfigError(
                f"study {config.name!r} in {mask_password(storage_url)} was created from a different sweep "
                f"definition (changed: {', '.join(changed) or 'unknown'}); give the sweep a new `name` "
                "to start a new study, or restore the original values to resume it"
            )
        return study
    study = optuna.create_study(
        study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        direction=config.objective.direction,
    )
    _describe_study(study, config)
    return study


def _describe_study(study: optuna.Study, config: SweepConfig) -> None:
    study.set_metric_names([config.objective.metric])  # optuna-dashboard's charts name it, not "Objective 0"
    study.set_user_attr("fingerprint", config.study_fingerprint())
    study.set_user_attr("config", json.dumps(masked_config(config)))
    study.set_user_attr("task", config.task.name)
    study.set_user_attr("metric", config.objective.metric)
    study.set_user_attr("scientific", config.scientific)


def masked_config(config: SweepConfig) -> dict[str, Any]:
    """The resolved config as plain data, with passwords in its store URLs masked (for tags and attrs)."""
    data = json.loads(config.model_dump_json())
    for key in ("storage", "tracking_uri"):
        if data.get(key):
            data[key] = mask_password(data[key])
    return data


def _changed_fields(recorded: dict[str, Any], config: SweepConfig) -> list[str]:
    current = json.loads(config.model_dump_json())
    ignored = {"trials", "storage", "tracking_uri", "max_consecutive_failures", "description", "log_models", "register_models"}
    return [key for key in current if key not in ignored and recorded.get(key) != current[key]]


def package_versions() -> dict[str, str]:
    versions = {}
    for package in ("rnn-study", "tensorflow", "tensorflow-cpu", "keras", "optuna", "mlflow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class _FailureStreak:
    """Stops the study after `limit` failed trials in a row (a broken setup, not bad luck)."""

    def __init__(self, limit: int):
        self.limit, self.streak, self.reasons = limit, 0, []
        self.stopped_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.streak, self.reasons = 0, []
            return
        self.streak += 1
        self.reasons.append(trial.user_attrs.get("fail_reason", "unknown error"))
        if self.streak >= self.limit:
            self.stopped_reason = (
                f"stopped after {self.streak} failed trials in a row (max_consecutive_failures); "
                f"last error: {self.reasons[-1]}"
            )
            study.stop()


STOPPED_BETWEEN_STORES = ("its process stopped after MLflow recorded the trial but before Optuna did; "
                          "Optuna failed the trial, which is run again")


@dataclass
class OpenSweep:
    """A sweep opened by this process: its study (created or resumed), its MLflow runs and target."""

    sweep: Sweep
    target: int
    stores: Stores
    storage: optuna.storages.RDBStorage  # the stores' Optuna storage, opened to write with heartbeats
    study: optuna.Study
    tracker: Any  # study.store.tracking.SweepTracker
    versions: dict[str, str]
    notes: list[str]
    stale: list[int] = field(default_factory=list)  # trials this process failed for want of heartbeats
    first_look: int | None = None  # a `decide:` sweep: looks once this many trials finished (the file's `trials`)
    last_look: Any = None  # study.search.decision.Look, the latest
    decided: bool = False

    def decided_now(self, finished: int, reporter: SweepReporter) -> bool:
        """A `decide:` sweep: whether every pair is decided on the complete paired draws (looked at
        again only when more trials have finished); False for any other sweep."""
        if self.first_look is None or finished < self.first_look:
            return False
        if self.last_look is None or self.last_look.finished != finished:
            from study.search.decision import look

            previous, self.last_look = self.last_look, look(self.config, trials_table(self.config.name, self.storage))
            self.last_look.finished = finished
            if previous is None or (previous.draws, previous.states) != (self.last_look.draws, self.last_look.states):
                reporter.decision_looked(self.last_look)  # said once per new round, not after each of its trials
        self.decided = self.last_look.decided
        return self.decided

    @property
    def config(self) -> SweepConfig:
        return self.sweep.config

    def lock(self) -> StudyLock:
        return StudyLock(self.storage, self.stores.storage, self.config.name)

    def finished_and_running(self) -> tuple[int, int]:
        trials = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        running = sum(t.state == TrialState.RUNNING for t in trials)
        return len(trials) - running, running

    def fail_stale_trials(self) -> None:
        """Fail trials whose process stopped sending heartbeats, and close their MLflow runs."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)
        self.close_orphaned_runs()

    def close_orphaned_runs(self, always: bool = False) -> int:
        if not (always or self.stale):
            return 0
        failed = set(self.stale)
        self.stale.clear()
        if failed:
            aligned = self.tracker.fail_finished_trial_runs(failed, STOPPED_BETWEEN_STORES)
            if aligned:
                self.notes.append(f"marked FAIL {aligned} MLflow run(s) whose process stopped after MLflow "
                                  "recorded the trial but before Optuna did (the trial is run again)")

        def live() -> set[int]:
            # Read after MLflow was searched: a trial started meanwhile is still seen as live.
            return {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}

        closed = self.tracker.close_orphaned_trial_runs(live) + self.tracker.close_dead_retrain_runs()
        if closed:
            self.notes.append(f"closed {closed} MLflow run(s) left RUNNING by a process that died")
        return closed

    def close(self, finished: bool) -> dict[str, int]:
        """Record the study's counts and best trial on the MLflow parent run; return the counts."""
        counts = state_counts(self.study)
        best = _best_trial(self.study)
        config = self.config
        # The best and mean score per compared value too, so the parent's row in the runs table answers.
        per_value = summary_metrics(trials_table(config.name, self.storage), config.scientific,
                                    f"best_{config.objective.metric}", config.objective.direction == "maximize")
        self.tracker.close_parent(
            summary={**{f"trials_{state.lower()}": n for state, n in counts.items()}, **per_value},
            best=None if best is None else {
                "trial": best.number, "value": best.value, "run_id": best.user_attrs.get("mlflow_run_id"),
            },
            finished=finished and (self.decided or finished_count(counts) >= self.target),
        )
        return counts

    def result(self, started: int, counts: dict[str, int], stopped_reason: str | None) -> SweepResult:
        config = self.config
        table = trials_table(config.name, self.storage)
        return SweepResult(
            study_name=config.name, storage=self.stores.storage, tracking_uri=self.stores.tracking_uri,
            experiment_id=self.tracker.experiment_id, parent_run_id=self.tracker.parent_run_id,
            target=self.target, started=started, counts=counts, stopped_reason=stopped_reason, trials=table,
            best=best_per_value(table, config.scientific, direction=config.objective.direction, config=config),
            notes=self.notes + ([self.last_look.text(capped_at=self.target if finished_count(counts) >= self.target else None)]
                                if self.last_look is not None else []), decided=self.decided,
        )


def open_sweep(
    sweep: Sweep,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
) -> OpenSweep:
    """Check the stores and the data, then create or resume the study and its MLflow parent run.

    Every check that can refuse the sweep (flags, stores, dataset) runs before anything is written.
    Creating the study and its MLflow experiment and parent run happens under the study's lock,
    so workers that start together share one of each.
    """
    quiet_optuna()
    from study.store.tracking import SweepTracker  # MLflow: only once the sweep is checked

    config = sweep.config
    target, first_look = sweep_target(config, trials)  # a `decide:` sweep: up to its cap
    stores = Stores.resolve(storage, tracking_uri, config)
    storage_url, tracking = stores.storage, stores.tracking_uri
    heartbeat_seconds()  # refuse a bad RNN_STUDY_HEARTBEAT_SECONDS or RNN_STUDY_THREADS before anything runs
    threads_setting()
    check_writable(storage_url, "storage")
    check_tracking_reachable(tracking)
    data = load_task(config.task)  # cached per process: a data error leaves nothing behind
    check_model_size(config, data, str(sweep.path))
    notes: list[str] = list(data.warnings)
    stale: list[int] = []
    rdb = stores.optuna_storage(create=True, on_stale_trial=lambda study, trial: stale.append(trial.number))
    versions = package_versions()
    with StudyLock(rdb, storage_url, config.name):
        refuse_lost_history(config.name, rdb, storage_url, tracking)
        try:
            study = _open_study(config, rdb, storage_url)
        except sqlalchemy.exc.SQLAlchemyError as err:
            raise StoreError(store_problem("storage", storage_url, err)) from None
        grid_size = config.grid_size()
        if grid_size is not None and target > grid_size:
            notes.append(f"the grid has {grid_size} points, so the sweep stops at {grid_size} trials, not {target}")
            target = grid_size
        for configuration in config.configurations:
            study.enqueue_trial(configuration, skip_if_exists=True)
        try:
            tracker = SweepTracker(tracking, experiment_name=config.name)
            tracker.open_parent(
                config.name,
                tags={
                    "task": config.task.name,
                    "sweep_file": str(sweep.path),
                    "sweep_sha256": sweep.file_sha256,
                    "fingerprint": config.study_fingerprint(),
                    "optuna_storage": mask_password(storage_url),
                    "metric": config.objective.metric,
                    "scientific": ",".join(config.scientific),
                    "target_trials": target,
                    **{f"version.{k}": v for k, v in versions.items()},
                },
                config=masked_config(config),
            )
        except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot track"
            raise StoreError(store_problem("tracking URI", tracking, err)) from None
    opened = OpenSweep(
        sweep=sweep, target=target, stores=stores, storage=rdb, study=study,
        tracker=tracker, versions=versions, notes=notes, stale=stale, first_look=first_look,
    )
    opened.fail_stale_trials()
    opened.close_orphaned_runs(always=True)
    return opened


def run_sweep(
    sweep: Sweep,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    reporter: SweepReporter | None = None,
    replicate: bool = True,
) -> SweepResult:
    """Run or resume `sweep` until `trials` (default: the file's) trials have finished, then, with
    `replicate`, run the replicates the sweep file asks for (see `replicate_if_asked`).

    Other processes may run the same sweep at the same time (`study worker`, which passes
    `replicate=False`): each claims one trial at a time while fewer than the target are finished or
    running, and waits while the missing trials are all running elsewhere, so together they stop
    at exactly the target.
    """
    # Every refusal (stores, data) comes before TensorFlow is imported: it answers in a second.
    opened = open_sweep(sweep, trials, storage, tracking_uri)
    config = opened.config
    reporter = GuardedReporter(reporter or SilentReporter())  # a failed print never fails a trial
    streak = _FailureStreak(config.max_consecutive_failures)
    completed = False
    started = 0
    try:
        from study.search.trial import Objective, configure_threads, long_lived_objects_frozen

        configure_threads(config.threads)  # before TensorFlow runs anything in this process
        reporter.sweep_started(config.name, opened.finished_and_running()[0], opened.target)
        objective = Objective(
            config, load_task(config.task), opened.tracker,
            run_tags={
                "study": config.name, "task": config.task.name, "sweep_sha256": sweep.file_sha256,
                **{f"version.{k}": v for k, v in opened.versions.items()},
            },
            reporter=reporter,
        )
        with long_lived_objects_frozen(), on_hard_stop(lambda: opened.close(finished=False)), \
                store_failures_in_threads_silenced():
            started = _run_until_target(opened, objective, streak, reporter)
            opened.decided_now(opened.finished_and_running()[0], reporter)  # the last look, at the cap too
        completed = True
    finally:
        try:
            opened.close_orphaned_runs(always=True)  # also a run this process could not close itself
            counts = opened.close(finished=completed)
        except Exception as err:  # noqa: BLE001 - the stores themselves failed
            if completed:
                raise StoreFailed(store_failure(err) or f"cannot record the end of the sweep: {err}") from None
            # else what stopped the sweep is already on its way up (a store failed, Ctrl-C): keep it
    result = opened.result(started, counts, streak.stopped_reason)
    if replicate:
        replicate_if_asked(result, config, reporter, opened.stores)
        register_if_asked(result, config, opened.stores)
    return result


def register_if_asked(result: SweepResult, config: SweepConfig, stores: Stores) -> None:
    """The sweep file's `register: true`: register the best trial's model of each compared value
    (`study.store.registry.register_best`) once the sweep has ended, and say so in its notes."""
    if not config.register_models or result.stopped_reason is not None:
        return
    from study.store.registry import register_best

    try:
        registered = register_best(config.name, stores)
    except LookupError as err:  # no logged model (`log_models: false`): the sweep itself stands
        result.notes.append(f"nothing registered: {err}")
        return
    result.notes.append(f"registered in the Model Registry as {registered[0].model_name!r}: "
                        + ", ".join(f"{r.alias} = version {r.version} (trial {r.trial})" for r in registered))


def replicate_if_asked(result: SweepResult, config: SweepConfig, reporter: SweepReporter, stores: Stores) -> None:
    """The sweep file's `replicates: N`: once the study has its target (and did not stop on
    failures), retrain the best configuration of each compared value with N new seeds.

    Replicates already tracked are skipped, so asking again trains nothing.
    """
    deciding = config.decide is not None and config.decide.evidence == "replicates"
    if not (config.replicates or deciding) or not result.reached_target or result.stopped_reason:
        return
    if "trial" not in result.best or result.best["trial"].dropna().empty:
        result.notes.append("no completed trial (all pruned or failed): nothing to replicate")
        return
    if deciding:  # rounds of replicates until every pair is decided, or the cap
        from study.search.decision import replicate_until_decided

        result.replicates, taken = replicate_until_decided(result.study_name, config, stores, reporter)
        result.decided = taken.decided
        result.notes.append(taken.text())
        return
    from study.search.replicate import replicate_best

    result.replicates = replicate_best(result.study_name, config.replicates, None, stores,
                                       progress=reporter.replicate_started)  # the sweep's stores, already open


# How often a worker with nothing to claim looks at the study again: a cheap query, and at the end
# of a sweep every worker but the last one to finish waits in this loop before it exits.
WAIT_SECONDS = 0.5


def _run_until_target(opened: OpenSweep, objective, streak: _FailureStreak, reporter: SweepReporter) -> int:
    """Claim and run trials until the study has `target` finished ones; return how many this ran.

    The next trial is claimed under the study lock, and only while finished + running trials are
    below the target; the lock is let go as soon as the trial exists (RUNNING), so other workers
    count it. Failed trials free their place, and so do trials of dead processes, once their
    heartbeat is older than the grace period.
    """
    study, target = opened.study, opened.target
    started = 0
    waiting = False
    while streak.stopped_reason is None:
        lock = opened.lock().acquire()
        try:
            opened.fail_stale_trials()
            finished, running = opened.finished_and_running()
            if finished >= target or opened.decided_now(finished, reporter):
                return started
            if finished + running < target:
                waiting = False

                def claimed(trial: optuna.Trial, lock=lock) -> float:
                    lock.release()  # the trial exists now: other workers count it
                    return objective(trial)

                started += 1
                try:
                    # No gc_after_trial: Keras' clear_session() collects before the next model anyway.
                    study.optimize(claimed, n_trials=1, catch=(Exception,), callbacks=[streak])
                except Exception as err:
                    # "Cannot tell a FAIL trial": another process failed it while this one was stopped.
                    if objective.outcome is None or not objective.outcome.taken_over:
                        failed = store_failure(err)  # Optuna's store: a full disk, a database gone
                        if failed is None:
                            raise
                        raise StoreFailed(failed) from None
                finally:
                    with contextlib.suppress(Exception):  # the stores may be what failed
                        _report_trial(opened, objective.outcome, reporter)
                if objective.outcome is not None and objective.outcome.tracking_failed:
                    raise StoreFailed(f"the tracking store {mask_password(opened.stores.tracking_uri)} failed: "
                                      f"{objective.outcome.reason}; finished trials are kept: run the same "
                                      "command again to resume once it works")
                continue
        finally:
            lock.release()
        if not waiting:
            waiting = True
            reporter.waiting(running, heartbeat_seconds()[1])
        time.sleep(WAIT_SECONDS)
    return started


def _report_trial(opened: OpenSweep, outcome, reporter: SweepReporter) -> None:
    """Say how a trial ended, once both stores have it: its state is Optuna's, as `study show` gives it."""
    if outcome is None:
        return
    if outcome.taken_over:
        opened.notes.append(f"trial {outcome.number}: {outcome.reason}")
    try:
        state = opened.storage.get_trial(outcome.trial_id).state.name
    except Exception:  # noqa: BLE001 - the storage is gone: say what this process recorded
        state = outcome.state
    if state == "RUNNING":
        return
    reporter.trial_ended(outcome.number, state, outcome.value if state != "FAIL" else None,
                         (outcome.reason or "failed in Optuna") if state == "FAIL" else None)
