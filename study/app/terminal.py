"""What the `study` command shows on a terminal: error lines and exit codes, progress bars, tables.

Exit codes: 0 success; 1 the work stopped early (too many failed trials, a store or a server
that stopped); 2 bad input (sweep file, flag, storage URL or dataset), reported before anything
is trained or written; 130 interrupted by Ctrl-C, SIGTERM or SIGHUP (finished work is kept; the
same command resumes).
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import TYPE_CHECKING, Any, Iterator

import typer
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from study.reporting.colours import CELL_COLOURS
from study.search.progress import SilentReporter, describe_params, waiting_text
from study.spec.errors import StudyError

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is made: `study sweep --jobs N` starts its workers first

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs are read wide.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: MESSAGE` on stderr (the message literally: paths and hints hold brackets) and
    return the exit to raise."""
    with contextlib.suppress(OSError):  # a terminal closed (SIGHUP) cannot be told, but the exit code still counts
        errors.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def stopping_cleanly(stopped: str):
    """Ctrl-C, SIGTERM and SIGHUP stop the command between writes (`study.train.interrupts`); a hard stop inside
    one long training step prints the same `error: STOPPED` line as a Ctrl-C caught here does."""
    from study.train.interrupts import graceful_interrupts

    return graceful_interrupts(say=lambda text: errors.print(text, highlight=False, markup=False),
                               farewell=f"error: {stopped}")


@contextlib.contextmanager
def exit_codes(stopped: str = "interrupted", bad_input: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn what a command raises into one `error:` line and its exit code (see the module): a
    `StudyError` exits with its own code, `bad_input` with 2, a Ctrl-C with `stopped` and 130;
    anything else is a bug and keeps its traceback."""
    try:
        yield
    except KeyboardInterrupt:
        raise fail(stopped, code=130) from None
    except StudyError as err:
        raise fail(str(err), code=err.exit_code) from None
    except bad_input as err:
        raise fail(str(err)) from None


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
        self.study_name = study_name
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

    def decision_looked(self, look) -> None:
        """A `decide:` sweep looked: its line, and the pairs decided so far on the trials bar."""
        self.progress.console.print(look.text(), highlight=False, markup=False)
        decided = sum(state != "undecided" for state in look.states.values())
        self.progress.update(self.trials_bar, description=(
            f"{getattr(self, 'study_name', 'study')}: trials, {decided} of {len(look.states)} pairs decided"))

    def replicate_started(self, record, index: int) -> None:
        self.progress.reset(self.epochs_bar, total=None, visible=True, description=(
            f"replicate {index + 1} of trial {record.number} ({describe_params(record.params, self.scientific)})"))


class WorkersDisplay:
    """`study sweep --jobs N`: one bar over the study's finished trials, each worker's lines under it."""

    def __init__(self, config):
        self.config = config
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self.bar = self.progress.add_task(f"{config.name}: trials", total=None)

    def __enter__(self) -> WorkersDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def show_line(self, worker: int, line: str) -> None:
        if worker == 0:
            self.progress.console.print(line, highlight=False, markup=False)
        else:
            self.progress.console.print(f"[dim]worker {worker}[/] {escape(line)}", highlight=False)

    def show_progress(self, finished: int, target: int, counts: dict[str, int]) -> None:
        others = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n and s in ("RUNNING", "FAIL"))
        self.progress.update(self.bar, total=target, completed=finished,
                             description=f"{self.config.name}: trials" + (f" ({others})" if others else ""))

    def replicates_reporter(self) -> SilentReporter:
        """What the sweep reports once its workers are done and it replicates: a line per replicate."""
        display = self

        class ReplicateLines(SilentReporter):
            def replicate_started(self, record, index: int) -> None:
                display.show_line(0, f"replicate {index + 1} of trial {record.number} "
                                     f"({describe_params(record.params, display.config.scientific)})")

        return ReplicateLines()


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
    # The test metric of the objective's kind first (test_accuracy for best_val_accuracy), the
    # secondary ones (test_loss) after it.
    objective = [c.replace("best_val_", "test_", 1) for c in best]
    tests = [c for c in tests if c in objective] + [c for c in tests if c not in objective]
    # In the order a narrow terminal keeps them (see dataframe_table): who, how good, with what
    # (the hyperparameters that vary), how good on the test set, then size and speed.
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
    columns are kept in their order until the first that does not fit, so a column is never shown
    in place of one before it (the order is the rank: a narrow `test_loss` never displaces a wide
    `learning_rate`); the first column is always shown, however narrow the terminal; the caption
    names the ones left out. `wide` keeps every column (the terminal may then wrap)."""
    import pandas as pd

    texts = {column: [cell_text(value) for value in frame[column]] for column in frame.columns}
    # Each column takes its longest text plus 3 (padding and its border); `fail_reason` wraps.
    needed = {c: 3 + (24 if c == "fail_reason" else max([len(str(c)), *map(len, texts[c])])) for c in frame.columns}
    room, shown = console.width - 1, []
    for column in frame.columns:
        if not (wide or needed[column] <= room or not shown):
            break
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


def cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def findings_table(findings: pd.DataFrame, title: str) -> Table:
    """`study doctor`'s problems, each cell as literal text (no Rich markup)."""
    table = Table(title=Text(title), title_justify="left")
    for column in findings.columns:
        table.add_column(str(column), no_wrap=column in ("problem", "trial", "run"))
    for row in findings.itertuples(index=False):
        table.add_row(*(Text(cell_text(value)) for value in row))
    return table


# --------------------------------------------------------------------------- what commands print at the end


def print_outcome(result, ran: str) -> None:
    """The sweep's notes, then one line of trial counts by state against the target."""
    for note in result.notes:
        console.print(f"note: {note}")
    counts = ", ".join(f"{n} {state.lower()}" for state, n in result.counts.items() if n)
    console.print(f"study {result.study_name!r}: {counts or 'no trials'} (target {result.target}); {ran}")


def print_replicates(results: list, study_name: str) -> None:
    import pandas as pd

    rows = pd.DataFrame([{"trial": r.trial, "seed": r.seed, r.metric: r.value, **r.test_metrics} for r in results])
    console.print(dataframe_table(rows, title=f"new replicates of {study_name}"))


def print_report(result) -> None:
    if result.verdict is not None:
        console.print(f"[bold]verdict:[/] {escape(result.verdict.headline)}", highlight=False)
        for line in result.verdict.details:
            console.print(f"  {line}", highlight=False, markup=False)
        for answer in result.verdict.answers[1:]:  # the first is the headline's own question
            console.print(f"[bold]{escape(answer.question)}:[/] {escape(answer.text)}", highlight=False)
        for finding in result.verdict.findings:
            console.print(f"[bold]finding:[/] {escape(finding)}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if not result.best.empty:
        console.print(dataframe_table(best_columns(result.best), title=f"best per {result.best.columns[0]}"))
    console.print(f"wrote {len(result.files)} files to {result.out}; open {result.out / 'report.html'} "
                  f"(to hand in: {result.out / 'report.pdf'})"
                  + (" (also logged to the study's parent run in MLflow)" if result.parent_run_id else ""))


def print_across_report(result) -> None:
    for study in result.studies:
        console.print(f"[bold]{escape(study.study_name)}:[/] {escape(study.verdict.headline)}", highlight=False)
    console.print(dataframe_table(result.table, title="value x task"))
    console.print(f"[bold]verdict across tasks:[/] {escape(result.verdict)}", highlight=False)
    console.print(f"wrote {len(result.files)} files to {result.out}; open {result.out / 'report.html'} "
                  f"(to hand in: {result.out / 'report.pdf'})")
