"""The `study` command: parses its arguments, calls the library and prints what it returns.

Exit codes (`study.app.terminal`): 0 success; 1 stopped early; 2 bad input, reported before
anything is trained or written; 130 interrupted (finished work is kept; the same command resumes).
"""

from __future__ import annotations

import atexit
import gc
import os
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from study.app import serve_commands
from study.app.options import (
    FileStorageOption, FileTrackingOption, MaxTrialsOption, StorageOption, TrackingOption, UntilDecidedOption,
)
from study.app.terminal import (
    RichReporter, WorkersDisplay, best_columns, console, dataframe_table, errors, exit_codes, fail, findings_table,
    print_across_report, print_outcome, print_replicates, print_report, print_table, stopping_cleanly,
    summary_columns,
)
from study.search.progress import describe_params
from study.spec.base import ConfigError, shown
from study.spec.flags import REPORT_FILES, REPORT_FOLDERS, check_output_folder, compared_dimensions
from study.spec.settings import path_too_long
from study.spec.shipped import find_suite, find_sweep, starter_sweep
from study.spec.sweep_file import load_sweep
from study.spec.sweep_file import until_decided as until_decided_sweep
from study.spec.tasks import TASK_NAMES

app = typer.Typer(
    help="Tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies (Optuna + MLflow).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no `<bool>` after flags, brackets shown as written
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("rnn-study")
        except PackageNotFoundError:  # a source tree on sys.path, never installed
            from study import __version__ as number
        console.print(f"rnn-study {number}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def options(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="print rnn-study's version and exit"),
) -> None:
    """The options before any command (`study --version`); the help text is the app's."""


def _load_sweep(file: Path):
    """The sweep file FILE names (`study.spec.shipped`), saying so when it is the shipped copy."""
    found = _find(find_sweep, file, "sweep file")
    if found.note:
        console.print(found.note, highlight=False, markup=False)
    return load_sweep(found.path)


def _find(finder, file: Path, what: str):
    """`find_sweep` or `find_suite`, with a name the system refuses (too long, behind a closed folder)
    said in one line: looking for it raises from `exists`."""
    problem = path_too_long(str(file))
    if problem:
        raise ConfigError(f"{shown(str(file))}: not a {what} name: {problem}")
    try:
        return finder(file)
    except OSError as err:
        raise ConfigError(f"{file}: cannot read {what} ({err.strerror or err})") from None


def _check_file_name(path: Path | None, flag: str) -> None:
    """A file to write whose name the system would refuse, refused before the stores are read."""
    problem = path_too_long(str(path)) if path is not None else None
    if problem:
        raise ConfigError(f"{flag} {shown(str(path))}: {problem}")


# --------------------------------------------------------------------------- sweep


@app.command()
def sweep(
    file: Path = typer.Argument(..., readable=False,  # our loader says an unreadable file in one line, not Click
                                help="sweep file or shipped sweep name, e.g. sweeps/quick.yaml or quick"),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="trials that must finish (default: the file's `trials`)"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
    jobs: int = typer.Option(1, "--jobs", "-j", help="worker processes on this machine, each with an equal share of the CPU threads"),
    until_decided: bool = UntilDecidedOption,
    max_trials: Optional[int] = MaxTrialsOption,
) -> None:
    """Run a sweep, or resume it: finished trials are kept and the study continues to its target
    (with --until-decided or `decide:`, until every pair of compared values is decided, or its cap)."""
    from study.store.locations import mask_password

    resume = (f"study sweep {file}" + (f" --jobs {jobs}" if jobs != 1 else "")
              + (" --until-decided" if until_decided else "") + (f" --max-trials {max_trials}" if max_trials else ""))
    stopped = f"interrupted; finished trials are saved. Resume with: {resume}"
    with exit_codes(stopped):
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1 (got {jobs})")
        loaded = until_decided_sweep(_load_sweep(file), until_decided, max_trials)
        config = loaded.config
        with stopping_cleanly(stopped):
            if jobs == 1:
                from study.search.sweep import run_sweep  # Optuna, SQLAlchemy, pandas: with --jobs, after the workers start

                with RichReporter(list(config.searched), config.objective.metric, config.scientific) as reporter:
                    result = run_sweep(loaded, trials=trials, storage=storage, tracking_uri=tracking_uri, reporter=reporter)
                failed_workers = None
            else:
                result, failed_workers = _sweep_with_workers(loaded, jobs, trials, storage, tracking_uri)

    console.print()
    print_outcome(result, f"this run started {result.started}")
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
        print_replicates(result.replicates, result.study_name)
    console.print(f"trials: study show {result.study_name}   runs: study ui   (MLflow: {mask_password(result.tracking_uri)})")


def _sweep_with_workers(loaded, jobs: int, trials, storage, tracking_uri):
    """`study sweep --jobs N`: N `study worker` processes, one bar over the study's finished trials."""
    from study.search.workers import run_workers

    with WorkersDisplay(loaded.config) as display:
        outcome = run_workers(loaded, jobs, trials, storage, tracking_uri, on_line=display.show_line,
                              on_progress=display.show_progress, reporter=display.replicates_reporter())
    failed = [(i, outcome.exit_codes[i - 1], (outcome.tails[i - 1] or ["(no output)"])[-1]) for i in outcome.failed]
    return outcome.sweep, failed


@app.command()
def worker(
    file: Path = typer.Argument(..., readable=False, help="sweep file or shipped sweep name, e.g. sweeps/quick.yaml "
                                                          "or quick (the same file on every machine)"),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="trials that must finish (default: the file's `trials`)"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
    until_decided: bool = UntilDecidedOption,
    max_trials: Optional[int] = MaxTrialsOption,
) -> None:
    """Join a shared sweep as one worker (any machine): run trials until the study has its target."""
    from study.search.progress import LineReporter
    from study.search.sweep import run_sweep
    from study.search.workers import PARENT_GO_ENV, prepare_then_wait_for_parent, stop_with_parent

    stopped = f"interrupted; finished trials are saved. Resume with: study worker {file}"
    with exit_codes(stopped):
        loaded = until_decided_sweep(_load_sweep(file), until_decided, max_trials)
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
    print_outcome(result, f"this worker ran {result.started}")
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)


