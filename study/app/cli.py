"""The `study` command: a thin layer that calls library functions and prints what they return.

Exit codes: 0 success; 1 the sweep stopped early (too many failed trials); 2 bad input (sweep
file, flag, storage URL or dataset), reported before anything is trained or written; 130
interrupted by Ctrl-C (finished trials are kept; the same command resumes).
"""

from __future__ import annotations

import atexit
import gc
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from study.spec.config import (
    CELL_COLOURS, DEFAULT_STORAGE, DEFAULT_TRACKING_URI, STORAGE_ENV, TRACKING_ENV, ConfigError, load_sweep,
)
from study.search.progress import describe_params, waiting_text

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is made: `study sweep --jobs N` starts its workers first

app = typer.Typer(
    help="Tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies (Optuna + MLflow).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no `<bool>` after flags, brackets shown as written
)
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs are read wide.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

def _store_option(flag: str, what: str, env: str, default: str, from_file: bool) -> typer.models.OptionInfo:
    fallback = f"the sweep file's `{flag[2:].replace('-', '_')}`, else {default}" if from_file else default
    return typer.Option(None, flag, metavar=what.split()[-1], show_default=False,
                        help=f"{what} [env var: {env}; default: {fallback}]")


StorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=False)
TrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI, from_file=False)
# Commands that read a sweep file, whose `storage` / `tracking_uri` come before the defaults.
FileStorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=True)
FileTrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI,
                                   from_file=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: MESSAGE` on stderr (the message literally: paths and hints hold brackets) and
    return the exit to raise."""
    from rich.text import Text

    errors.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def stopping_cleanly(stopped: str):
    """Ctrl-C and SIGTERM stop the command between writes (`study.train.interrupts`); a hard stop inside
    one long training step prints the same `error: STOPPED` line as a Ctrl-C caught here does."""
    from study.train.interrupts import graceful_interrupts

    return graceful_interrupts(say=lambda text: errors.print(text, highlight=False, markup=False),
                               farewell=f"error: {stopped}")


# --------------------------------------------------------------------------- sweep


class RichReporter:
    """Two progress bars (trials, and epochs of the current trial) and one line per trial."""

    def __init__(self, searched: list[str], metric: str, scientific: list[str] | None = None):
        self.searched, self.metric, self.scientific = searched, metric, scientific or searched
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.trials_bar = self.progress.add_task("trials", total=None)
        self.epochs_bar = self.progress.add_task("epochs", total=None, visible=False)
        self.params: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def sweep_started(self, study_name: str, finished: int, target: int) -> None:
        self.progress.update(self.trials_bar, description=f"{study_name}: trials", total=target, completed=finished)
        if finished:
            self.progress.console.print(f"resuming {study_name!r}: {finished} of {target} trials already finished")

    def trial_started(self, number: int, params: dict[str, Any], epochs: int) -> None:
        self.params = params
        self.progress.reset(self.epochs_bar, total=epochs, visible=True,
                            description=f"trial {number} ({describe_params(params, self.searched)}): epochs")

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        value = logs.get(self.metric)
        suffix = f" {self.metric}={value:.4f}" if value is not None and math.isfinite(value) else ""
        self.progress.update(self.epochs_bar, advance=1,
                             description=f"trial {number} ({describe_params(self.params, self.searched)}):{suffix}")

    def trial_ended(self, number: int, state: str, value: float | None, reason: str | None) -> None:
        line = f"trial {number:>3} {describe_params(self.params, self.searched)}"
        if state == "FAIL":
            self.progress.console.print(f"{line} [red]FAILED[/]: {reason}", highlight=False)
        elif state == "PRUNED":
            self.progress.console.print(f"{line} [yellow]pruned[/] (best {self.metric} so far {value:.4f})", highlight=False)
            self.progress.advance(self.trials_bar)
        else:
            self.progress.console.print(f"{line} -> best {self.metric} {value:.4f}", highlight=False)
            self.progress.advance(self.trials_bar)
        self.progress.update(self.epochs_bar, visible=False)

    def waiting(self, running: int, grace_seconds: int) -> None:
        self.progress.console.print(waiting_text(running, grace_seconds), highlight=False, markup=False)

    def replicate_started(self, record, index: int) -> None:
        self.progress.reset(self.epochs_bar, total=None, visible=True, description=(
            f"replicate {index + 1} of trial {record.number} ({describe_params(record.params, self.scientific)})"))


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="sweep file, e.g. sweeps/quick.yaml"),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="trials that must finish (default: the file's `trials`)"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
    jobs: int = typer.Option(1, "--jobs", "-j", help="worker processes on this machine, each with an equal share of the CPU threads"),
) -> None:
    """Run a sweep, or resume it: finished trials are kept and the study continues to its target."""
    from study.train.data import DataError
    from study.store.locations import StoreFailed, StudyNotFound, mask_password

    resume = f"study sweep {file}" + (f" --jobs {jobs}" if jobs != 1 else "")
    stopped = f"interrupted; finished trials are saved. Resume with: {resume}"
    try:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1 (got {jobs})")
        loaded = load_sweep(file)
        config = loaded.config
        with stopping_cleanly(stopped):
            if jobs == 1:
                from study.search.sweep import run_sweep  # Optuna, SQLAlchemy, pandas: with --jobs, after the workers start

                with RichReporter(list(config.searched), config.objective.metric, config.scientific) as reporter:
                    result = run_sweep(loaded, trials=trials, storage=storage, tracking_uri=tracking_uri, reporter=reporter)
                failed_workers = None
            else:
                result, failed_workers = _sweep_with_workers(loaded, jobs, trials, storage, tracking_uri)
    except (ConfigError, DataError, StudyNotFound) as err:
        raise fail(str(err))
    except StoreFailed as err:
        raise fail(str(err), code=1)
    except KeyboardInterrupt:
        raise fail(stopped, code=130)

    console.print()
    _print_outcome(result, f"this run started {result.started}")
    if not result.best.empty:
        title = "best trial per " + (", ".join(config.scientific) or "study")
        console.print(dataframe_table(best_columns(result.best), title=title))
    if failed_workers:
        codes = [code for _, code, _ in failed_workers]
        for index, code, last in failed_workers:
            errors.print(f"worker {index} exited with code {code}: {last}", highlight=False, soft_wrap=True)
        raise fail(f"{len(failed_workers)} of {jobs} workers failed; run the same command to resume",
                   code=2 if all(code == 2 for code in codes) else 1)
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)
    if result.replicates:
        _print_replicates(result.replicates, result.study_name)
    console.print(f"trials: study show {result.study_name}   runs: study ui   (MLflow: {mask_password(result.tracking_uri)})")


def _print_outcome(result, ran: str) -> None:
    """The sweep's notes, then one line of trial counts by state against the target."""
    for note in result.notes:
        console.print(f"note: {note}")
    counts = ", ".join(f"{n} {state.lower()}" for state, n in result.counts.items() if n)
    console.print(f"study {result.study_name!r}: {counts or 'no trials'} (target {result.target}); {ran}")


def _sweep_with_workers(loaded, jobs: int, trials, storage, tracking_uri):
    """`study sweep --jobs N`: N `study worker` processes, one bar over the study's finished trials."""
    from study.search.progress import SilentReporter
    from study.search.workers import run_workers

    config = loaded.config
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    bar = progress.add_task(f"{config.name}: trials", total=None)

    def show_line(worker: int, line: str) -> None:
        if worker == 0:
            progress.console.print(line, highlight=False, markup=False)
        else:
            progress.console.print(f"[dim]worker {worker}[/] {escape(line)}", highlight=False)

    def show_progress(finished: int, target: int, counts: dict[str, int]) -> None:
        others = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n and s in ("RUNNING", "FAIL"))
        progress.update(bar, total=target, completed=finished,
                        description=f"{config.name}: trials" + (f" ({others})" if others else ""))

    class ReplicateLines(SilentReporter):
        def replicate_started(self, record, index: int) -> None:
            show_line(0, f"replicate {index + 1} of trial {record.number} "
                         f"({describe_params(record.params, config.scientific)})")

    with progress:
        outcome = run_workers(loaded, jobs, trials, storage, tracking_uri, on_line=show_line,
                              on_progress=show_progress, reporter=ReplicateLines())
    failed = [(i, outcome.exit_codes[i - 1], (outcome.tails[i - 1] or ["(no output)"])[-1]) for i in outcome.failed]
    return outcome.sweep, failed


@app.command()
def worker(
    file: Path = typer.Argument(..., help="sweep file, e.g. sweeps/quick.yaml (the same file on every machine)"),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="trials that must finish (default: the file's `trials`)"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
) -> None:
    """Join a shared sweep as one worker (any machine): run trials until the study has its target."""
    from study.train.data import DataError
    from study.search.progress import LineReporter
    from study.store.locations import StoreFailed, StudyNotFound
    from study.search.sweep import run_sweep
    from study.search.workers import PARENT_GO_ENV, prepare_then_wait_for_parent, stop_with_parent

    stopped = f"interrupted; finished trials are saved. Resume with: study worker {file}"
    try:
        loaded = load_sweep(file)
        config = loaded.config
        if os.environ.get(PARENT_GO_ENV):
            if not prepare_then_wait_for_parent(loaded):
                return  # started by `study sweep --jobs N`, which stopped first or needs no more workers
            stop_with_parent()  # never an orphan training on after `study sweep --jobs N` was killed
        reporter = LineReporter(list(config.searched), config.objective.metric,
                                write=lambda line: console.print(line, highlight=False, markup=False))
        with stopping_cleanly(stopped):
            result = run_sweep(loaded, trials=trials, storage=storage, tracking_uri=tracking_uri, reporter=reporter,
                               replicate=False)  # `study sweep` replicates, once, not every worker
    except (ConfigError, DataError, StudyNotFound) as err:
        raise fail(str(err))
    except StoreFailed as err:
        raise fail(str(err), code=1)
    except KeyboardInterrupt:
        raise fail(stopped, code=130)
    _print_outcome(result, f"this worker ran {result.started}")
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)


# --------------------------------------------------------------------------- rerun / replicate


@app.command()
def rerun(
    study_name: str = typer.Argument(..., metavar="STUDY"),
    trial: int = typer.Argument(..., help="trial number (see `study show`)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Retrain one trial from its recorded params and seed, and say how close it came."""
    from study.train.data import DataError
    from study.search.replicate import rerun_trial
    from study.store.locations import StudyNotFound

    stopped = "interrupted; the rerun's MLflow run is marked KILLED"
    try:
        with stopping_cleanly(stopped), console.status(f"retraining trial {trial} of {study_name}"):
            result = rerun_trial(study_name, trial, storage, tracking_uri)
    except (ConfigError, DataError, StudyNotFound, LookupError, ValueError) as err:
        raise fail(str(err))
    except KeyboardInterrupt:
        raise fail(stopped, code=130)
    percent = "accuracy" in result.metric
    difference = f"{result.difference * 100:+.2f} pp" if percent else f"{result.difference:+.5g}"
    console.print(f"trial {trial} ({study_name}), seed {result.seed}: recorded {result.metric} {result.recorded:.4f}, "
                  f"rerun {result.value:.4f}, difference {difference}  (MLflow run {result.run_id})")


@app.command()
def replicate(
    study_name: str = typer.Argument(..., metavar="STUDY"),
    seeds: int = typer.Option(3, "--seeds", min=1, max=100, help="new seeds per compared value"),
    compare: Optional[str] = typer.Option(None, "--compare", help="comma-separated dimensions (default: the scientific ones)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Retrain the best configuration of each compared value with new seeds (mean and spread, not one lucky run)."""
    from study.train.data import DataError
    from study.search.replicate import replicate_best
    from study.store.locations import StudyNotFound

    dimensions = compare.split(",") if compare else None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("replicates", total=None)

        def show(record, index: int) -> None:
            bar.update(task, description=f"replicate {index + 1}/{seeds} of trial {record.number} "
                                         f"({describe_params(record.params, dimensions or record.config.scientific)})")

        stopped = ("interrupted; finished replicates are kept. Resume with: study replicate "
                   f"{study_name} --seeds {seeds}" + (f" --compare {compare}" if compare else ""))
        try:
            with stopping_cleanly(stopped):
                results = replicate_best(study_name, seeds, dimensions, storage, tracking_uri, progress=show)
        except (ConfigError, DataError, StudyNotFound, LookupError, ValueError) as err:
            raise fail(str(err))
        except KeyboardInterrupt:
            raise fail(stopped, code=130)
    if results:
        _print_replicates(results, study_name)
    else:
        console.print("all requested replicates were already tracked; nothing to train")


def _print_replicates(results: list, study_name: str) -> None:
    import pandas as pd

    rows = pd.DataFrame([{"trial": r.trial, "seed": r.seed, r.metric: r.value, **r.test_metrics} for r in results])
    console.print(dataframe_table(rows, title=f"new replicates of {study_name}"))


# --------------------------------------------------------------------------- list / show


@app.command("list")
def list_command(
    storage: Optional[str] = StorageOption,
    wide: bool = typer.Option(False, "--wide", help="every column, however wide the terminal"),
) -> None:
    """The studies in the storage, with trial counts by state and best value."""
    from study.store.trials import list_studies
    from study.store.locations import StudyNotFound, resolve_storage

    try:
        table = list_studies(resolve_storage(storage))
    except (ConfigError, StudyNotFound) as err:
        raise fail(str(err))
    if table.empty:
        console.print("no studies yet: run `study sweep sweeps/quick.yaml`")
        return
    print_table(table, "studies", wide=wide)


@app.command()
def show(
    study_name: str = typer.Argument(..., metavar="STUDY", help="study name (the sweep file's `name`)"),
    storage: Optional[str] = StorageOption,
    csv: Optional[Path] = typer.Option(None, "--csv", help="also write every column to this CSV file"),
    wide: bool = typer.Option(False, "--wide", help="every column, however wide the terminal"),
) -> None:
    """The trials of one study as a table (the same DataFrame as study.store.trials.trials_table)."""
    from study.store.trials import trials_table
    from study.store.locations import StudyNotFound, resolve_storage

    try:
        table = trials_table(study_name, resolve_storage(storage))
    except (ConfigError, StudyNotFound) as err:
        raise fail(str(err))
    if csv is not None:
        try:
            table.to_csv(csv, index=False)
        except OSError as err:
            raise fail(f"--csv {csv}: cannot write it ({err.strerror or err}); check the folder exists and is writable")
        console.print(f"wrote {len(table)} rows to {csv}")
    print_table(summary_columns(table), f"trials of {study_name}", wide=wide)


def summary_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The columns worth reading on a terminal: scores, the params that vary, size, speed, errors."""
    if table.empty:
        return table
    fixed_info = {"trial", "state", "param_count", "seconds_per_epoch", "train_seconds", "best_epoch", "seed",
                  "fail_reason", "mlflow_run_id", "pruned_at_epoch"}
    best = [c for c in table.columns if c.startswith("best_") and c != "best_epoch"]
    tests = [c for c in table.columns if c.startswith("test_")]
    params = [c for c in table.columns if c not in fixed_info and c not in best and c not in tests]
    varying = [c for c in params if c == "cell" or table[c].astype(str).nunique() > 1]
    # In the order a narrow terminal keeps them (see dataframe_table): who, how good, with what.
    columns = ["trial", "state", *best, *varying, *tests, "param_count", "seconds_per_epoch"]
    if table["pruned_at_epoch"].notna().any():
        columns.append("pruned_at_epoch")
    if table["fail_reason"].notna().any():
        columns.append("fail_reason")
    return table[[c for c in columns if c in table.columns]]


def best_columns(best: pd.DataFrame) -> pd.DataFrame:
    """The columns of a best-per-value table (study.analysis.scoring.best_per_value) worth reading on a terminal."""
    from study.analysis.scoring import best_summary_columns

    return best[best_summary_columns(best)]


def dataframe_table(frame: pd.DataFrame, title: str, wide: bool = False) -> Table:
    """A terminal table that fits the terminal by leaving out whole columns, never by cutting names:
    columns are kept in their order while they fit; the caption names the ones left out. `wide`
    keeps every column (the terminal may then wrap)."""
    import pandas as pd

    texts = {column: [_cell(value) for value in frame[column]] for column in frame.columns}
    # Each column takes its longest text plus 3 (padding and its border); `fail_reason` wraps.
    needed = {c: 3 + (24 if c == "fail_reason" else max([len(str(c)), *map(len, texts[c])])) for c in frame.columns}
    room, shown = console.width - 1, []
    for column in frame.columns:
        if wide or needed[column] <= room:
            shown.append(column)
            room -= needed[column]
    hidden = [str(c) for c in frame.columns if c not in shown]
    caption = f"not shown, to fit {console.width} columns: {', '.join(hidden)} (--wide shows them)" if hidden else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in shown:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", no_wrap=column != "fail_reason")
    for index in range(len(frame)):
        # A cell name in its figure colour (config.CELL_COLOURS), so tables and figures match.
        table.add_row(*(Text(texts[column][index], style=CELL_COLOURS.get(texts[column][index], ""))
                        if column == "cell" else texts[column][index] for column in shown))
    table.width_needed = 1 + sum(needed[c] for c in shown)  # what `print_table` gives it with `wide`
    return table


def print_table(frame: pd.DataFrame, title: str, wide: bool = False) -> None:
    """Print `dataframe_table`; with `wide`, at its full width even past the terminal's (which then wraps)."""
    table = dataframe_table(frame, title, wide=wide)
    if wide and table.width_needed > console.width:
        Console(file=console.file, width=table.width_needed, force_terminal=console.is_terminal).print(table)
    else:
        console.print(table)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


@app.command()
def report(
    targets: list[str] = typer.Argument(..., metavar="STUDY_OR_SWEEP_FILE...",
                                        help="a study name or the sweep file that made it; several: one per task"),
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default reports/<study>; for several studies "
                                                           "the cross-task page, default reports/across-tasks)"),
    compare: Optional[str] = typer.Option(None, "--compare", help="dimensions to compare, e.g. cell or cell,units (default: the scientific ones)"),
    formats: str = typer.Option("png,pdf", "--formats", help="figure formats, e.g. png,pdf,svg"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Lab-report tables, figures and report.md/html from what a sweep tracked, topped by a verdict;
    with several studies (one per task), also the cross-task page."""
    from study.reporting.build import ReportError, build_report
    from study.reporting.across_page import build_across_report

    dimensions = compare.split(",") if compare else None
    try:
        with console.status("building the report") as status:
            if len(targets) == 1:
                result = build_report(targets[0], out=out, compare=dimensions, formats=formats, storage=storage,
                                      tracking_uri=tracking_uri, progress=lambda message: status.update(message))
            else:
                result = build_across_report(targets, out or Path("reports/across-tasks"), compare=dimensions,
                                             formats=formats, storage=storage, tracking_uri=tracking_uri,
                                             progress=lambda message: status.update(message))
    except ReportError as err:
        raise fail(str(err))
    if len(targets) == 1:
        _print_report(result)
        return
    for study in result.studies:
        console.print(f"[bold]{escape(study.study_name)}:[/] {escape(study.verdict.headline)}", highlight=False)
    console.print(dataframe_table(result.table, title="value x task"))
    console.print(f"[bold]verdict across tasks:[/] {escape(result.verdict)}", highlight=False)
    console.print(f"wrote {len(result.files)} files to {result.out}; open {result.out / 'report.html'}")


def _print_report(result) -> None:
    if result.verdict is not None:
        console.print(f"[bold]verdict:[/] {escape(result.verdict.headline)}", highlight=False)
        for line in result.verdict.details:
            console.print(f"  {line}", highlight=False, markup=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if not result.best.empty:
        console.print(dataframe_table(best_columns(result.best), title=f"best per {result.best.columns[0]}"))
    console.print(f"wrote {len(result.files)} files to {result.out}; open {result.out / 'report.html'}"
                  + (" (also logged to the study's parent run in MLflow)" if result.parent_run_id else ""))


@app.command()
def history(
    study_name: str = typer.Argument(..., metavar="STUDY", help="study name (the sweep file's `name`)"),
    csv: Path = typer.Option(..., "--csv", help="write the table to this CSV file"),
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Every trial's per-epoch metrics as one tidy CSV (study, trial, cell, epoch, each metric)."""
    from study.reporting.build import ReportError, epoch_history

    try:
        table = epoch_history(study_name, tracking_uri)
        table.to_csv(csv, index=False)
    except ReportError as err:
        raise fail(str(err))
    except OSError as err:
        raise fail(f"cannot write {csv}: {err.strerror or err}")
    console.print(f"wrote {len(table)} rows ({table['trial'].nunique()} trials) to {csv}")


@app.command()
def suite(
    file: Path = typer.Argument(..., help="suite file, e.g. sweeps/suites/offline.yaml"),
    out: Optional[Path] = typer.Option(None, "--out", help="cross-task page folder (default reports/<suite name>)"),
    formats: str = typer.Option("png,pdf", "--formats", help="figure formats, e.g. png,pdf,svg"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
) -> None:
    """Run a comparison on several tasks (the suite's sweep files, with their replicates), then report across tasks."""
    from study.train.data import DataError
    from study.reporting.build import ReportError
    from study.store.locations import StudyNotFound
    from study.app.suite import load_suite, run_suite

    stopped = f"interrupted; finished trials are saved. Resume with: study suite {file}"
    try:
        loaded = load_suite(file)
        live: list[RichReporter] = []  # one progress display at a time: each sweep's replaces the last

        def reporter_for(sweep):
            while live:
                live.pop().__exit__(None, None, None)
            live.append(RichReporter(list(sweep.config.searched), sweep.config.objective.metric,
                                     sweep.config.scientific).__enter__())
            return live[-1]

        def say(message: str) -> None:
            while live:
                live.pop().__exit__(None, None, None)
            console.print(message, highlight=False, markup=False)

        with stopping_cleanly(stopped):
            try:
                result = run_suite(loaded, storage, tracking_uri, reporter_for=reporter_for, formats=formats,
                                   out=out, progress=say)
            finally:
                while live:
                    live.pop().__exit__(None, None, None)
    except (ConfigError, DataError, StudyNotFound, ReportError) as err:
        raise fail(str(err))
    except KeyboardInterrupt:
        raise fail(stopped, code=130)
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)
    for study in result.report.studies:
        console.print(f"[bold]{escape(study.study_name)}:[/] {escape(study.verdict.headline)}", highlight=False)
    console.print(dataframe_table(result.report.table, title="value x task"))
    console.print(f"[bold]verdict across tasks:[/] {escape(result.report.verdict)}", highlight=False)
    console.print(f"wrote {len(result.report.files)} files to {result.report.out}; open "
                  f"{result.report.out / 'report.html'}")


@app.command()
def seeds(
    out: Path = typer.Option(Path("reports/seeds"), "--out", help="folder for seeds.csv and seeds.md"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """The lab notebooks side by side: reported figure, reproduced here (mean ± sd), tuned best."""
    from study.reporting.seeds import seeds_table, write_seeds
    from study.store.locations import StudyNotFound, resolve_storage, resolve_tracking_uri

    try:
        table = seeds_table(resolve_storage(storage), resolve_tracking_uri(tracking_uri))
    except (ConfigError, StudyNotFound) as err:
        raise fail(str(err))
    if table.empty:
        raise fail("no seed studies in the storage yet: run e.g. `study sweep sweeps/seed001_sine_lstm.yaml`")
    written = write_seeds(table, out)
    console.print(dataframe_table(table.drop(columns=["source", "tuned_study"]), title="the seeds side by side"))
    console.print("wrote " + " and ".join(map(str, written)))


# --------------------------------------------------------------------------- doctor


@app.command()
def doctor(
    study_name: str = typer.Argument(..., metavar="STUDY", help="study name (the sweep file's `name`)"),
    repair: bool = typer.Option(False, "--repair", help="fix what can be fixed safely (nothing is deleted)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Check that Optuna and MLflow tell the same story about a study; --repair fixes what it safely can.

    Exit 0 when the stores agree (or every problem was repaired), 1 when problems remain.
    """
    from study.store.doctor import check_study
    from study.store.locations import StudyNotFound, mask_password

    try:
        result = check_study(study_name, storage, tracking_uri, repair=repair)
    except (ConfigError, StudyNotFound) as err:
        raise fail(str(err))
    where = f"{mask_password(result.storage)} ({result.trials} trials) and {mask_password(result.tracking_uri)} " \
            f"({result.runs} runs)"
    if not result.findings:
        console.print(f"study {study_name!r}: the two stores agree: {where}", highlight=False, markup=False)
        return
    from rich.text import Text

    table = Table(title=Text(f"study {study_name!r}: {where}"), title_justify="left")
    for column in ("problem", "trial", "run", "detail", "action"):
        table.add_column(column, no_wrap=column in ("problem", "trial", "run"))
    for row in result.table().itertuples(index=False):
        table.add_row(*(Text(_cell(value)) for value in row))  # literal text: no Rich markup
    console.print(table)
    repaired = len(result.findings) - len(result.problems)
    if result.problems:
        hint = "" if repair or not any(f.fix for f in result.problems) else "; `--repair` fixes those marked so"
        raise fail(f"{len(result.problems)} problem(s) remain{f' ({repaired} repaired)' if repaired else ''}{hint}",
                   code=1)
    console.print(f"repaired {repaired} problem(s): the two stores agree now", highlight=False)


# --------------------------------------------------------------------------- ui


@app.command()
def ui(
    tracking_uri: Optional[str] = TrackingOption,
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 exposes the UI to your network"),
    port: int = typer.Option(5000, help="port to serve on"),
    workers: int = typer.Option(1, help="MLflow server worker processes: 1 answers soonest on a small machine "
                                        "(MLflow's own default is 4); more serve many readers at once"),
) -> None:
    """Open the MLflow UI on this project's tracking store (bound to 127.0.0.1 by default); the links
    are printed once the server answers."""
    from study.store.locations import mask_password, resolve_tracking_uri, sqlite_path
    from study.store.tracking import experiment_links

    if workers < 1:
        raise fail(f"--workers must be at least 1 (got {workers})")
    try:
        uri = resolve_tracking_uri(tracking_uri)
    except ConfigError as err:
        raise fail(str(err))
    if uri.startswith(("http://", "https://")):
        console.print(f"this project tracks to a server already: {mask_password(uri)}")
        return
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        raise fail(f"no tracking store at {db}; run `study sweep sweeps/quick.yaml` first")
    _check_port(host, port)
    base = f"http://{host}:{port}"
    links = experiment_links(uri, base)

    def say_ready() -> None:
        console.print(f"MLflow UI at {base}  (Ctrl-C to stop)")
        for name, url in links.items():
            console.print(f"  {name}: {url}")

    # The registry named (the same store) spares a line saying so. Uvicorn's warnings and errors
    # only: no access log (a page load is dozens of requests, each a line in the terminal that
    # printed the links) and no start-up lines (the links say it answers).
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", str(workers),
               "--uvicorn-opts", "--no-access-log --log-level warning"]
    # Starlette warns that the WSGI middleware MLflow's server imports is deprecated, once per
    # worker: MLflow's business, nothing a user can act on. PYTHONWARNINGS reaches the uvicorn
    # workers MLflow starts; the category is a UserWarning subclass that a -W option cannot name
    # (site-packages is not importable yet when the option is read), hence the message prefix.
    env = {**os.environ, "PYTHONWARNINGS": ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:starlette:UserWarning"]))}
    # MLflow's job runner (7 huey processes for its GenAI judges and periodic tasks; nothing here
    # uses them) more than doubled the time to the first answer on 2 cores: off unless asked for.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    _serve(command, _health_url(host, port, "/health"), say_ready, env,
           starting=f"starting the MLflow UI ({workers} worker{'s' if workers > 1 else ''}; 10-60 s on 2 cores)")


@app.command()
def dashboard(
    storage: Optional[str] = StorageOption,
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 exposes the dashboard to your network"),
    port: int = typer.Option(8080, help="port to serve on"),
) -> None:
    """Open optuna-dashboard on this project's Optuna storage (bound to 127.0.0.1 by default):
    each study's history, parameter plots and importances, named by its metric."""
    import importlib.util

    from study.store.locations import StudyNotFound, open_storage, resolve_storage

    if importlib.util.find_spec("optuna_dashboard") is None:
        raise fail("optuna-dashboard is not installed; pip install 'rnn-study[dashboard]' (or, in a clone: "
                   ".venv/bin/pip install -e '.[dashboard]')")
    try:
        url = resolve_storage(storage)
        open_storage(url, create=False).engine.dispose()  # refuse a missing or unreachable store in one line
    except (ConfigError, StudyNotFound) as err:
        raise fail(str(err))
    _check_port(host, port)
    base = f"http://{host}:{port}"
    # The URL goes to the server in its environment, not its argv, where `ps` would show a password.
    env = {**os.environ, "RNN_STUDY_DASHBOARD_STORAGE": url}
    command = [sys.executable, "-c", _DASHBOARD_SERVER, host, str(port)]
    _serve(command, _health_url(host, port, "/api/meta"), lambda: console.print(
        f"optuna-dashboard at {base}  (Ctrl-C to stop)"), env, starting="starting optuna-dashboard")


# optuna-dashboard's own command logs every request to the terminal; this serves its WSGI app the
# same way (threaded wsgiref) without that, and reads the storage URL from the environment.
_DASHBOARD_SERVER = """
import os, sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


app = wsgi(os.environ.pop("RNN_STUDY_DASHBOARD_STORAGE"))  # it creates no tables and migrates nothing
make_server(sys.argv[1], int(sys.argv[2]), app, server_class=Server, handler_class=QuietHandler).serve_forever()
"""


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (a port in use, most often),
    rather than let it fail with a traceback seconds later."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        raise fail(f"--port {port}: use a port number from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind(address)
    except OSError as err:
        hint = "; pass another --port" if err.errno == errno.EADDRINUSE else ""
        raise fail(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}")


def _health_url(host: str, port: int, path: str) -> str:
    """Where to ask whether a server bound to `host` answers: a wildcard address is asked on loopback."""
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{local}:{port}{path}"


def _serve(command: list[str], health_url: str, say_ready, env: dict[str, str], starting: str) -> None:
    """Run a server in its own process group, call `say_ready()` once `health_url` answers, and
    stop the whole group on Ctrl-C or SIGTERM, or when this process dies (kill -9 too). A server
    that stops before it answers is an error (exit 1; its own messages are above)."""
    import time
    import urllib.error
    import urllib.request

    from study.search.workers import guard_process_group

    # Servers start worker processes of their own: one process group, stopped as a whole, so no
    # server is left behind.
    server = subprocess.Popen(command, start_new_session=True, env=env, stdin=subprocess.DEVNULL)
    guard_process_group(server.pid)  # kill -9 of this command stops the server and its workers too
    signal.signal(signal.SIGTERM, _raise_interrupt)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy
    try:
        with console.status(starting):
            while server.poll() is None:
                try:
                    opener.open(health_url, timeout=5).close()
                    break
                except urllib.error.HTTPError:
                    break  # it answers, if not on that path
                except OSError:
                    time.sleep(0.5)
        if server.poll() is not None:
            raise fail(f"the server stopped before it answered (exit code {server.returncode}); see its "
                       "messages above", code=1)
        say_ready()
        code = server.wait()
    except KeyboardInterrupt:
        os.killpg(server.pid, signal.SIGTERM)
        code = 0
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    raise typer.Exit(code)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    if os.name != "posix":  # fcntl locks, POSIX signals and process groups (see README, Platform)
        errors.print("error: rnn-study runs on POSIX systems (Linux, macOS); on Windows, use WSL", highlight=False)
        raise SystemExit(2)
    # At exit Python's last garbage collections walk every object TensorFlow, MLflow and pandas made:
    # 1.5-3 s on 2 cores after the command has said everything, and a `study sweep --jobs N` waits
    # for its workers' exits before its own. Frozen, those objects are left to the operating system
    # (registered before those libraries load, this runs after their exit handlers; objects are still
    # freed as modules are cleared: only cycles are not collected).
    atexit.register(gc.freeze)
    app()


if __name__ == "__main__":
    main()
