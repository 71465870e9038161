"""Benchmark: many workers on one study in a real PostgreSQL: how fast they claim trials, how long
each waits for the study lock, and at what trial length the lock saturates (extrapolated to 1,000).

Each run starts W worker processes on a fresh PostgreSQL database, every one on the project's own
path, `study.search.sweep.run_sweep(..., replicate=False)` as `study worker` runs it: `open_sweep`, the
study lock of `study.store.locations.StudyLock` (`pg_try_advisory_lock`, polled every 50 ms), claiming in
`_run_until_target`, the default TPE sampler with `budget: equal`, heartbeats. Only the training is
scripted: `study.search.trial.train_and_evaluate` sleeps the trial length T over two epochs, calls
`on_epoch` after each and returns a `TrainingResult`. The target is N = W trials (at least 16).

Workers are forked from this process once it has imported `study` (TensorFlow included) and loaded
the data, so none pays ~10 CPU-seconds of imports; they start one after another, each opening the
sweep, then wait at a barrier just before `_run_until_target`. Once all W are there the steady
phase is timed from the "go" to the end of the last trial; start-up is reported apart. Inside each
worker `StudyLock.acquire`/`release` are wrapped (here, not in `study/`) to time every acquisition:
lock wait = from asking to holding, hold = from holding to letting go (the claim's service time c),
with the holder's CPU time. An acquisition is a claim when the `claimed` closure, which the new
trial's objective runs first, lets the lock go. Workers poll for the lock at nice 19 and run at
normal priority otherwise, standing in for workers on machines of their own (`--same-priority`
turns this off; RESULTS.md says why); PostgreSQL runs at normal priority.

Tracking, in two modes named in every row: `claim` replaces the MLflow tracker in each worker by a
no-op (the claim path and Optuna alone); `server` tracks every trial through a real `mlflow server`
(2 workers) with its runs in PostgreSQL and artifacts proxied to a folder, the README's set-up for
many machines. MLflow's writes happen outside the lock: they lengthen the trial and share the cores.

Checked per run: exactly N trials COMPLETE and none RUNNING, trial numbers unique, every trial
trained once, by one worker (no two workers ran the same trial), and in `server` mode one MLflow
run per trial, none left RUNNING. A failed check makes the script exit 1.

Default runs: `claim` with 8 workers x 0, 2 and 8 s (the lock saturated, near, and below
saturation), 32 and 64 workers x 0 s (the lock's ceiling under contention), and `server` with
8 workers x 0 s; about 10 minutes on 2 busy cores.

    .venv/bin/python benchmarks/many_workers.py                  # the default runs; writes RESULTS.md
    .venv/bin/python benchmarks/many_workers.py --workers 8,32,64 --lengths 0,0.5,2 --all-lengths --no-record
    .venv/bin/python benchmarks/many_workers.py --quick          # smoke run: 4 and 8 workers, claim mode, ~2 min
    .venv/bin/python benchmarks/many_workers.py --keep /tmp/mw   # also keep every run's raw timings, then
    .venv/bin/python benchmarks/many_workers.py --report /tmp/mw # render RESULTS.md's section again from them
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import pwd
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import urllib.request
from pathlib import Path

from results_file import load_average, machine, write_section

HERE = Path(__file__).resolve().parent
PASSWORD = "bench-Pw"
TRIALS_PER_WORKER = 1  # N = this x W, at least MIN_TRIALS
MIN_TRIALS = 16
EPOCHS = 2
STARTUP_TIMEOUT = 600  # all workers at the barrier within this, or the run is abandoned
RUN_TIMEOUT = 600

SWEEP = """
    # benchmarks/many_workers.py: the default sampler (TPE) and budget (equal) over a compared cell.
    name: {name}
    task: {{name: digits}}
    space:
      cell: {{role: scientific, choices: [SimpleRNN, GRU, LSTM]}}
      units: {{value: 8}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
    trials: {trials}
    epochs: {epochs}
    batch_size: 128
    threads: 1
    log_models: false
    max_consecutive_failures: 3
"""


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout} s")
        time.sleep(0.25)


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds used so far by a PostgreSQL server: the postmaster, its live backends, and (through
    the postmaster's children times) every backend that has exited."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:  # fields[1]: the parent's pid
            total += sum(int(x) for x in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return total


@contextlib.contextmanager
def postgres(max_connections: int):
    """A PostgreSQL server on 127.0.0.1 (the `pgserver` wheel's binaries, else Debian's), with its
    default durability (fsync on). Yields a function that creates a database and returns its URL."""
    import glob

    import psycopg

    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        bin_dir = Path(POSTGRES_BIN_PATH)
    except ImportError:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not found:
            raise SystemExit("no PostgreSQL binaries: pip install pgserver (or apt-get install postgresql)") from None
        bin_dir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="many-workers-pg-"))
    run_as = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        for account in ("postgres", "pgserver", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(account)
                run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
                break
        os.chown(folder, run_as["user"], run_as["group"])
    (folder / "password").write_text(PASSWORD)
    if run_as:
        os.chown(folder / "password", run_as["user"], run_as["group"])
    subprocess.run([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "study", f"--pwfile={folder / 'password'}",
                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120, **run_as)
    port = free_port()
    log = open(folder / "postgres.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(folder / "data"), "-h", "127.0.0.1", "-p", str(port),
         "-c", "unix_socket_directories=", "-c", f"max_connections={max_connections}"],
        stdout=log, stderr=subprocess.STDOUT, **run_as,
    )
    base = f"postgresql+psycopg://study:{PASSWORD}@127.0.0.1:{port}"

    def connect():
        return psycopg.connect(f"postgresql://study:{PASSWORD}@127.0.0.1:{port}/postgres", autocommit=True,
                               connect_timeout=5)

    def ready() -> bool:
        try:
            connect().close()
            return True
        except psycopg.OperationalError:
            return False

    def new_database(name: str) -> str:
        with connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"{base}/{name}"

    new_database.pid = server.pid
    try:
        wait_for(ready, 60, "PostgreSQL", server)
        yield new_database
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend: str, folder: Path):
    """`mlflow server` on 127.0.0.1 with its runs in PostgreSQL and artifacts proxied to `folder`."""
    port = free_port()
    log = open(folder / "mlflow-server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 300, "the MLflow server", server)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


# --------------------------------------------------------------------------- inside each worker


class _NullRun:
    run_id = "untracked"

    def log_epoch(self, epoch, metrics):
        pass

    def log_model(self, model):
        pass

    def finish(self, *args, **kwargs):
        pass


class NullTracker:
    """`claim` mode: stands in for `study.store.tracking.SweepTracker`, so a trial costs no MLflow writes."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        self.tracking_uri, self.experiment_id, self.parent_run_id = tracking_uri, "0", None

    def open_parent(self, study_name, tags, config):
        self.parent_run_id = "parent"
        return self.parent_run_id

    def close_parent(self, summary, best, finished):
        pass

    def start_trial(self, number, params, tags, role="trial", run_name="", dataset=None):
        return _NullRun()

    def close_orphaned_trial_runs(self, live_trial_numbers):
        return 0

    def close_dead_retrain_runs(self):
        return 0

    def fail_finished_trial_runs(self, numbers, reason):
        return 0


def _scripted_training(seconds: float, trained: list):
    """A `train_and_evaluate` with the real one's contract that sleeps `seconds` instead of training."""
    import math

    from study.train.fit import TrainingResult
    from study.train.sizes import model_spec, parameter_count

    def train(data, params, *, epochs, batch_size, seed, metric, direction, on_epoch=None, should_prune=None,
              jit_compile="auto"):
        started = time.monotonic()
        distance = abs(math.log10(params["learning_rate"]) - math.log10(3e-3))
        history: dict[str, list[float]] = {}
        for epoch in range(1, epochs + 1):
            time.sleep(seconds / epochs)
            accuracy = (0.95 - 0.15 * distance) * (1 - 0.5 ** epoch)
            logs = {"loss": 1.01 - accuracy, "accuracy": accuracy + 0.01, "val_loss": 1 - accuracy,
                    "val_accuracy": accuracy}
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            if on_epoch is not None:
                on_epoch(epoch, logs)
            if should_prune is not None:
                should_prune(epoch, logs[metric])
        trained.append((seed, started, time.monotonic()))
        return TrainingResult(
            value=history[metric][-1], best_epoch=epochs, history=history,
            test_metrics={"test_loss": history["val_loss"][-1] + 0.02, "test_accuracy": history[metric][-1] - 0.01},
            param_count=parameter_count(model_spec(data), params), train_seconds=seconds,
            epoch_seconds=[seconds / epochs] * epochs,
        )

    return train


def _worker(sweep_path: str, storage: str, tracking: str, seconds: float, mode: str, ready, go, out: str,
            holder_first: bool) -> None:
    """One forked worker: the real `run_sweep`, with scripted training and a timed study lock."""
    import study.search.sweep
    import study.search.trial
    from study.spec.sweep_file import load_sweep
    from study.store.locations import StudyLock

    report = {"pid": os.getpid(), "locks": [], "trained": [], "error": None, "go": None}
    steady = False
    acquire, release, attempt = StudyLock.acquire, StudyLock.release, StudyLock._try

    def timed_try(self):
        self._bench_tries = getattr(self, "_bench_tries", 0) + 1
        return attempt(self)

    def timed_acquire(self):
        asked = time.monotonic()
        self._bench_tries = 0
        if holder_first:  # polling stands in for a worker on a machine of its own (see --same-priority)
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        try:
            acquire(self)
        finally:
            if holder_first:
                os.setpriority(os.PRIO_PROCESS, 0, 0)
        self._bench_held, self._bench_cpu = (asked, time.monotonic()), time.process_time()
        return self

    def timed_release(self):
        live, letting_go, cpu = self._release is not None, time.monotonic(), time.process_time()
        release(self)
        if live:
            # The objective's `claimed` closure lets the lock go once its new trial exists.
            kind = "claim" if sys._getframe(1).f_code.co_name == "claimed" else "check" if steady else "open"
            report["locks"].append((*self._bench_held, letting_go, time.monotonic(), kind, self._bench_tries,
                                    cpu - self._bench_cpu))

    run_until_target = study.search.sweep._run_until_target

    def gated(*args, **kwargs):
        nonlocal steady
        ready.put(os.getpid())
        go.wait()
        steady, report["go"], cpu = True, time.monotonic(), time.process_time()
        try:
            return run_until_target(*args, **kwargs)
        finally:
            report["done"], report["cpu"] = time.monotonic(), time.process_time() - cpu

    StudyLock.acquire, StudyLock.release, StudyLock._try = timed_acquire, timed_release, timed_try
    study.search.sweep._run_until_target = gated
    study.search.trial.train_and_evaluate = _scripted_training(seconds, report["trained"])
    if mode == "claim":
        import study.store.tracking

        study.store.tracking.SweepTracker = NullTracker
        study.store.tracking.tracked_trial_numbers = lambda uri, name: set()
    try:
        result = study.search.sweep.run_sweep(load_sweep(sweep_path), storage=storage, tracking_uri=tracking,
                                       replicate=False)
        report["started"] = result.started
    except BaseException:  # noqa: BLE001 - reported by the parent
        report["error"] = traceback.format_exc()[-3000:]
        if not steady:
            ready.put(-os.getpid())  # do not leave the parent waiting at the barrier
    Path(out).write_text(json.dumps(report))


# --------------------------------------------------------------------------- one run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_once(new_database, tracking_server: str | None, workers: int, seconds: float, folder: Path,
             per_worker: int = TRIALS_PER_WORKER, holder_first: bool = True) -> dict:
    """W forked workers on a fresh database until N trials; the figures and the checks."""
    import optuna

    mode = "server" if tracking_server else "claim"
    name = f"many-{mode}-{workers}w-{str(seconds).replace('.', 'p')}s"
    target = max(MIN_TRIALS, per_worker * workers)
    run_folder = folder / name
    run_folder.mkdir()
    storage = new_database(name)
    tracking = tracking_server or f"sqlite:///{run_folder}/unused-mlflow.db"
    sweep_path = run_folder / "sweep.yaml"
    sweep_path.write_text(textwrap.dedent(SWEEP.format(name=name, trials=target, epochs=EPOCHS)))

    context = multiprocessing.get_context("fork")
    ready, go = context.Queue(), context.Event()
    forked = time.monotonic()
    processes = [
        context.Process(target=_worker, args=(str(sweep_path), storage, tracking, seconds, mode, ready, go,
                                              str(run_folder / f"worker-{i}.json"), holder_first), daemon=True)
        for i in range(workers)
    ]
    # One after the other: each opens the sweep alone (a crowd would only queue for the same lock), then
    # waits at the barrier without using the CPU.
    arrived, failed = 0, 0
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for process in processes:
        process.start()
        while time.monotonic() < deadline:
            try:
                pid = ready.get(timeout=1)
                arrived, failed = (arrived + 1, failed) if pid > 0 else (arrived, failed + 1)
                break
            except queue.Empty:
                continue
    startup = time.monotonic() - forked
    load_before = os.getloadavg()[0]
    database_cpu = postgres_cpu(new_database.pid)
    go.set()
    for process in processes:
        process.join(timeout=max(1.0, RUN_TIMEOUT - (time.monotonic() - forked)))
        if process.is_alive():
            process.kill()
            process.join()
    time.sleep(0.5)  # the backends of the workers' connections exit
    database_cpu = postgres_cpu(new_database.pid) - database_cpu
    reports = []
    for i in range(workers):
        path = run_folder / f"worker-{i}.json"
        reports.append(json.loads(path.read_text()) if path.exists() else {"error": "no report (killed?)",
                                                                            "locks": [], "trained": [], "go": None})
    problems = [f"worker {i}: {r['error'].strip().splitlines()[-1]}" for i, r in enumerate(reports) if r["error"]]
    if arrived < workers:
        problems.append(f"only {arrived} of {workers} workers reached the barrier within {STARTUP_TIMEOUT} s")

    # The checks, from the storage itself.
    rdb = optuna.storages.RDBStorage(storage)
    try:
        trials = optuna.load_study(study_name=name, storage=rdb).get_trials(deepcopy=False)
    finally:
        rdb.engine.dispose()  # no pooled connection left for the next run's forked workers to inherit
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    numbers = [t.number for t in trials]
    number_of_seed = {t.user_attrs.get("seed"): t.number for t in trials}
    trained = [number_of_seed.get(seed, -1) for r in reports for seed, _, _ in r["trained"]]
    complete = sorted(t.number for t in trials if t.state.name == "COMPLETE")
    if states["COMPLETE"] + states["PRUNED"] != target:
        problems.append(f"{states['COMPLETE'] + states['PRUNED']} finished trials, not {target}: {states}")
    if states["RUNNING"]:
        problems.append(f"{states['RUNNING']} trial(s) left RUNNING")
    if len(set(numbers)) != len(numbers):
        problems.append("a trial number is used twice")
    if len(set(trained)) != len(trained) or sorted(n for n in trained if n in set(complete)) != complete:
        problems.append(f"trials trained more than once or not by exactly one worker: {sorted(trained)}")
    if tracking_server:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_server)
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id], "tags.run_role = 'trial'", max_results=50000)
        run_numbers = sorted(int(r.data.tags["trial_number"]) for r in runs)
        if run_numbers != sorted(numbers):
            problems.append(f"MLflow runs {len(run_numbers)} for {len(numbers)} trials (one per trial expected)")
        if any(r.info.status == "RUNNING" for r in runs):
            problems.append("MLflow runs left RUNNING")

    run = {"mode": mode, "workers": workers, "seconds": seconds, "target": target, "states": states, "at": time.time(),
           "startup": startup, "load": load_before, "database_cpu": database_cpu, "problems": problems}
    (run_folder / "run.json").write_text(json.dumps(run))
    return summarise(run, reports)