@app.command()
def init(
    name: str = typer.Argument(..., help="study name; the file is NAME.yaml"),
    task: str = typer.Option("digits", "--task", help=f"the task: {', '.join(TASK_NAMES)}"),
    out: Optional[Path] = typer.Option(None, "--out", readable=False, help="the file to write (default NAME.yaml "
                                                                          "here; a folder: NAME.yaml in it)"),
) -> None:
    """Write a commented starter sweep file: SimpleRNN vs GRU vs LSTM on one task (never over an existing file)."""
    name = name.removesuffix(".yaml")
    path = out if out is not None else Path(f"{name}.yaml")
    with exit_codes():
        _check_file_name(path, "--out" if out is not None else "NAME")
        if path.is_dir():
            path = path / f"{name}.yaml"
        text = starter_sweep(name, task, str(path))
    try:
        with path.open("x") as handle:  # "x": never over a file, even one made since the check above
            handle.write(text)
    except FileExistsError:
        raise fail(f"{path}: already exists; study init never overwrites a file (pick another NAME or --out)") from None
    except OSError as err:
        raise fail(f"{path}: cannot write it ({err.strerror or err})") from None
    console.print(f"wrote {path}: SimpleRNN vs GRU vs LSTM on {task}; edit it, then run: study sweep {path}",
                  highlight=False, markup=False)


# --------------------------------------------------------------------------- rerun / replicate


