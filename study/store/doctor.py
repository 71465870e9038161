"""Checking a study's two stores against each other, and repairing what can be repaired safely.

A trial counts as finished only when Optuna (the search state) and MLflow (the runs reports read)
both say so. `check_study` lists every way they disagree: an Optuna store that lost trials MLflow
still holds, trial runs that are duplicated or belong to no trial, replicates that repeat one
(trial, seed index), finished trials without a run, runs whose state differs from their trial's,
runs of any role left RUNNING by a process that died, and RUNNING trials whose heartbeat ran out.
With `repair=True` it fixes what one store settles: Optuna decides what a trial is (its state;
failed trials are run again), so runs are aligned to it, leftovers are closed as KILLED, deleted
runs restored and extra runs set aside (role `orphan`); nothing is deleted. A run of a live
process is never a leftover, nor is the parent run of a sweep that is alive (`_sweep_alive`). It
reads each store without creating it (a folder without stores stays empty) and returns plain
data; `study doctor` prints it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from study.spec.states import FINISHED_STATES, MLFLOW_STATUS
from study.store.locations import (
    StudyLock, StudyNotFound, dangling_note, heartbeat_seconds, local_file_exists, mask_password, sqlite_path,
)
from study.store.optuna_private import stale_trial_ids, trial_id_of
from study.store.owners import owner_alive
from study.store.stores import Stores
from study.store.trials import DIED

BETWEEN_STORES = ("its process stopped after MLflow recorded the trial but before Optuna did; Optuna failed the "
                  "trial, which is run again")


@dataclass
class Finding:
    problem: str  # lost-history, stale-trial, running-leftover, state-mismatch, duplicate-run, duplicate-replicate,
    #               orphan-run, missing-run
    trial: int | None
    run_id: str | None
    detail: str
    fix: str = ""  # what --repair does, or "" when it cannot repair this safely
    repaired: bool = False


@dataclass
class DoctorResult:
    study_name: str
    storage: str
    tracking_uri: str
    trials: int  # Optuna trials
    runs: int  # MLflow runs of the study (any role, not deleted)
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        """What is still wrong (not repaired)."""
        return [f for f in self.findings if not f.repaired]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "problem": f.problem, "trial": f.trial, "run": f.run_id or "", "detail": f.detail,
            "action": ("repaired: " if f.repaired else "--repair: " if f.fix else "by hand: ")
            + (f.fix or "see detail"),
        } for f in self.findings], columns=["problem", "trial", "run", "detail", "action"])


def _optuna_trials(study_name: str, stores: Stores, repair: bool, findings: list[Finding]) -> dict | None:
    """The study's trials by number (None: no such study); with `repair`, stale RUNNING trials failed first."""
    path = sqlite_path(stores.storage)
    if local_file_exists(stores.storage, "storage") is False or (path is not None and path.stat().st_size == 0):
        return None
    rdb = stores.optuna_storage()
    if study_name not in optuna.get_all_study_names(rdb):
        return None
    study = optuna.load_study(study_name=study_name, storage=rdb)
    stale = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if t.number in _stale_numbers(study, rdb)]
    if stale:
        if repair:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optuna.storages.fail_stale_trials(study)
        for number in stale:
            findings.append(Finding("stale-trial", number, None,
                                    "RUNNING in Optuna, but its heartbeat ran out: its process died",
                                    "failed in Optuna (it is run again)", repaired=repair))
    return {t.number: t for t in study.get_trials(deepcopy=False)}


