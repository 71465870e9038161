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

from study.app.terminal import (
    RichReporter, WorkersDisplay, best_columns, console, dataframe_table, errors, exit_codes, fail, findings_table,
    print_across_report, print_outcome, print_replicates, print_report, print_table, stopping_cleanly,
    summary_columns,
)
from study.search.progress import describe_params
from study.spec.base import ConfigError
from study.spec.settings import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, STORAGE_ENV, TRACKING_ENV
from study.spec.sweep_file import load_sweep
from study.spec.sweep_file import until_decided as until_decided_sweep

app = typer.Typer(
    help="Tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies (Optuna + MLflow).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no `<bool>` after flags, brackets shown as written
)


def _store_option(flag: str, what: str, env: str, default: str, from_file: bool) -> typer.models.OptionInfo:
    fallback = f"the sweep file's `{flag[2:].replace('-', '_')}`, else {default}" if from_file else default
    return typer.Option(None, flag, metavar=what.split()[-1], show_default=False,
                        help=f"{what} [env var: {env}; default: {fallback}]")


StorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=False)
TrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI, from_file=False)
# Commands that read a sweep file, whose `storage` / `tracking_uri` come before the defaults.
FileStorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=True)
UntilDecidedOption = typer.Option(False, "--until-decided", help="add paired draws until every pair of compared values "
                                  "is decided (anytime-valid confidence sequences), as the file's `decide:` does")
MaxTrialsOption = typer.Option(None, "--max-trials", help="with --until-decided: the most trials to spend "
                               "(default: the file's decide.max_trials, else 4 x trials)")
FileTrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI,
                                   from_file=True)


# --------------------------------------------------------------------------- sweep


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="sweep file, e.g. sweeps/quick.yaml"),
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
        loaded = until_decided_sweep(load_sweep(file), until_decided, max_trials)
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
    file: Path = typer.Argument(..., help="sweep file, e.g. sweeps/quick.yaml (the same file on every machine)"),
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
        loaded = until_decided_sweep(load_sweep(file), until_decided, max_trials)
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
    seeds: int = typer.Option(3, "--seeds", min=1, max=100, help="new seeds per compared value"),
    compare: Optional[str] = typer.Option(None, "--compare", help="comma-separated dimensions (default: the scientific ones)"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Retrain the best configuration of each compared value with new seeds (mean and spread, not one lucky run)."""
    from study.search.replicate import replicate_best
    from study.store.stores import Stores

    dimensions = compare.split(",") if compare else None
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
        console.print("all requested replicates were already tracked; nothing to train")


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
    csv: Optional[Path] = typer.Option(None, "--csv", help="also write every column to this CSV file"),
    wide: bool = typer.Option(False, "--wide", help="every column, however wide the terminal"),
) -> None:
    """The trials of one study as a table: the study's trials table (Optuna's states and values, MLflow's
    run ids; the same DataFrame as `study.trials(STUDY)` and the report's tables/trials.csv)."""
    from study.store.stores import Stores

    notes: list[str] = []
    with exit_codes():
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
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default reports/<study>; for several studies "
                                                           "the cross-task page, default reports/across-tasks)"),
    compare: Optional[str] = typer.Option(None, "--compare", help="dimensions to compare, e.g. cell or cell,units (default: the scientific ones)"),
    formats: str = typer.Option("png,pdf", "--formats", help="figure formats, e.g. png,pdf,svg"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Lab-report tables, figures and report.md/html from what a sweep tracked, topped by a verdict;
    with several studies (one per task), also the cross-task page."""
    from study.reporting.build import build_report
    from study.reporting.across_page import build_across_report

    dimensions = compare.split(",") if compare else None
    with exit_codes():
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
    csv: Path = typer.Option(..., "--csv", help="write the table to this CSV file"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """Every trial's per-epoch metrics as one tidy CSV (study, trial, cell, epoch, each metric)."""
    from study.reporting.load import epoch_history

    with exit_codes():
        table = epoch_history(study_name, storage, tracking_uri)
    try:
        table.to_csv(csv, index=False)
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
    from study.app.suite import load_suite, run_suite

    stopped = f"interrupted; finished trials are saved. Resume with: study suite {file}"
    with exit_codes(stopped):
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
    if result.stopped_reason:
        raise fail(result.stopped_reason, code=1)
    print_across_report(result.report)


@app.command()
def seeds(
    out: Path = typer.Option(Path("reports/seeds"), "--out", help="folder for seeds.csv and seeds.md"),
    storage: Optional[str] = StorageOption,
    tracking_uri: Optional[str] = TrackingOption,
) -> None:
    """The lab notebooks side by side: reported figure, reproduced here (mean ± sd), tuned best."""
    from study.reporting.seeds import seeds_table, write_seeds
    from study.store.stores import Stores

    with exit_codes():
        table = seeds_table(Stores.resolve(storage, tracking_uri))
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
    from study.app import servers
    from study.store.locations import mask_password, resolve_tracking_uri, sqlite_path
    from study.store.tracking import experiment_links

    with exit_codes():
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {workers})")
        uri = resolve_tracking_uri(tracking_uri)  # the MLflow store alone: the UI never reads Optuna's
        if uri.startswith(("http://", "https://")):
            console.print(f"this project tracks to a server already: {mask_password(uri)}")
            return
        db = sqlite_path(uri)
        if db is not None and not db.exists():
            raise ConfigError(f"no tracking store at {db}; run `study sweep sweeps/quick.yaml` first")
        servers.check_port(host, port)
    base = f"http://{host}:{port}"
    links = experiment_links(uri, base)

    def say_ready() -> None:
        console.print(f"MLflow UI at {base}  (Ctrl-C to stop)")
        for name, url in links.items():
            console.print(f"  {name}: {url}")

    command, env = servers.mlflow_ui(uri, host, port, workers)
    serve_until_stopped(command, servers.health_url(host, port, "/health"), say_ready, env,
                        starting=f"starting the MLflow UI ({workers} worker{'s' if workers > 1 else ''}; "
                                 "10-60 s on 2 cores)")


@app.command()
def dashboard(
    storage: Optional[str] = StorageOption,
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 exposes the dashboard to your network"),
    port: int = typer.Option(8080, help="port to serve on"),
) -> None:
    """Open optuna-dashboard on this project's Optuna storage (bound to 127.0.0.1 by default):
    each study's history, parameter plots and importances, named by its metric."""
    import importlib.util

    from study.app import servers
    from study.store.stores import Stores

    if importlib.util.find_spec("optuna_dashboard") is None:
        raise fail("optuna-dashboard is not installed; pip install 'rnn-study[dashboard]' (or, in a clone: "
                   ".venv/bin/pip install -e '.[dashboard]')")
    with exit_codes():
        stores = Stores.resolve(storage)
        stores.optuna_storage()  # refuse a missing or unreachable store in one line
        stores.close()
        servers.check_port(host, port)
    base = f"http://{host}:{port}"
    command, env = servers.optuna_dashboard(stores.storage, host, port)
    serve_until_stopped(command, servers.health_url(host, port, "/api/meta"), lambda: console.print(
        f"optuna-dashboard at {base}  (Ctrl-C to stop)"), env, starting="starting optuna-dashboard")


def serve_until_stopped(command: list[str], health_url: str, say_ready, env: dict[str, str], starting: str) -> None:
    """`study.app.servers.serve` with a spinner until the server answers; exits with its code."""
    from study.app import servers

    with exit_codes():
        code = servers.serve(command, health_url, say_ready, env, waiting=console.status(starting))
    raise typer.Exit(code)


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
