"""The public Python API: what a notebook calls, the same work as the `study` commands, returning data.

    import study
    result = study.run_sweep("sweeps/quick.yaml", jobs=2)   # or a dict, or a loaded Sweep
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
    """A `Sweep` from a path, a sweep name under `./sweeps/`, a dict of the sweep file's keys, or a `Sweep`."""
    from study.spec.base import ConfigError
    from study.spec.sweep_file import Sweep, load_sweep, parse_config

    if isinstance(sweep, Sweep):
        return sweep
    if isinstance(sweep, dict):
        import hashlib
        import json

        raw = json.dumps(sweep, sort_keys=True, default=str).encode()
        return Sweep(config=parse_config(sweep, source="<dict>"), path=Path("<dict>"),
                     file_sha256=hashlib.sha256(raw).hexdigest())
    path = Path(sweep)
    if not path.exists() and path.suffix == "" and (Path("sweeps") / f"{path}.yaml").exists():
        path = Path("sweeps") / f"{path}.yaml"
    if not path.exists():
        raise ConfigError(f"{sweep}: no such sweep file (nor sweeps/{sweep}.yaml)")
    return load_sweep(path)


def run_sweep(sweep: Any, jobs: int = 1, trials: int | None = None, storage: str | None = None,
              tracking_uri: str | None = None, replicate: bool = True):
    """Run or resume a sweep to its target; `jobs=N` uses N local worker processes.

    Returns the same `SweepResult` for any `jobs`; with workers, a worker that failed is named in
    its `notes` (its last line included).
    """
    loaded = load(sweep)
    if jobs == 1:
        from study.search.sweep import run_sweep as run_in_process

        return run_in_process(loaded, trials=trials, storage=storage, tracking_uri=tracking_uri, replicate=replicate)
    from study.search.workers import run_workers

    outcome = run_workers(loaded, jobs, trials=trials, storage=storage, tracking_uri=tracking_uri)
    for index in outcome.failed:
        tail = outcome.tails[index - 1][-1] if outcome.tails[index - 1] else "no output"
        outcome.sweep.notes.append(f"worker {index} exited with {outcome.exit_codes[index - 1]}: {tail}")
    return outcome.sweep


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
