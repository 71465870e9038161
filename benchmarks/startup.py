"""Benchmark: `study sweep` start-up, from process start to its first trial (target: <= 3 s here).

The sweep is `benchmarks/sweeps/startup.yaml` (one tiny trial of one epoch on 8x8 digits). Each
run is the real command, `study sweep FILE`, in its own process, timed from just before it is
started to the `datetime_start` Optuna records for its first trial ("start-up"), and from its last
trial's `datetime_complete` to the process's exit ("exit"). Three cases, alternated:

- **fresh**: new, empty stores (Optuna creates its tables, MLflow runs its migrations);
- **existing**: the same stores again with one more trial (`--trials N+1`): the study is resumed;
- **--jobs 2** (fresh stores, 2 trials): start-up to the first trial of either worker and to the
  second worker's first trial.

Where the time goes comes from further runs of the same command under a probe (this file with
`--probe`: the command's own code, timers added from outside, nothing changed in `study`): each
import of TensorFlow/Keras, MLflow, Optuna, SQLAlchemy, scikit-learn, NumPy/pandas and the CLI's
libraries, and each call that opens the stores, loads the data or sets up the first trial, is timed
in wall and CPU seconds, each part without the parts nested in it; "other" is the rest of the main
thread's time (the command's own code, and waits). A part timed in a background thread is listed
apart: it overlaps the main thread's. A new MLflow store is a copy of an empty one made once per
machine (`study.store.mlflow_template.new_sqlite_store`); the first fresh store on a machine also makes that copy.

    .venv/bin/python benchmarks/startup.py                 # 3 repeats of each case (~3 min on 2 cores); writes RESULTS.md
    .venv/bin/python benchmarks/startup.py --repeats 5 --no-record
    git worktree add /tmp/before <commit> && .venv/bin/python benchmarks/startup.py --before /tmp/before   # and an earlier `study`
    .venv/bin/python benchmarks/startup.py --quick         # smoke run: 1 repeat, no --jobs 2, no record
"""

from __future__ import annotations

# Only the standard library up here: in `--probe` mode this module runs inside the timed process,
# before the command's own imports.
import json
import sys
import threading
import time
from pathlib import Path

TARGET = 3.0
HERE = Path(__file__).resolve().parent
SWEEP_FILE = HERE / "sweeps" / "startup.yaml"

# --------------------------------------------------------------------------- the probe (in the timed process)

CLI_LIBRARIES = "import typer, rich, click, pydantic, yaml"
TENSORFLOW = "import TensorFlow + Keras"
# What an import is counted as, by the first part of its dotted name.
IMPORT_PARTS = {
    "tensorflow": TENSORFLOW, "keras": TENSORFLOW, "mlflow": "import MLflow", "optuna": "import Optuna",
    "sqlalchemy": "import SQLAlchemy, alembic", "alembic": "import SQLAlchemy, alembic",
    "sklearn": "import scikit-learn, SciPy", "scipy": "import scikit-learn, SciPy",
    "numpy": "import NumPy, pandas", "pandas": "import NumPy, pandas",
    "typer": CLI_LIBRARIES, "rich": CLI_LIBRARIES, "click": CLI_LIBRARIES, "pydantic": CLI_LIBRARIES,
    "yaml": CLI_LIBRARIES, "study": "import study's own modules",
}
MLFLOW_CALLS = "MLflow: experiment, parent run, runs left open"
# Calls timed: module -> {attribute: part}, patched into the module as soon as it has executed, so
# modules that import the name from it get the timed one.
CALL_PARTS = {
    "study.spec.sweep_file": {"load_sweep": "read and check the sweep file"},
    "study.store.locations": {"open_storage": "open/create the Optuna storage", "check_writable": "check the stores",
                     "check_tracking_reachable": "check the stores"},
    "mlflow.store.tracking.sqlalchemy_store": {"SqlAlchemyStore.__init__": "open/create the MLflow store (migrations)"},
    "study.store.tracking": {"tracked_trial_numbers": MLFLOW_CALLS, "SweepTracker.__init__": MLFLOW_CALLS,
                       "SweepTracker.open_parent": MLFLOW_CALLS, "SweepTracker.close_orphaned_trial_runs": MLFLOW_CALLS,
                       "SweepTracker.close_dead_retrain_runs": MLFLOW_CALLS},
    "study.train.data": {"load_task": "load the data"},
    "study.search.sweep": {"_open_study": "Optuna: create or load the study", "package_versions": "package versions"},
    "study.search.checks": {"check_model_size": "check the model size"},
    "study.search.trial": {"Objective.__init__": "set up the objective", "configure_threads": "set up the objective"},
}
INTERPRETER = "Python interpreter start-up"
OTHER = "other (the command's own code, waits)"


