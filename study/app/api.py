"""The public Python API: what a notebook calls, the same work as the `study` commands, returning data.

    import study
    result = study.run_sweep("sweeps/quick.yaml", jobs=2)   # or "quick", a dict, or a loaded Sweep
    study.trials("quick")                                   # DataFrame, as `study show quick --csv`
    study.history("quick")                                  # per-epoch DataFrame, as `study history`
    rep = study.report("quick")                             # writes reports/quick/, returns the result
    rep.verdict, rep.tables["best"], rep.figures
    study.doctor("quick")

Every function takes the stores as `storage=` / `tracking_uri=` (default: flag > environment >
sweep file > `mlruns/`, as the CLI). Heavy libraries load on the first call, never on import, and
each call configures the libraries' logging for itself, as the CLI does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(sweep: Any):
    """A `Sweep` from a path, a sweep name (`./sweeps/NAME.yaml`, else the shipped one), a dict of the
    sweep file's keys, or a `Sweep`."""
    return _load(sweep)[0]


def _load(sweep: Any):
    """`load`, and the line saying the shipped sweep file ran (or a local one hid it), if one did."""
    from study.spec.shipped import find_sweep
    from study.spec.sweep_file import Sweep, load_sweep, parse_config

    if isinstance(sweep, Sweep):
        return sweep, None
    if isinstance(sweep, dict):
        import hashlib
        import json

        raw = json.dumps(sweep, sort_keys=True, default=str).encode()
        return Sweep(config=parse_config(sweep, source="<dict>"), path=Path("<dict>"),
                     file_sha256=hashlib.sha256(raw).hexdigest()), None
    found = find_sweep(sweep)
    return load_sweep(found.path), found.note


def run_sweep(sweep: Any, jobs: int = 1, trials: int | None = None, storage: str | None = None,
              tracking_uri: str | None = None, replicate: bool = True):
    """Run or resume a sweep to its target; `jobs=N` uses N local worker processes.

    Returns the same `SweepResult` for any `jobs`; with workers, a worker that failed is named in
    its `notes` (its last line included). A sweep named rather than given by path says in its first
    note when the shipped sweep file ran, or a local file hid the shipped one.
    """
    loaded, note = _load(sweep)
    if jobs == 1:
        from study.search.sweep import run_sweep as run_in_process

        result = run_in_process(loaded, trials=trials, storage=storage, tracking_uri=tracking_uri, replicate=replicate)
    else:
        from study.search.workers import run_workers

        outcome = run_workers(loaded, jobs, trials=trials, storage=storage, tracking_uri=tracking_uri)
        for index in outcome.failed:
            tail = outcome.tails[index - 1][-1] if outcome.tails[index - 1] else "no output"
            outcome.sweep.notes.append(f"worker {index} exited with {outcome.exit_codes[index - 1]}: {tail}")
        result = outcome.sweep
    if note:
        result.notes.insert(0, note)
    return result


def trials(study_name: str, storage: str | None = None, tracking_uri: str | None = None):
    """Every trial of a study as a DataFrame: the study's trials table (Optuna's states and values,
    MLflow's run ids), as `study show --csv` writes it."""
    from study.store.stores import Stores

    return Stores.resolve(storage, tracking_uri).trials(study_name)


def history(study_name: str, storage: str | None = None, tracking_uri: str | None = None):
    """Every trial's per-epoch metrics as one tidy DataFrame (the table of `study history --csv`)."""
    from study.reporting.load import epoch_history

    return epoch_history(study_name, storage, tracking_uri)


def report(target: str, out: str | Path | None = None, compare: list[str] | None = None,
           storage: str | None = None, tracking_uri: str | None = None):
    """Write a study's lab report (default `reports/<study>/`) and return it: verdict, tables, figures."""
    from study.reporting.build import build_report

    return build_report(target, out=out, compare=compare, storage=storage, tracking_uri=tracking_uri)


def doctor(study_name: str, repair: bool = False, storage: str | None = None, tracking_uri: str | None = None):
    """Check that Optuna and MLflow tell the same story about a study (`repair=True` mends what it can)."""
    from study.store.doctor import check_study
    from study.store.stores import Stores

    return check_study(study_name, Stores.resolve(storage, tracking_uri), repair=repair)