def summarise(run: dict, reports: list[dict]) -> dict:
    """One row of the table from a run's own figures and its workers' timings."""
    workers, seconds = run["workers"], run["seconds"]
    # The steady phase: from the go to the end of the last trial.
    go_at = min((r["go"] for r in reports if r["go"] is not None), default=time.monotonic())
    ends = [end for r in reports for _, _, end in r["trained"]]
    window = (max(ends) - go_at) if ends else float("nan")
    locks = [lock for r in reports for lock in r["locks"]]
    claims = sorted((lock for lock in locks if lock[4] == "claim"), key=lambda lock: lock[1])
    waits = [held - asked for asked, held, *_ in claims]
    holds = [letting_go - held for _, held, letting_go, *_ in claims]
    opens = [letting_go - held for _, held, letting_go, _, kind, *_ in locks if kind == "open"]
    end = go_at + window
    busy = sum(max(0.0, min(letting_go, end) - max(held, go_at)) for _, held, letting_go, _, kind, *_ in locks
               if kind != "open")
    quarter = max(1, len(holds) // 4)
    outside = []  # per claim: from letting the lock go to asking again (the trial and its bookkeeping)
    for r in reports:
        mine = sorted(r["locks"], key=lambda lock: lock[0])
        outside += [later[0] - lock[2] for lock, later in itertools.pairwise(mine) if lock[4] == "claim"]

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    return {
        **run, "open_hold": median(opens),
        "window": window, "claims": len(claims), "claims_per_s": len(claims) / window,
        "ideal_per_s": workers / seconds if seconds else float("inf"),
        "wait_median": median(waits), "wait_p95": percentile(waits, 0.95),
        "hold_median": median(holds), "hold_p95": percentile(holds, 0.95),
        "hold_cpu_median": median([lock[6] for lock in claims]), "outside_median": median(outside),
        "hold_first_quarter": median(holds[:quarter]), "hold_last_quarter": median(holds[-quarter:]),
        "unlock_median": median([released - letting_go for _, _, letting_go, released, *_ in claims]),
        "busy": busy / window,
        "checks": sum(lock[4] == "check" for lock in locks),
        "drain": max((r.get("done") or end) for r in reports) - end,
        "tries_per_claim": statistics.mean(lock[5] for lock in claims) if claims else float("nan"),
        "worker_cpu_per_claim": sum(r.get("cpu", 0.0) for r in reports) / max(1, len(claims)),
        "database_cpu_per_claim": run["database_cpu"] / max(1, len(claims)),
        "per_worker": sorted(len(r["trained"]) for r in reports),
    }


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def table(rows: list[dict]) -> str:
    lines = [("| tracking | workers | trial s | N | start-up s | steady s | claims/s | ideal W/T | lock wait ms median / p95 "
             "| lock hold ms median / p95 (holder CPU) | outside the lock s | lock busy | polls per claim "
             "| CPU ms per claim: workers / "
             "PostgreSQL | drain s | trials per worker | load 1 min | checks |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ideal = "inf" if r["ideal_per_s"] == float("inf") else f"{r['ideal_per_s']:.1f}"
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['seconds']:g} | {r['target']} | {r['startup']:.0f} | {r['window']:.1f} "
            f"| {r['claims_per_s']:.2f} | {ideal} | {ms(r['wait_median'])} / {ms(r['wait_p95'])} "
            f"| {ms(r['hold_median'])} / {ms(r['hold_p95'])} ({ms(r['hold_cpu_median'])}) | {r['outside_median']:.2f} "
            f"| {r['busy']:.0%} "
            f"| {r['tries_per_claim']:.1f} | {ms(r['worker_cpu_per_claim'])} / {ms(r['database_cpu_per_claim'])} "
            f"| {r['drain']:.1f} | {r['per_worker'][0]}-{r['per_worker'][-1]} | {r['load']:.1f} "
            f"| {'ok' if not r['problems'] else 'FAILED'} |")
    return "\n".join(lines)


def saturation(rows: list[dict]) -> tuple[str, list[str]]:
    """The claim service time c and the trial length below which W workers saturate the lock:
    each worker needs c of lock per cycle of T + c, so W workers saturate it when W*c >= T + c."""
    zero = [r for r in rows if r["mode"] == "claim" and r["seconds"] == 0] or [r for r in rows if r["seconds"] == 0]
    if not zero:
        return "", []
    zero = sorted(zero, key=lambda r: r["workers"])
    top = zero[-1]
    # c per claim at saturation: the lock's hold plus the hand-over to the next worker, i.e. 1 / claims/s of a
    # 0 s run; its floor is the holder's own CPU time, what a claim costs however fast the database answers.
    c_floor, c_top = top["hold_cpu_median"], 1 / top["claims_per_s"]
    headline = (f"**At 1,000 workers the claim lock saturates when a trial keeps its worker busy for less than "
                f"~{999 * c_floor / 60:.0f}-{999 * c_top / 60:.0f} minutes** (999 x c; c = {ms(c_floor)} ms per claim, "
                f"the claim's own CPU time, to {ms(c_top)} ms, measured with {top['workers']} workers on this busy "
                f"2-core machine: {top['claims_per_s']:.2f} claims/s)")
    bullets = [
        f"claim service time c, `{top['mode']}`, 0 s trials, "
        + " / ".join(f"{r['workers']}" for r in zero) + " workers: "
        + " / ".join(f"{r['claims_per_s']:.2f}" for r in zero) + " claims/s, so c = 1 / claims/s = "
        + " / ".join(ms(1 / r["claims_per_s"]) for r in zero) + " ms; median lock hold "
        + " / ".join(ms(r["hold_median"]) for r in zero) + " ms (the rest is the hand-over: unlock, then the next "
        "50 ms poll); the holder's own CPU " + " / ".join(ms(r["hold_cpu_median"]) for r in zero)
        + " ms (Python, SQLAlchemy, Optuna: the floor on this CPU however fast the database). c grows with W: more "
        "pollers load PostgreSQL and the shared cores",
        "W workers saturate the lock when a trial (its training plus its bookkeeping outside the lock) is shorter "
        f"than (W-1)*c; with c = {ms(c_floor)} ms (floor) to {ms(c_top)} ms ({top['workers']} workers here): "
        + ", ".join(f"{w:,} workers: {(w - 1) * c_floor:.0f}-{(w - 1) * c_top:.0f} s" for w in (8, 32, 64, 1000)),
    ]
    for r in rows:
        if r["mode"] == "claim":
            # T here is all the time a worker spends outside the lock per trial: the scripted sleep plus
            # the trial's bookkeeping (Optuna writes, the sampler, heartbeats), as measured.
            c, t = r["hold_median"], r["outside_median"]
            load = r["workers"] * c / (t + c)
            bullets.append(
                f"the formula against `claim` {r['workers']} workers x {r['seconds']:g} s: measured T = {t:.2f} s "
                f"outside the lock per trial, c = {ms(c)} ms, W*c/(T+c) = {load:.2f} "
                f"({'saturated' if load >= 1 else 'below saturation'}); measured: lock busy {r['busy']:.0%}, "
                f"median lock wait {ms(r['wait_median'])} ms (p95 {ms(r['wait_p95'])}), {r['claims_per_s']:.2f} claims/s")
    growth = top["hold_last_quarter"] / top["hold_first_quarter"] if top["hold_first_quarter"] else float("nan")
    bullets.append(f"{top['workers']} workers: median hold of the first quarter of claims {ms(top['hold_first_quarter'])} "
                   f"ms, of the last {ms(top['hold_last_quarter'])} ms ({growth:.2f}x while the study grew to "
                   f"{top['target']} trials); trials per worker {top['per_worker'][0]}-{top['per_worker'][-1]} (polling "
                   f"is not a queue: no order among waiters); after the last trial, {top['drain']:.0f} s passed "
                   f"before every worker had taken the lock once more to see the target reached")
    servers = {r["workers"]: r for r in rows if r["mode"] == "server" and r["seconds"] == 0}
    for workers, r in sorted(servers.items()):
        alone = next((x for x in zero if x["mode"] == "claim" and x["workers"] == workers), None)
        if alone is not None:
            bullets.append(
                f"with an `mlflow server` tracking every trial ({workers} workers, 0 s): {r['claims_per_s']:.2f} "
                f"claims/s vs {alone['claims_per_s']:.2f} without MLflow, lock hold {ms(r['hold_median'])} vs "
                f"{ms(alone['hold_median'])} ms: MLflow's writes happen outside the lock but take the same cores")
    return headline, bullets


ADVICE = """
**Reading the table.** *claims/s* = claims in the steady phase / its length (from the go to the end
of the last trial); *ideal W/T* is what W workers would claim if claiming cost nothing. *lock wait*
runs from asking for the lock to holding it, *lock hold* from holding it to letting it go: the
claim's service time c (fail stale trials, count finished + running trials, Optuna's own stale
check, create the trial, the equal-budget assignment; about 30 SQL statements, and three reads of
the study's trials). *lock busy* = time the lock was held / steady time: near 100% the lock is the
bottleneck. *polls per claim*: `pg_try_advisory_lock` attempts by the claiming worker (every 50 ms).
*CPU ms per claim*: all workers' CPU in the steady phase (polling and trial bookkeeping included)
and the PostgreSQL server's (its backends serve every poll), per claim. *drain*: from the last
trial's end until every worker has seen the target reached. *start-up*: workers started one after
another (fork, open the stores and the study under the lock, create their objective), timed apart.

**How this machine was used.** Everything runs on the same 2 cores: PostgreSQL, the MLflow server,
every worker, and other people's jobs (the load column). To stand in for workers on machines of
their own, a worker polls for the lock at nice 19 and runs at normal priority otherwise
(`--same-priority` turns this off): else the CPU that 63 waiting workers burn polling is taken from
the one that holds the lock, and c grows with W for a reason a real cluster does not have (an
earlier run that way, workers started together: 32 workers, 0 s trials, 5.9 s median hold, 0.17
claims/s; 64 workers had not finished 128 trials 10 minutes after they started). PostgreSQL runs at normal priority,
so the polls' cost to the database stays in the figures.

**Extrapolation to 1,000 workers.** A worker's cycle is T (its training, plus its MLflow and Optuna
writes outside the lock) plus c; W workers ask for W*c seconds of lock per cycle, so the lock
saturates when W*c >= T + c, for trials shorter than about (W-1)*c. Past that point claims/s stays
at 1/c at best and every extra worker only waits. On a dedicated database server c falls towards
its CPU floor above; three things push it up at 1,000 workers: the polls (each waiting worker runs
~20 `pg_try_advisory_lock` a second, each a pooled connection's check-out, the query and a commit:
1,000 waiting workers send ~20,000 lock queries a second plus their commits), the study's size
(three reads of the trials per claim; Optuna's cache keeps them incremental per process), and the
connections (a worker holds 2-3: the lock's session, the storage pool, the heartbeat thread, so
~3,000, far above PostgreSQL's default `max_connections` of 100; the session-level advisory lock
also rules out PgBouncer in transaction-pooling mode).

**Past it.** Keep trials well above (W-1)*c: longer trials (more epochs or data per trial) or fewer
workers per study (several studies side by side). Beyond a few hundred workers put Optuna's gRPC
storage proxy in front of the RDB (`optuna.storages.run_grpc_proxy_server(storage, host=..., port=...)`
on one machine, workers on `optuna.storages.GrpcStorageProxy(host=..., port=...)`): one process
holds the database connections and caches the study, so the database sees one client instead of
thousands. This project cannot use it yet: storage URLs are `sqlite`, `postgresql` or `mysql` only,
and `StudyLock` needs an RDB engine (any other storage gets no lock, and workers could overshoot
the target); supporting it means one direct database session per worker for the advisory lock
while Optuna's traffic goes through the proxy, or claiming inside the proxy. For tracking, run an
`mlflow server` with a PostgreSQL backend store, several `--workers`, and artifacts in an object
store (`--artifacts-destination s3://bucket/path`, or `--default-artifact-root s3://...
--no-serve-artifacts` so that workers upload directly), not a shared SQLite file, whose single
writer lock serialises every worker's writes.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="8,32,64", help="worker counts, comma-separated")
    parser.add_argument("--lengths", default="0,2,8", help="scripted trial lengths in seconds, comma-separated")
    parser.add_argument("--tracking", default="claim,server", help="claim (MLflow no-op), server (mlflow server), or both")
    parser.add_argument("--all-lengths", action="store_true",
                        help="every worker count with every length (default: lengths > 0 only with the fewest workers)")
    parser.add_argument("--server-workers", default="8", help="worker counts of the `server` runs")
    parser.add_argument("--server-lengths", default="0", help="trial lengths of the `server` runs")
    parser.add_argument("--per-worker", type=int, default=TRIALS_PER_WORKER, help="target trials per worker")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 and 8 workers, 0 and 0.5 s, claim mode")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--same-priority", action="store_true",
                        help="run waiting workers at the holder's priority (see the docstring)")
    parser.add_argument("--keep", help="keep each run's figures and its workers' raw timings (JSON) in this folder")
    parser.add_argument("--report", metavar="FOLDER", help="render the section again from a --keep folder; run nothing")
    args = parser.parse_args()
    if args.quick:
        args.workers, args.lengths, args.tracking = "4,8", "0,0.5", "claim"
    if not args.same_priority and os.geteuid() != 0:
        print("note: only root can give a worker its priority back after polling at nice 19; running --same-priority")
        args.same_priority = True
    modes = [m.strip() for m in args.tracking.split(",")]
    if set(modes) - {"claim", "server"}:
        raise SystemExit("--tracking: claim, server or claim,server")
    counts = {"claim": [int(w) for w in args.workers.split(",")], "server": [int(w) for w in args.server_workers.split(",")]}
    lengths = {"claim": [float(s) for s in args.lengths.split(",")],
               "server": [float(s) for s in args.server_lengths.split(",")]}
    # With 1 trial per worker, and below saturation, the length changes little but the run's time: by
    # default lengths > 0 run with the fewest workers only, where they show the lock going from saturated to not.
    plan = {mode: [(w, t) for w in counts[mode] for t in lengths[mode]
                   if t == 0 or w == min(counts[mode]) or args.all_lengths] for mode in modes}

    if args.report:
        folder = Path(args.report)
        session = json.loads((folder / "session.json").read_text())
        runs = sorted(((json.loads((run / "run.json").read_text()), run) for run in folder.glob("many-*")),
                      key=lambda pair: pair[0]["at"])
        rows = [summarise(run, [json.loads(path.read_text()) for path in where.glob("worker-*.json")])
                for run, where in runs]
    else:
        rows, session = run_all(args, plan)
    body = render(rows, session)
    print()
    print(body)
    if not (args.quick or args.no_record):
        print(f"\nwrote {write_section('many_workers', '6. Many workers: claiming trials on PostgreSQL', body)}")
    if any(r["problems"] for r in rows):
        raise SystemExit(1)


def run_all(args: argparse.Namespace, plan: dict[str, list[tuple[int, float]]]) -> tuple[list[dict], dict]:
    """Every planned run on one PostgreSQL server (and one MLflow server for `server` runs)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in ("RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI", "RNN_STUDY_THREADS", "RNN_STUDY_HEARTBEAT_SECONDS"):
        os.environ.pop(variable, None)
    started, load_start = time.monotonic(), load_average()
    print(f"importing study (TensorFlow included) once; workers are forked from here. Load average: {load_start}")
    # Imported before forking, so no worker pays for them.
    import optuna

    import study.search.sweep
    import study.store.tracking
    import study.search.trial  # noqa: F401
    from study.spec.sweep_file import load_sweep
    from study.train.data import load_task

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="many-workers-"))
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.yaml"
    template.write_text(textwrap.dedent(SWEEP.format(name="template", trials=1, epochs=EPOCHS)))
    load_task(load_sweep(template).config.task)  # cached per process: forked workers inherit the data
    warm = optuna.storages.RDBStorage(f"sqlite:///{folder}/warm.db")  # imports Optuna's RDB modules (alembic, ...)
    warm.engine.dispose()

    rows = []
    # Per worker: the lock's session, the storage pool, the heartbeat thread; plus the MLflow server's pool.
    most = max(w for runs in plan.values() for w, _ in runs)
    with postgres(max_connections=max(100, 4 * most + 50)) as new_database:
        for mode, runs in plan.items():
            with contextlib.ExitStack() as stack:
                server = None
                if mode == "server":
                    print("starting an mlflow server (PostgreSQL backend store) ...", flush=True)
                    server = stack.enter_context(mlflow_server(new_database("mlflow"), folder))
                for workers, seconds in runs:
                    row = run_once(new_database, server, workers, seconds, folder, args.per_worker,
                                   holder_first=not args.same_priority)
                    rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
                    for problem in row["problems"]:
                        print(f"  problem: {problem}", flush=True)
    session = {"machine": machine(), "load_start": load_start, "load_end": load_average(),
               "minutes": (time.monotonic() - started) / 60, "per_worker": args.per_worker,
               "same_priority": args.same_priority}
    if args.keep:
        (folder / "session.json").write_text(json.dumps(session))
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return rows, session