class Probe:
    """Timed parts on per-thread stacks: each part's wall and CPU time without its nested parts."""

    def __init__(self):
        self.parts: dict[tuple[str, str], list[float]] = {}  # (thread, part) -> [wall, cpu]
        self.local = threading.local()
        self.lock = threading.Lock()

    def enter(self, part: str) -> None:
        self.local.__dict__.setdefault("stack", []).append([part, time.perf_counter(), time.thread_time(), 0.0, 0.0])

    def leave(self) -> None:
        stack = self.local.stack
        part, wall0, cpu0, nested_wall, nested_cpu = stack.pop()
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        thread = "main" if threading.current_thread() is threading.main_thread() else "background"
        with self.lock:
            totals = self.parts.setdefault((thread, part), [0.0, 0.0])
            totals[0] += wall - nested_wall
            totals[1] += cpu - nested_cpu
        if stack:
            stack[-1][3] += wall
            stack[-1][4] += cpu

    def timed(self, function, part: str):
        def timed_call(*args, **kwargs):
            self.enter(part)
            try:
                return function(*args, **kwargs)
            finally:
                self.leave()

        for name in ("__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"):
            if hasattr(function, name):
                setattr(timed_call, name, getattr(function, name))
        return timed_call


class TimedImports:
    """A meta path finder that finds nothing itself: it wraps the loader the other finders return,
    to time the module's execution and patch CALL_PARTS into it."""

    def __init__(self, probe: Probe, patch_more):
        self.probe, self.patch_more = probe, patch_more

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top not in IMPORT_PARTS and fullname not in CALL_PARTS:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute, probe, part = spec.loader.exec_module, self.probe, IMPORT_PARTS.get(top, "import other modules")

        def exec_module(module):
            probe.enter(part)
            try:
                execute(module)
            finally:
                probe.leave()
            for attribute, called in CALL_PARTS.get(fullname, {}).items():
                owner, _, name = attribute.rpartition(".")
                holder = getattr(module, owner) if owner else module
                setattr(holder, name, probe.timed(getattr(holder, name), called))
            self.patch_more(fullname, module)

        spec.loader.exec_module = exec_module  # an attribute of this module's own loader object
        return spec


def run_probed(started: float, out: str, argv: list[str]) -> None:
    """Run `study ARGV` in this process with the probe; at its first trial, write the parts to `out`."""
    probe_started = time.time()
    probe = Probe()
    written = []

    def patch_more(fullname: str, module) -> None:
        if fullname != "study.search.trial":
            return
        call = module.Objective.__call__

        def first_trial_noted(objective, trial):
            if not written:
                written.append(time.time())
                parts = [{"thread": thread, "part": part, "wall": wall, "cpu": cpu}
                         for (thread, part), (wall, cpu) in probe.parts.items()]
                Path(out).write_text(json.dumps({
                    "started": started, "probe_started": probe_started, "first_trial": written[0],
                    "process_cpu": time.process_time(), "parts": parts,
                }))
            return call(objective, trial)

        module.Objective.__call__ = first_trial_noted

    sys.meta_path.insert(0, TimedImports(probe, patch_more))
    sys.argv = ["study", *argv]
    from study.app.cli import main  # under the probe: its imports are timed too

    main()