def _stale_numbers(study: optuna.Study, rdb) -> set[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = stale_trial_ids(rdb, study) if rdb.get_heartbeat_interval() else set()
    return {t.number for t in study.get_trials(deepcopy=False) if trial_id_of(t) in ids}


def check_study(study_name: str, stores: Stores, repair: bool = False) -> DoctorResult:
    """Compare the study's Optuna trials with its MLflow runs, each store read as it is (not the
    joined trials table: the doctor looks for where they differ); with `repair`, fix what is safe."""
    from study.store.tracking import repair_run, study_runs

    storage_url, tracking = stores.storage, stores.tracking_uri
    runs = study_runs(tracking, study_name)  # MLflow first: a run exists only once its trial does
    findings: list[Finding] = []
    trials = _optuna_trials(study_name, stores, repair, findings)
    if trials is None and not runs:
        notes = "".join(dict.fromkeys(dangling_note(path) for path in (sqlite_path(storage_url), sqlite_path(tracking))
                                      if path))
        raise StudyNotFound(f"no study named {study_name!r} in {mask_password(storage_url)} or "
                            f"{mask_password(tracking)}{notes}")
    trials = trials or {}
    active = [r for r in runs if not r["deleted"]]
    result = DoctorResult(study_name, storage_url, tracking, len(trials), len(active), findings)

    def act(finding: Finding, run_id: str, **change: Any) -> None:
        findings.append(finding)
        if repair and finding.fix:
            repair_run(tracking, run_id, **change)
            finding.repaired = True

    trial_runs: dict[int, list[dict]] = {}
    for run in active:
        if run["role"] == "trial" and run["trial_number"] is not None:
            trial_runs.setdefault(run["trial_number"], []).append(run)

    lost = sorted(set(trial_runs) - set(trials))
    if lost:
        shown = ", ".join(map(str, lost[:10])) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
        findings.append(Finding(
            "lost-history", None, None,
            f"MLflow holds runs of trial(s) {shown} that the Optuna store {mask_password(storage_url)} does not "
            "know: it was emptied or replaced. Restore it (or pass the --storage that holds it), or give the "
            "sweep a new name; a sweep on it is refused"))

    for number, trial in sorted(trials.items()):
        state = trial.state.name
        recorded = trial.user_attrs.get("mlflow_run_id")
        found = trial_runs.get(number, [])
        run = next((r for r in found if r["run_id"] == recorded), found[0] if len(found) == 1 else None)
        for extra in found:
            if run is not None and extra is not run:
                act(Finding("duplicate-run", number, extra["run_id"],
                            f"a second run of trial {number} (Optuna's is {run['run_id']})",
                            "set aside as run_role=orphan"),
                    extra["run_id"], role="orphan", reason=f"a duplicate run of trial {number}")
        if run is None:
            if len(found) > 1:
                findings.append(Finding("duplicate-run", number, None,
                                        f"{len(found)} runs of trial {number} and Optuna names none of them"))
                continue
            deleted = next((r for r in runs if r["deleted"] and r["run_id"] == recorded), None)
            if deleted is not None:
                act(Finding("missing-run", number, recorded, f"Optuna {state}, its MLflow run was deleted",
                            "restored"), recorded, restore=True)
                run = dict(deleted, deleted=False)
            elif state in FINISHED_STATES or recorded:
                findings.append(Finding("missing-run", number, recorded,
                                        f"Optuna {state}, but MLflow has no run of this trial; reports will not "
                                        "count it"))
                continue
            else:
                continue  # failed before its run was created (the tracking store itself failed)
        _compare(number, trial, run, act)

    _duplicate_replicates(active, act)
    live_trials = any(t.state == TrialState.RUNNING for t in trials.values())
    for run in active:
        if run["status"] != "RUNNING":
            continue
        if run["role"] in ("rerun", "replicate"):
            alive = owner_alive(run["owner"])
            if alive is False:
                act(Finding("running-leftover", run["trial_number"], run["run_id"],
                            f"a {run['role']} left RUNNING by a process that died", "closed as KILLED"),
                    run["run_id"], state="FAIL", status="KILLED", reason=f"the process running this {run['role']} died")
            elif alive is None:
                findings.append(Finding("running-leftover", run["trial_number"], run["run_id"],
                                        f"a {run['role']} RUNNING in a process of another machine (or an unnamed "
                                        f"one: {run['owner'] or 'no owner_process tag'}); close it in the MLflow "
                                        "UI if nothing runs it"))
        elif run["role"] == "parent" and not live_trials and not _sweep_alive(run, trials, stores, study_name):
            target = run["tags"].get("target_trials", "")
            done = sum(t.state.name in FINISHED_STATES for t in trials.values())
            finished = target.isdigit() and done >= int(target)
            act(Finding("running-leftover", None, run["run_id"],
                        "the study's parent run is RUNNING but no trial runs (its sweep was killed)",
                        f"ended as {'FINISHED' if finished else 'KILLED'}"),
                run["run_id"], status="FINISHED" if finished else "KILLED")
    return result


def _sweep_alive(parent: dict, trials: dict, stores: Stores, study_name: str) -> bool:
    """Whether a RUNNING parent run with no trial running belongs to a sweep that is alive: its
    owner process runs (a sweep between opening the study and its first trial: TensorFlow is
    loading), the study's lock is held (a worker claiming a trial), or the sweep was opened, or a
    trial started or ended, within the heartbeat grace period (a sweep on another machine)."""
    from study.store.tracking import OPENED_TAG

    if owner_alive(parent["owner"]) is True:
        return True
    _, grace = heartbeat_seconds()
    now = time.time()
    opened = parent["tags"].get(OPENED_TAG, "")
    if opened.isdigit() and now - int(opened) / 1000 < grace:
        return True
    moments = [moment for t in trials.values() for moment in (t.datetime_start, t.datetime_complete) if moment]
    if moments and now - max(moments).timestamp() < grace:
        return True
    try:
        return StudyLock(stores.optuna_storage(), stores.storage, study_name).held_elsewhere()
    except Exception:  # noqa: BLE001 - no Optuna store to lock (it was lost): nothing claims trials there
        return False


def _duplicate_replicates(active: list[dict], act) -> None:
    """Replicates that repeat one (trial, seed index): two `study replicate` that raced, before
    replicates were claimed. The first finished one stays; the others are set aside, as reports
    would otherwise count one seed twice."""
    finished: dict[tuple[str, str], list[dict]] = {}
    for run in active:
        tags = run["tags"]
        if run["role"] == "replicate" and run["status"] == "FINISHED" and run["state"] == "COMPLETE":
            key = (tags.get("replicate_of_trial", ""), tags.get("replicate_index", ""))
            finished.setdefault(key, []).append(run)
    for (trial, index), found in sorted(finished.items()):
        kept, *extras = sorted(found, key=lambda r: (r["start_time"] or 0, r["run_id"]))
        for extra in extras:
            act(Finding("duplicate-replicate", int(trial) if trial.isdigit() else None, extra["run_id"],
                        f"a second replicate {index} of trial {trial} (seed {extra['tags'].get('seed', '?')}; the "
                        f"first is {kept['run_id']}): reports would count its seed twice",
                        "set aside as run_role=orphan"),
                extra["run_id"], role="orphan", reason=f"a duplicate of replicate {index} of trial {trial}")


def _compare(number: int, trial, run: dict, act) -> None:
    """One trial and its run: align the run to Optuna's state where they differ."""
    state, status, said = trial.state.name, run["status"], run["state"]
    if state == "RUNNING":
        if status != "RUNNING":  # MLflow closed it, Optuna was never told: died between the two writes?
            act(Finding("state-mismatch", number, run["run_id"],
                        f"Optuna RUNNING, MLflow {said or '?'}/{status}: its process stopped between the two "
                        "stores' writes (or is finishing now); once its heartbeat runs out Optuna fails it "
                        "(it is run again) and --repair marks the run FAIL"), run["run_id"])
        return  # a live trial (a dead one was failed above, with --repair)
    if state == "FAIL":
        reason = trial.user_attrs.get("fail_reason") or DIED
        if status == "RUNNING":
            act(Finding("running-leftover", number, run["run_id"], "Optuna FAIL, its run still RUNNING",
                        "closed as KILLED"), run["run_id"], state="FAIL", status="KILLED", reason=reason)
        elif said != "FAIL" or status == "FINISHED":
            act(Finding("state-mismatch", number, run["run_id"], f"Optuna FAIL, MLflow {said or '?'}/{status}",
                        "marked FAIL (KILLED)"),
                run["run_id"], state="FAIL", status="KILLED", reason=BETWEEN_STORES if said != "FAIL" else reason)
        return
    if said != state or status != MLFLOW_STATUS[state]:
        metrics = {k: v for k, v in trial.user_attrs.items() if isinstance(v, (int, float)) and k != "seed"}
        kind = "running-leftover" if status == "RUNNING" else "state-mismatch"
        act(Finding(kind, number, run["run_id"], f"Optuna {state}, MLflow {said or '?'}/{status}",
                    f"marked {state} with Optuna's figures"),
            run["run_id"], state=state, status=MLFLOW_STATUS[state], metrics=metrics)