def render(rows: list[dict], session: dict) -> str:
    """The RESULTS.md section: headline, set-up, findings, table, and how to read and extend it."""
    headline, bullets = saturation(rows)
    failed = [r for r in rows if r["problems"]]
    server = any(r["mode"] == "server" for r in rows)
    checks = ("every run: exactly N trials finished, none RUNNING, trial numbers unique, each trial trained once "
              "by one worker" + ("; `server` runs: one MLflow run per trial, none RUNNING" if server else "")
              + (": **all passed**" if not failed else f": **{len(failed)} run(s) FAILED**"))
    return "\n".join([
        f"{headline}." if headline else "",
        "",
        (f"Machine: {session['machine']}. Load average at the start: {session['load_start']}, at the end: "
         f"{session['load_end']} (a shared machine: other people's jobs ran on the same 2 cores; the load column is "
         "the 1-minute average when each run's steady phase began)."),
        (f"PostgreSQL (pgserver binaries), default durability (fsync on), on the same machine; one fresh database per "
         f"run; N = {session['per_worker']} trial(s) per worker (at least {MIN_TRIALS}), {EPOCHS} epochs each, TPE "
         "with `budget: equal` over 3 cells. Tracking: `claim` = MLflow replaced by a no-op in the workers, `server` "
         "= an `mlflow server` (PostgreSQL backend store, proxied artifacts). Waiting workers polled at "
         f"{'the same priority' if session['same_priority'] else 'nice 19'}. Total {session['minutes']:.1f} min."),
        "Rerun: `.venv/bin/python benchmarks/many_workers.py` (`--quick` for a smoke run)",
        "",
        *[f"- {b}" for b in bullets],
        f"- checks: {checks}",
        "",
        table(rows),
        "",
        ADVICE.strip(),
    ])


if __name__ == "__main__":
    main()
