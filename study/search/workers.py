"""Workers: several processes on one sweep, and stopping any of them without losing a trial.

`run_workers` is `study sweep FILE --jobs N`: it checks the sweep and creates its study and MLflow
parent run once, then starts N `study worker FILE` processes on it (at most as many as trials are
missing and as fit in the memory available, ~0.9 GB each), each with its share of the CPU threads
(`RNN_STUDY_THREADS`), follows their output, and counts finished trials in the storage until
every worker has exited. The workers coordinate through the study alone (see
`study.search.sweep`), exactly as workers started by hand on other machines do.

Children die with their parent: `study ui`'s server and its workers through a watchdog process,
`--jobs` workers by stopping themselves as a Ctrl-C would (`study.train.interrupts`) once it is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from study.search.progress import SilentReporter, SweepReporter
from study.spec.base import ConfigError
from study.spec.errors import StudyError
from study.spec.settings import STORAGE_ENV, THREADS_ENV, TRACKING_ENV
from study.spec.states import finished_count
from study.spec.sweep_file import Sweep, SweepConfig
from study.store.stores import Stores
from study.train.interrupts import request_stop

if TYPE_CHECKING:  # imported by run_workers once the workers are started: Optuna, SQLAlchemy, pandas
    from study.search.sweep import OpenSweep, SweepResult

PARENT_GO_ENV = "RNN_STUDY_WAIT_FOR_PARENT"  # set for workers of `study sweep --jobs N`: wait for its "go"

POLL_SECONDS = 0.2  # how often the parent looks whether its workers have exited
PROGRESS_SECONDS = 1.0  # how often it counts finished trials in the storage for the progress bar
STOP_SECONDS = 120  # how long stopped workers get to mark their trials before they are killed


def cpu_count() -> int:
    """Cores this process may use (a container's or `taskset`'s limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(jobs: int) -> int:
    """An equal share of the cores, so N workers do not oversubscribe the CPU."""
    return max(1, cpu_count() // jobs)


# A worker's peak memory, measured: `--jobs 8` on a tiny digits study peaked at 7.0 GB (TensorFlow,
# Keras, MLflow and the data in each process), so `--jobs 32` would take ~29 GB.
WORKER_BYTES = 900 * 2**20


def available_memory() -> int | None:
    """Bytes of memory that new processes can take without swapping (Linux `MemAvailable`), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def sweep_target(config: SweepConfig, trials: int | None) -> tuple[int, int | None]:
    """(the finished trials a sweep stops at, the trials of a `decide:` sweep's first look or None):
    `--trials`, else the file's `trials`; a sweep that runs until decided on paired draws goes on up
    to its `decide.max_trials`. (A grid also stops at its size: see `trials_missing`.)"""
    target = config.trials if trials is None else trials
    if target < 1:
        raise ConfigError(f"--trials must be at least 1 (got {target})")
    if config.decide is not None and config.decide.evidence == "paired":
        return max(target, config.decide.max_trials), target
    return target, None


def trials_missing(sweep: Sweep, trials: int | None, stores: Stores) -> int | None:
    """How many trials the study still needs before its target, read from a local SQLite storage
    without writing (the whole target when there is no study yet); None for a database server,
    which is first opened, and asked, by `open_sweep`. A storage that cannot be used is refused
    here (StoreError), before any worker starts."""
    from study.store.locations import local_file_exists, sqlite_path

    target, _ = sweep_target(sweep.config, trials)
    grid = sweep.config.grid_size()
    target = target if grid is None else min(target, grid)
    exists = local_file_exists(stores.storage, "storage")  # a folder this user cannot enter: StoreError
    if exists is None:
        return None
    if not exists or sqlite_path(stores.storage).stat().st_size == 0:
        return target
    import optuna

    from study.spec.states import FINISHED_STATES

    try:
        storage = stores.optuna_storage()  # to read: nothing is created
        if sweep.config.name not in optuna.get_all_study_names(storage):
            return target
        study = optuna.load_study(study_name=sweep.config.name, storage=storage)
        finished = sum(t.state.name in FINISHED_STATES for t in study.get_trials(deepcopy=False))
    except StudyError:
        raise
    except Exception:  # noqa: BLE001 - a schema Optuna cannot read: `open_sweep` says why, once
        return None
    finally:
        stores.close()
    return max(0, target - finished)


# --------------------------------------------------------------------------- children that die with their parent

# A process of its own that outlives nothing it guards: it stops a process group (a server and the
# workers that server started) once the process that started it is gone, even by kill -9, which no
# handler sees. It exits by itself when the group has gone.
_WATCHDOG = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while True:
    time.sleep(0.5)
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        sys.exit(0)
    if os.getppid() != parent:
        break
for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        sys.exit(0)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            sys.exit(0)
"""


def guard_process_group(group: int) -> subprocess.Popen:
    """Start a watchdog that stops process group `group` when this process dies (even by kill -9)."""
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(group)],
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop_with_parent(poll_seconds: float = 1.0) -> None:
    """In a worker of `study sweep --jobs N`: once the parent is gone (kill -9 too), interrupt this
    process as a Ctrl-C would, so it marks its trial and exits instead of training on as an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        # The parent read this worker's output through pipes that are gone with it: a write there would
        # raise BrokenPipeError in whatever line prints next, possibly before the trial is marked.
        with contextlib.suppress(OSError):
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
        request_stop("stopped because its parent process (study sweep --jobs) ended")

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


# --------------------------------------------------------------------------- local workers


@dataclass
class Worker:
    index: int
    process: subprocess.Popen
    tail: deque = field(default_factory=lambda: deque(maxlen=5))
    started: bool = False  # told "go": it may be running trials

    @property
    def returncode(self) -> int | None:
        return self.process.poll()


@dataclass
class WorkersResult:
    sweep: SweepResult
    exit_codes: list[int]
    tails: list[list[str]]  # the last lines each worker printed

    @property
    def failed(self) -> list[int]:
        """Indexes (from 1) of the workers that exited with an error."""
        return [i + 1 for i, code in enumerate(self.exit_codes) if code != 0]


def worker_command(sweep: Sweep, trials: int | None) -> list[str]:
    decide = sweep.config.decide  # the file's, or `--until-decided`'s: the workers must look the same way
    return ([sys.executable, "-m", "study.app.cli", "worker", str(sweep.path)] + (["--trials", str(trials)] if trials else [])
            + (["--until-decided", "--max-trials", str(decide.max_trials)] if decide is not None else []))


def prepare_then_wait_for_parent(sweep: Sweep) -> bool:
    """In a worker of `study sweep --jobs N`: import TensorFlow and MLflow and load the data while
    the parent opens the stores, then wait for its word. False: the parent stopped first (a store
    refused, Ctrl-C, or no trial left for this worker), so this worker has nothing to do."""
    # The parent dismisses waiting workers by closing their input; a SIGINT it sends meanwhile
    # (Ctrl-C at its terminal) must not break an import half-way and print a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import study.search.trial  # noqa: F401 - TensorFlow and Keras, the slow imports, and MLflow
        from study.train.data import load_task
        from study.store.locations import preload_storage_code
        from study.store.tracking import preload

        load_task(sweep.config.task)  # cached for the sweep
        # What opening the stores imports, so that after the go only the stores themselves are opened.
        preload_storage_code()
        with contextlib.suppress(ConfigError):  # a bad URL is the parent's to report
            preload(Stores.resolve(config=sweep.config).tracking_uri)
        return sys.stdin.readline().strip() == "go"
    finally:
        signal.signal(signal.SIGINT, previous)


def _tell(worker: Worker, go: bool) -> None:
    """Let a waiting worker start (or, without `go`, exit), by closing its standard input."""
    with contextlib.suppress(OSError):  # it exited already (its own error is in its output)
        if go:
            worker.started = True
            worker.process.stdin.write("go\n")
        worker.process.stdin.close()


def run_workers(
    sweep: Sweep,
    jobs: int,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    on_line: Callable[[int, str], None] | None = None,
    on_progress: Callable[[int, int, dict[str, int]], None] | None = None,
    reporter: SweepReporter | None = None,
) -> WorkersResult:
    """Run `sweep` with `jobs` local worker processes until it has its target of finished trials,
    then, if every worker succeeded, the replicates the sweep file asks for (in this process).

    `on_line(worker, line)` receives each line a worker prints (worker 0: this process's own),
    `on_progress(finished, target, counts)` the study's counts about once a second, `reporter`
    the replicates as they start. A KeyboardInterrupt here is passed on to the workers as SIGINT;
    they mark their trials and exit, then it is raised again.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (got {jobs})")
    # The workers start at once, before this process has imported MLflow or pandas: they import
    # TensorFlow and load the data while this process checks and opens the stores, then wait for
    # its "go" before they touch the stores. Only as many start as there are trials missing (a look
    # at a local storage, read-only) and as fit in the memory available (WORKER_BYTES each).
    stores = Stores.resolve(storage, tracking_uri, sweep.config)
    requested, missing = jobs, trials_missing(sweep, trials, stores)
    jobs = requested if missing is None else min(requested, missing)
    available = available_memory()
    fit = None if available is None else max(1, available // WORKER_BYTES)  # at least one, as --jobs 1 would
    by_memory = fit is not None and jobs > fit
    jobs = min(jobs, fit) if by_memory else jobs
    env = {
        **os.environ,
        # The stores go by environment, not by argument: a password stays out of `ps` listings.
        STORAGE_ENV: stores.storage,
        TRACKING_ENV: stores.tracking_uri,
        THREADS_ENV: str(threads_per_worker(max(1, jobs))),
        PARENT_GO_ENV: "1",
        "PYTHONUNBUFFERED": "1",
    }
    workers: list[Worker] = []
    readers: list[threading.Thread] = []
    opened: OpenSweep | None = None
    interrupted = False
    try:
        for index in range(1, jobs + 1):
            process = subprocess.Popen(
                worker_command(sweep, trials), env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                # Its own session: a Ctrl-C in the terminal reaches the parent only, which passes
                # it on once (a second SIGINT could interrupt a worker while it marks its trial).
                start_new_session=True,
            )
            worker = Worker(index, process)
            workers.append(worker)
            reader = threading.Thread(target=_follow, args=(worker, on_line), daemon=True)
            reader.start()
            readers.append(reader)
        from study.store.trials import state_counts
        from study.search.sweep import open_sweep, replicate_if_asked

        opened = open_sweep(sweep, trials, storage, tracking_uri)
        trials_before = len(opened.study.get_trials(deepcopy=False))
        finished, running = opened.finished_and_running()
        missing = max(0, opened.target - finished)
        jobs = min(jobs, missing)
        if by_memory and jobs == fit:
            opened.notes.append(f"{jobs} of the {requested} workers asked for ran: each takes about "
                                f"{WORKER_BYTES / 2**30:.1f} GB of memory, and {available / 2**30:.1f} GB was available")
        elif jobs < requested:
            opened.notes.append(f"{missing} trial(s) missing, so {jobs} worker(s) ran instead of {requested}"
                                if missing else f"the study has its {opened.target} trials already: no worker ran")
        if on_line is not None and jobs:
            on_line(0, f"{jobs} worker(s) on {sweep.config.name!r}, {env[THREADS_ENV]} CPU thread(s) each")
        for worker in workers:
            _tell(worker, go=worker.index <= jobs)
        counted = 0.0
        while any(w.returncode is None for w in workers):
            if on_progress is not None and time.monotonic() - counted >= PROGRESS_SECONDS:
                counted = time.monotonic()
                counts = state_counts(opened.study)
                on_progress(finished_count(counts), opened.target, counts)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
        _stop(workers)
        raise
    finally:
        if not interrupted:
            _stop(workers)  # only if something else went wrong (the stores refused); normally all have exited
        for reader in readers:
            reader.join(timeout=5)
        if opened is not None:
            _close(opened, finished=not interrupted)
    counts = state_counts(opened.study)
    if on_progress is not None:
        on_progress(finished_count(counts), opened.target, counts)
    if not interrupted:  # a `decide:` sweep: the workers looked; this says where the study ended
        opened.decided_now(finished_count(counts), reporter or SilentReporter())
    result = opened.result(len(opened.study.get_trials(deepcopy=False)) - trials_before, counts, None)
    outcome = WorkersResult(result, [w.returncode for w in workers], [list(w.tail) for w in workers])
    if not outcome.failed:
        replicate_if_asked(result, sweep.config, reporter or SilentReporter(), opened.stores)
    return outcome


def _follow(worker: Worker, on_line: Callable[[int, str], None] | None) -> None:
    for line in worker.process.stdout:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        worker.tail.append(line)
        if on_line is not None:
            on_line(worker.index, line)


def _stop(workers: list[Worker]) -> None:
    """SIGINT each started worker, dismiss those still waiting for the go, give them time to mark
    their trials or exit, then kill what is left.

    A waiting worker gets no signal: it may still be starting Python, where a SIGINT would abort
    an import with a traceback; it exits by itself once its input is closed, having written nothing.
    """
    for worker in workers:
        _tell(worker, go=False)
    alive = [w for w in workers if w.returncode is None]
    for worker in alive:
        if worker.started:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for worker in alive:
        while worker.returncode is None:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()  # its trial is failed by the heartbeat check of the next run
                worker.process.wait()
            except KeyboardInterrupt:
                continue  # a second Ctrl-C: keep waiting for the workers to mark their trials


def _close(opened: OpenSweep, finished: bool) -> None:
    opened.fail_stale_trials()
    opened.close_orphaned_runs()
    opened.close(finished=finished)