@app.command()
def rerun(
    study_name: str = typer.Argument(..., metavar="STUDY"),
    trial: int = typer.Argument(..., help="trial number (see `study show`)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Retrain one trial from its recorded params and seed, and say how close it came."""
    from study.search.replicate import rerun_trial
    from study.store.stores import Stores

    stopped = "interrupted; the rerun's MLflow run is marked KILLED"
    with exit_codes(stopped, bad_input=(LookupError, ValueError)):  # no such trial; a trial without a score
        stores = Stores.resolve(storage, tracking_uri)
        with stopping_cleanly(stopped), console.status(f"retraining trial {trial} of {study_name}"):
            result = rerun_trial(study_name, trial, stores)
    percent = "accuracy" in result.metric
    difference = f"{result.difference * 100:+.2f} pp" if percent else f"{result.difference:+.5g}"
    console.print(f"trial {trial} ({study_name}), seed {result.seed}: recorded {result.metric} {result.recorded:.4f}, "
                  f"rerun {result.value:.4f}, difference {difference}  (MLflow run {result.run_id})")


@app.command()
def replicate(
    study_name: str = typer.Argument(..., metavar="STUDY"),
    seeds: int = typer.Option(3, "--seeds", help="new seeds per compared value (1 to 100)"),
    compare: Optional[str] = typer.Option(None, "--compare", help="comma-separated dimensions (default: the scientific ones)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Retrain the best configuration of each compared value with new seeds (mean and spread, not one lucky run)."""
    from study.search.replicate import replicate_best
    from study.store.stores import Stores

    with exit_codes():
        if not 1 <= seeds <= 100:  # checked here, not by click, for one `error:` line instead of its usage text
            raise ConfigError(f"--seeds must be between 1 and 100 (got {seeds})")
        dimensions = compared_dimensions(compare)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("replicates", total=None)

        def show(record, index: int) -> None:
            bar.update(task, description=f"replicate {index + 1}/{seeds} of trial {record.number} "
                                         f"({describe_params(record.params, dimensions or record.config.scientific)})")

        stopped = ("interrupted; finished replicates are kept. Resume with: study replicate "
                   f"{study_name} --seeds {seeds}" + (f" --compare {compare}" if compare else ""))
        with exit_codes(stopped, bad_input=(LookupError, ValueError)), stopping_cleanly(stopped):
            results = replicate_best(study_name, seeds, dimensions, Stores.resolve(storage, tracking_uri), progress=show)
    if results:
        print_replicates(results, study_name)
    else:
        console.print("every requested replicate is tracked already, or being trained by another process now; "
                      "nothing to train")


@app.command()
def register(
    study_name: str = typer.Argument(..., metavar="STUDY"),
    compare: Optional[str] = typer.Option(None, "--compare", help="comma-separated dimensions (default: the scientific ones)"),
    name: Optional[str] = typer.Option(None, "--name", help="registered model name (default: the study's)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Register the best trial's model of each compared value in the MLflow Model Registry (alias best-<value>)."""
    from study.store.registry import register_best
    from study.store.stores import Stores

    with exit_codes(bad_input=(LookupError, ValueError)):
        registered = register_best(study_name, Stores.resolve(storage, tracking_uri),
                                   compare=compared_dimensions(compare), model_name=name)
    for entry in registered:
        console.print(f"{entry.model_name} version {entry.version} @{entry.alias}: trial {entry.trial}, "
                      f"score {entry.score:.4f} (run {entry.run_id})", highlight=False)


# --------------------------------------------------------------------------- list / show


@app.command("list")
def list_command(
    storage: Optional[str] = StorageOption,
    wide: bool = typer.Option(False, "--wide", help="every column, however wide the terminal"),
) -> None:
    """The studies in the storage, with trial counts by state and best value."""
    from study.store.stores import Stores
    from study.store.trials import list_studies

    with exit_codes():
        table = list_studies(Stores.resolve(storage).optuna_storage())
    if table.empty:
        console.print("no studies yet: run `study sweep sweeps/quick.yaml`")
        return
    print_table(table, "studies", wide=wide)


@app.command()
def show(
    study_name: str = typer.Argument(..., metavar="STUDY", help="study name (the sweep file's `name`)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
    csv: Optional[Path] = typer.Option(None, "--csv", readable=False, help="also write every column to this CSV file"),
    wide: bool = typer.Option(False, "--wide", help="every column, however wide the terminal"),
) -> None:
    """The trials of one study as a table: the study's trials table (Optuna's states and values, MLflow's
    run ids; the same DataFrame as `study.trials(STUDY)` and the report's tables/trials.csv)."""
    from study.store.stores import Stores

    notes: list[str] = []
    with exit_codes():
        _check_file_name(csv, "--csv")
        table = Stores.resolve(storage, tracking_uri).trials(study_name, notes)
    for note in notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if csv is not None:
        try:
            table.to_csv(csv, index=False)
        except OSError as err:
            raise fail(f"--csv {csv}: cannot write it ({err.strerror or err}); check the folder exists and is writable")
        console.print(f"wrote {len(table)} rows to {csv}")
    print_table(summary_columns(table), f"trials of {study_name}", wide=wide)


@app.command()
def report(
    targets: list[str] = typer.Argument(..., metavar="STUDY_OR_SWEEP_FILE...",
                                        help="a study name or the sweep file that made it; several: one per task"),
    out: Optional[Path] = typer.Option(None, "--out", readable=False, help="output folder (default reports/<study>; "
                                       "for several studies the cross-task page, default reports/across-tasks)"),
    compare: Optional[str] = typer.Option(None, "--compare", help="dimensions to compare, e.g. cell or cell,units (default: the scientific ones)"),
    formats: str = typer.Option("png,pdf", "--formats", help="figure formats, e.g. png,pdf,svg"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Lab-report tables, figures and report.md/html from what a sweep tracked, topped by a verdict;
    with several studies (one per task), also the cross-task page."""
    from study.reporting.build import build_report
    from study.reporting.across_page import build_across_report

    with exit_codes():
        dimensions = compared_dimensions(compare)
        with console.status("building the report") as status:
            if len(targets) == 1:
                result = build_report(targets[0], out=out, compare=dimensions, formats=formats, storage=storage,
                                      tracking_uri=tracking_uri, progress=lambda message: status.update(message))
            else:
                result = build_across_report(targets, out or Path("reports/across-tasks"), compare=dimensions,
                                             formats=formats, storage=storage, tracking_uri=tracking_uri,
                                             progress=lambda message: status.update(message))
    if len(targets) == 1:
        print_report(result)
    else:
        print_across_report(result)


@app.command()
def history(
    study_name: str = typer.Argument(..., metavar="STUDY", help="study name (the sweep file's `name`)"),
    csv: Path = typer.Option(..., "--csv", readable=False, help="write the table to this CSV file"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Every trial's per-epoch metrics as one tidy CSV (study, trial, cell, epoch, each metric)."""
    from study.reporting.load import epoch_history

    with exit_codes():
        _check_file_name(csv, "--csv")
        table = epoch_history(study_name, storage, tracking_uri)
    try:
        table.to_csv(csv, index=False)
    except OSError as err:
        raise fail(f"cannot write {csv}: {err.strerror or err}")
    console.print(f"wrote {len(table)} rows ({table['trial'].nunique()} trials) to {csv}")


@app.command()
def suite(
    file: Path = typer.Argument(..., readable=False, help="suite file or shipped suite name, e.g. "
                                                          "sweeps/suites/offline.yaml or offline"),
    out: Optional[Path] = typer.Option(None, "--out", readable=False,
                                       help="cross-task page folder (default reports/<suite name>)"),
    formats: str = typer.Option("png,pdf", "--formats", help="figure formats, e.g. png,pdf,svg"),
    storage: Optional[str] = FileStorageOption,
    tracking_uri: Optional[str] = FileTrackingOption,
) -> None:
    """Run a comparison on several tasks (the suite's sweep files, with their replicates), then report across tasks."""
    from study.app.suite import load_suite, run_suite

    stopped = f"interrupted; finished trials are saved. Resume with: study suite {file}"
    with exit_codes(stopped):
        found = _find(find_suite, file, "suite file")
        if out is not None:
            check_output_folder(out, "--out", REPORT_FILES, REPORT_FOLDERS)  # before the sweeps, not after them
        if found.note:
            console.print(found.note, highlight=False, markup=False)
        loaded = load_suite(found.path)
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
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)
    print_across_report(result.report)


@app.command()
def seeds(
    out: Path = typer.Option(Path("reports/seeds"), "--out", readable=False, help="folder for seeds.csv and seeds.md"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """The lab notebooks side by side: reported figure, reproduced here (mean ± sd), tuned best."""
    from study.reporting.seeds import seeds_table, write_seeds
    from study.store.stores import Stores

    with exit_codes():
        check_output_folder(out, "--out", ("seeds.csv", "seeds.md"))
        table = seeds_table(Stores.resolve(storage, tracking_uri))
    if table.empty:
        raise fail("no seed studies in the storage yet: run e.g. `study sweep sweeps/seed001_sine_lstm.yaml`")
    try:
        written = write_seeds(table, out)
    except OSError as err:
        raise fail(f"--out {out}: cannot write seeds.csv and seeds.md ({err.strerror or err})") from None
    # The status is a sentence (and names the range and the set-up differences): a line of its own.
    shown = table.drop(columns=["source", "tuned_study", "reproduced_low", "reproduced_high", "status",
                                "setup_differences"])
    console.print(dataframe_table(shown, title="the seeds side by side"))
    for row in table.itertuples(index=False):
        console.print(f"{row.experiment} {row.configuration}: {row.status}", highlight=False, markup=False)
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
    from study.store.stores import Stores

    with exit_codes():
        stores = Stores.resolve(storage, tracking_uri)
        result = check_study(study_name, stores, repair=repair)
    where = f"{stores.storage_shown} ({result.trials} trials) and {stores.tracking_shown} ({result.runs} runs)"
    if not result.findings:
        console.print(f"study {study_name!r}: the two stores agree: {where}", highlight=False, markup=False)
        return
    console.print(findings_table(result.table(), title=f"study {study_name!r}: {where}"))
    repaired = len(result.findings) - len(result.problems)
    if result.problems:
        hint = "" if repair or not any(f.fix for f in result.problems) else "; `--repair` fixes those marked so"
        raise fail(f"{len(result.problems)} problem(s) remain{f' ({repaired} repaired)' if repaired else ''}{hint}",
                   code=1)
    console.print(f"repaired {repaired} problem(s): the two stores agree now", highlight=False)


# --------------------------------------------------------------------------- ui / dashboard

app.command()(serve_commands.ui)
app.command()(serve_commands.dashboard)


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