def probed_breakdown(record: dict) -> dict[str, tuple[float, float]]:
    """One probed run's parts: part -> (wall, cpu); main-thread parts plus interpreter and other
    add up to the start-up; background parts are prefixed "background: "."""
    parts: dict[str, tuple[float, float]] = {}
    main_wall = 0.0
    for row in record["parts"]:
        name = row["part"] if row["thread"] == "main" else f"background: {row['part']}"
        wall, cpu = parts.get(name, (0.0, 0.0))
        parts[name] = (wall + row["wall"], cpu + row["cpu"])
        if row["thread"] == "main":
            main_wall += row["wall"]
    interpreter = record["probe_started"] - record["started"]
    parts[INTERPRETER] = (interpreter, float("nan"))
    parts[OTHER] = (record["first_trial"] - record["probe_started"] - main_wall, float("nan"))
    parts["total"] = (record["first_trial"] - record["started"], record["process_cpu"])
    return parts


# --------------------------------------------------------------------------- the benchmark


def study_command(sweep: Path, folder: Path, extra: list[str]) -> list[str]:
    return ["sweep", str(sweep), "--storage", f"sqlite:///{folder}/optuna.db",
            "--tracking-uri", f"sqlite:///{folder}/mlflow.db", *extra]


def run_case(sweep: Path, folder: Path, extra: list[str], probe_out: Path | None = None, code: str | None = None) -> dict:
    """One `study sweep` run: seconds to its first trial (and the second), from its last trial to exit.
    `code`: a checkout whose `study` package runs instead of this one's (PYTHONPATH)."""
    import os
    import subprocess

    import optuna

    env = {k: v for k, v in os.environ.items() if k not in ("RNN_STUDY_THREADS", "RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI")}
    if code:
        env["PYTHONPATH"] = code
    args = study_command(sweep, folder, extra)
    if probe_out is None:
        command = [str(Path(sys.executable).with_name("study")), *args]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--probe", str(probe_out), "STARTED", "--", *args]
    storage = f"sqlite:///{folder}/optuna.db"
    before = set()
    if (folder / "optuna.db").exists():
        before = {t.number for t in optuna.load_study(study_name="startup", storage=storage).trials}
    started = time.time()
    if probe_out is not None:
        command[command.index("STARTED")] = repr(started)
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE.parent)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    trials = [t for t in optuna.load_study(study_name="startup", storage=storage).trials if t.number not in before]
    starts = sorted(t.datetime_start.timestamp() for t in trials)
    return {"first": starts[0] - started, "second": starts[1] - started if len(starts) > 1 else None,
            "exit": ended - max(t.datetime_complete.timestamp() for t in trials), "wall": ended - started}


def main() -> None:
    import argparse
    import os
    import statistics
    import tempfile

    import yaml
    from results_file import load_average, machine, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case, alternated")
    parser.add_argument("--no-jobs", action="store_true", help="leave out the --jobs 2 case")
    parser.add_argument("--before", metavar="CHECKOUT", help="also time the same cases with the `study` package of "
                        "another checkout (e.g. a `git worktree` of an earlier commit), alternated with this one")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, no --jobs 2, no record")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.no_jobs, args.no_record = 1, True, True
    folder = Path(tempfile.mkdtemp(prefix="startup-benchmark-"))
    trials = yaml.safe_load(SWEEP_FILE.read_text())["trials"]
    load_start = os.getloadavg()[0]

    cases = ["fresh", "existing"] + ([] if args.no_jobs else ["--jobs 2"])
    timings: dict[str, list[dict]] = {case: [] for case in cases}
    before: dict[str, list[dict]] = {case: [] for case in cases}
    probed: dict[str, list[dict]] = {"fresh": [], "existing": []}
    runs = ["plain", "probe"] + (["before"] if args.before else [])
    for repeat in range(args.repeats):
        for run in runs if repeat % 2 == 0 else runs[::-1]:
            stores = folder / f"{repeat}-{run}"
            for case in cases:
                if run == "probe" and case == "--jobs 2":
                    continue
                extra = {"fresh": [], "existing": ["--trials", str(trials + 1)],
                         "--jobs 2": ["--jobs", "2", "--trials", "2"]}[case]
                where = stores / "jobs" if case == "--jobs 2" else stores
                out = folder / f"{repeat}-{case}.json" if run == "probe" else None
                result = run_case(SWEEP_FILE, where, extra, out, code=args.before if run == "before" else None)
                if run == "probe":
                    probed[case].append(probed_breakdown(json.loads(out.read_text())))
                    continue
                (before if run == "before" else timings)[case].append(result)
                second = f", second worker's first trial {result['second']:.1f} s" if result["second"] else ""
                print(f"run {repeat + 1} {case:>9}{' (before)' if run == 'before' else ''}: first trial "
                      f"{result['first']:.2f} s after start{second}; exit {result['exit']:.2f} s after the last trial",
                      flush=True)

    median = statistics.median
    lines = []
    for case in cases:
        first = median(r["first"] for r in timings[case])
        extra = ""
        if case == "--jobs 2":
            extra = f", second worker's first trial {median(r['second'] for r in timings[case]):.2f} s"
        lines.append(f"{case}: start-up (process start to first trial) median {first:.2f} s{extra}; exit after "
                     f"the last trial {median(r['exit'] for r in timings[case]):.2f} s")
    if args.before:
        for case in cases:
            lines.append(f"{case}, the `study` of {args.before}: start-up median {median(r['first'] for r in before[case]):.2f} s"
                         + (f", second worker's first trial {median(r['second'] for r in before[case]):.2f} s"
                            if case == "--jobs 2" else "")
                         + f"; exit after the last trial {median(r['exit'] for r in before[case]):.2f} s")
    headline = median(r["first"] for r in timings["fresh"])
    verdict = "met" if headline <= TARGET else "missed"
    table = ["| part | fresh: wall s | fresh: CPU s | existing: wall s | existing: CPU s |", "|---|---|---|---|---|"]
    names = sorted({name for runs in probed.values() for run in runs for name in run},
                   key=lambda name: (name == "total", name.startswith("background"), name in (INTERPRETER, OTHER),
                                     -median(run.get(name, (0.0, 0.0))[0] for run in probed["fresh"])))
    for name in names:
        cells = []
        for case in ("fresh", "existing"):
            for index in (0, 1):
                values = [run[name][index] for run in probed[case] if name in run]
                value = median(values) if values else float("nan")
                cells.append("" if value != value else f"{value:.2f}")
        bold = "**" if name == "total" else ""
        table.append(f"| {bold}{name}{bold} | " + " | ".join(cells) + " |")
    print("\n" + "\n".join(lines))
    print(f"start-up, fresh stores: median {headline:.2f} s (target <= {TARGET:.0f} s: {verdict})\n")
    print("where the time goes (probed runs, medians):\n" + "\n".join(table))
    if args.no_record:
        return
    body = f"""
**`study sweep` start-up, process start to first trial, fresh stores: {headline:.2f} s** (target <= {TARGET:.0f} s: {verdict}).

Machine: {machine()}. Load average (1 min) at the start {load_start:.1f}, at the end: {load_average()}.
Sweep: `benchmarks/sweeps/startup.yaml` (one 1-epoch SimpleRNN-8 trial on 8x8 digits); each run the
whole `study sweep` command; {args.repeats} runs of each case, alternated, medians.
Rerun: `.venv/bin/python benchmarks/startup.py`

{chr(10).join('- ' + line for line in lines)}

Where the time goes (further runs under the probe, medians per part; each part without the parts
nested in it, so the main thread's parts, interpreter start and "other" add up to the total;
CPU is the thread's, the total's is the whole process's):

{chr(10).join(table)}
"""
    print(f"wrote {write_section('startup', '3b. Start-up: process start to first trial', body)}")


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--probe" and sys.argv[4] == "--":
        run_probed(float(sys.argv[3]), sys.argv[2], sys.argv[5:])
    else:
        main()
