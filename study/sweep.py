"""Sweeps: run or resume an Optuna study from a sweep file, and read studies back as DataFrames.

This is the only module that talks to Optuna storage. A sweep is one Optuna study named after the
sweep file's `name`; re-running the same file resumes it until `trials` trials have finished
(COMPLETE or PRUNED; failed trials are recorded and replaced). The study remembers a fingerprint
of the sweep definition, so a changed search space is refused instead of silently mixed.

Any number of processes, on one machine or many, may run the same sweep at once (`study sweep
--jobs N`, `study worker`): they share the study through its storage. A `StudyLock` (a file lock
beside a SQLite file, an advisory lock in PostgreSQL or MySQL) serialises the two moments that
must not race: creating the study and its MLflow runs, and claiming the next trial, so that
workers stop at exactly `trials` finished trials. Running trials send Optuna heartbeats; a trial
whose process died (kill -9, a lost machine) is failed once its heartbeat is older than the grace
period, and its MLflow run is closed as KILLED.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import numpy as np
import optuna
import pandas as pd
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from study.config import STORAGE_SCHEMES, TRACKING_SCHEMES, ConfigError, Sweep, SweepConfig, check_uri, parse_config
from study.tracking import DEFAULT_TRACKING_URI, prepare_local_store, sqlite_path

DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
STORAGE_ENV = "RNN_STUDY_STORAGE"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
HEARTBEAT_ENV = "RNN_STUDY_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 20  # a trial whose process died is failed after 3 x this without a heartbeat
CONNECT_TIMEOUT_SECONDS = 10  # an unreachable database server fails fast instead of hanging
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A failed trial without a recorded reason was failed for want of heartbeats: its process died.
DIED = "its process stopped (killed, or its machine lost) before the trial ended"

# Our own messages say what failed; Optuna's per-trial INFO/WARNING lines would repeat them.
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class StudyNotFound(LookupError):
    """A study name that the storage does not hold."""


class StoreError(ConfigError):
    """A storage or tracking URL that cannot be used: unreachable, read-only, or without its driver."""


@dataclass
class SweepResult:
    study_name: str
    storage: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    target: int
    started: int  # trials started by this call
    counts: dict[str, int]
    stopped_reason: str | None
    trials: pd.DataFrame = field(repr=False)
    best: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def reached_target(self) -> bool:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0) >= self.target


# --------------------------------------------------------------------------- stores


def resolve_storage(flag: str | None = None, config: SweepConfig | None = None) -> str:
    """Flag, then environment, then sweep file, then the embedded default."""
    url = flag or os.environ.get(STORAGE_ENV) or (config.storage if config else None) or DEFAULT_STORAGE
    try:
        return check_uri(url, STORAGE_SCHEMES, "storage")
    except ValueError as err:
        raise ConfigError(redact(str(err), url)) from None


def resolve_tracking_uri(flag: str | None = None, config: SweepConfig | None = None) -> str:
    uri = flag or os.environ.get(TRACKING_ENV) or (config.tracking_uri if config else None) or DEFAULT_TRACKING_URI
    try:
        return check_uri(uri, TRACKING_SCHEMES, "tracking URI")
    except ValueError as err:
        raise ConfigError(redact(str(err), uri)) from None


def heartbeat_seconds() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds; `RNN_STUDY_HEARTBEAT_SECONDS` sets the interval.

    A running trial records a heartbeat every interval; one silent for the grace period (three
    intervals) is taken for dead and failed. Short intervals find dead workers sooner; long ones
    tolerate a machine that stalls (swapping, a suspended laptop) without failing its trial.
    """
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS, 3 * DEFAULT_HEARTBEAT_SECONDS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{HEARTBEAT_ENV}={raw!r}: use a whole number of seconds, at least 1")
    return int(raw), 3 * int(raw)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several local workers write one SQLite file: wait for its lock instead of failing at
        # once with "database is locked" (Python's sqlite3 gives up after 5 s by default).
        return {"connect_args": {"timeout": 60}}
    if url.startswith(("postgresql", "mysql")):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    return {}


def open_storage(url: str, create: bool = True, on_stale_trial=None) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, so trials of a killed process end as FAIL.

    `on_stale_trial(study, trial)` is called for each trial this process fails for want of
    heartbeats. Raises StoreError (one line, password masked) when the storage cannot be used.
    """
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise StudyNotFound(f"no study storage at {path} (run `study sweep <file>` first, or pass --storage)")
    if create:
        check_writable(url, "storage")
        try:
            prepare_local_store(url)
        except OSError as err:  # e.g. a folder that cannot hold files (/proc, a broken mount)
            raise StoreError(store_problem("storage", url, err)) from None
    interval, grace = heartbeat_seconds()
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeats are "experimental" in Optuna's terms
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=interval, grace_period=grace,
                    heartbeat_stale_trial_callback=on_stale_trial,
                )
            break
        except (ImportError, sqlalchemy.exc.SQLAlchemyError, OSError, ValueError, RuntimeError) as err:
            # Workers that start together on an empty database race to create Optuna's tables;
            # the loser sees "already exists" and finds them there when it tries again.
            racing = isinstance(err, sqlalchemy.exc.IntegrityError) or "already exists" in str(err)
            if not racing or attempt == 4:
                raise StoreError(store_problem("storage", url, err)) from None
            time.sleep(0.5 * (attempt + 1))
    if path is not None and str(path) != ":memory:":
        # WAL lets the workers' reads (samplers, progress) go on while one of them writes.
        with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError), storage.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    return storage


def store_problem(what: str, url: str, err: BaseException) -> str:
    """One line saying why a store cannot be used, with any password in the URL masked."""
    shown = mask_password(url)
    if isinstance(err, ImportError) or isinstance(getattr(err, "orig", None), ImportError) \
            or "No module named" in str(err) or "Failed to import DB access module" in str(err):
        scheme = url.split("://", 1)[0]
        hint = {
            "postgresql": "pip install 'psycopg[binary]' (or: pip install -e '.[postgres]')",
            "mysql": "pip install pymysql and write the URL as mysql+pymysql://...",
        }.get(scheme.split("+", 1)[0], "install the database driver this URL names")
        return f"{what} {shown}: the database driver is not installed; {hint}"
    cause = getattr(err, "orig", None) or err
    text = " ".join(str(cause).split("(Background on this error")[0].split())
    if "readonly database" in text or "read-only" in text:
        text += " (the store is read-only: make it writable or choose another store)"
    return redact(f"cannot use {what} {shown}: {text or type(cause).__name__}", url)


def check_writable(url: str, what: str) -> None:
    """Refuse a local SQLite store that cannot be written, before anything is trained or written."""
    path = sqlite_path(url)
    if path is None or str(path) in ("", ":memory:"):
        return
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    hint = f"make it writable, or pass --{'storage' if what == 'storage' else 'tracking-uri'} with another location"
    if not existing.is_dir():
        raise StoreError(f"{what} {url}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(f"{what} {url}: the folder {existing}/ is read-only; {hint}")
    if path.exists() and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
        raise StoreError(f"{what} {url}: {path} is not a writable file; {hint}")


def check_tracking_reachable(uri: str) -> None:
    """Fail in seconds, with one line, when the MLflow tracking server or database is not there.

    MLflow itself retries an unreachable server for minutes before it gives up.
    """
    scheme = uri.split("://", 1)[0].split("+", 1)[0]
    if scheme == "sqlite":
        check_writable(uri, "tracking URI")
    elif scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(uri)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        probe = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
        try:
            with urllib.request.urlopen(probe, timeout=CONNECT_TIMEOUT_SECONDS):  # noqa: S310 - http(s) only
                pass
        except urllib.error.HTTPError:
            pass  # something answers (a proxy, an older server without /health): let MLflow talk to it
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(redact(
                f"cannot reach the MLflow tracking server at {mask_password(uri)}: {reason}; start it "
                "(e.g. mlflow server --host 127.0.0.1 --port 5000) or pass another --tracking-uri", uri,
            )) from None
    elif scheme in ("postgresql", "mysql"):
        try:
            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
            with engine.connect():
                pass
            engine.dispose()
        except (ImportError, sqlalchemy.exc.SQLAlchemyError, OSError, ValueError) as err:
            raise StoreError(store_problem("tracking URI", uri, err)) from None


class StudyLock:
    """A lock held by one process at a time among all those that use `study_name` in `url`.

    SQLite: an exclusive `flock` on a file beside the database (local processes only, as SQLite
    itself). PostgreSQL: a session advisory lock; MySQL: GET_LOCK. A lock of a process that dies
    is released with it (the file closes, the database session ends). Other storages get no lock.
    `release()` may be called early and again.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, url: str, study_name: str, timeout: float = 600):
        self.storage, self.url, self.study_name, self.timeout = storage, url, study_name, timeout
        self.key = int.from_bytes(hashlib.sha256(f"rnn-study:{study_name}".encode()).digest()[:8], "big", signed=True)
        self._release = None

    def acquire(self) -> StudyLock:
        deadline = time.monotonic() + self.timeout
        while not self._try():
            if time.monotonic() > deadline:
                raise StoreError(
                    f"waited {self.timeout:.0f} s for the lock of study {self.study_name!r} in "
                    f"{mask_password(self.url)}; is a worker stuck?"
                )
            time.sleep(0.05)
        return self

    def _try(self) -> bool:
        dialect = self.url.split("://", 1)[0].split("+", 1)[0]
        path = sqlite_path(self.url)
        if path is not None:
            if str(path) in ("", ":memory:"):
                self._release = lambda: None
                return True
            import fcntl

            handle = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open while locked
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._release = handle.close  # closing the file drops the lock
            return True
        if dialect not in ("postgresql", "mysql"):
            self._release = lambda: None
            return True
        take, give = (
            ("SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)") if dialect == "postgresql"
            else ("SELECT GET_LOCK(:name, 0)", "SELECT RELEASE_LOCK(:name)")
        )
        arguments = {"key": self.key, "name": f"rnn-study-{self.key}"}
        connection = self.storage.engine.connect()
        try:
            taken = bool(connection.execute(sqlalchemy.text(take), arguments).scalar())
            connection.commit()
        except BaseException:
            connection.invalidate()
            connection.close()
            raise
        if not taken:
            connection.close()
            return False

        def release() -> None:
            # Session-level locks outlive transactions: unlock before the connection returns to the pool.
            try:
                connection.execute(sqlalchemy.text(give), arguments)
                connection.commit()
            except BaseException:
                connection.invalidate()  # a dropped session has lost its lock anyway
            finally:
                connection.close()

        self._release = release
        return True

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def make_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    """The sweep's sampler, safe to run in many processes at once.

    A seeded Optuna sampler draws from one random stream per process, so workers started with the
    same seed would draw the same configurations. Here random and TPE draws are seeded per trial
    instead (see `PerTrialSampler`); the grid picks its point when the trial is created, under the
    study lock, skipping points other workers are running; QMC numbers its points in the storage.
    """
    if config.sampler == "grid":
        grid = {name: hp.grid_values() for name, hp in config.searched.items()}
        return optuna.samplers.GridSampler(grid, seed=config.seed)
    if config.uses_equal_budget:
        values = {name: config.hyperparameters[name].grid_values() for name in config.scientific}
        return EqualBudgetSampler(values, lambda key: _keyed_sampler(config, key))
    return PerTrialSampler(lambda key: _keyed_sampler(config, key))


def sampler_seed(sweep_seed: int, key: int) -> int:
    """The seed of draw number `key` (kept apart from the training seeds by its own spawn key)."""
    return int(np.random.SeedSequence(sweep_seed, spawn_key=(1, key)).generate_state(1)[0])


def _keyed_sampler(config: SweepConfig, key: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler of the sweep's kind for draw number `key`."""
    if config.sampler == "qmc":
        # One low-discrepancy sequence per study: its points are numbered in the storage, so every
        # draw uses the sweep's seed and the next free number.
        return optuna.samplers.QMCSampler(seed=config.seed)
    seed = sampler_seed(config.seed, key)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


class PerTrialSampler(optuna.samplers.BaseSampler):
    """Draws each trial with a fresh sampler seeded from (sweep seed, trial number).

    Trial k gets the same configuration whichever worker runs it (for TPE: given the same finished
    trials), and no two trials share a random stream, so parallel workers never repeat each other.
    """

    def __init__(self, make_sampler: Callable[[int], optuna.samplers.BaseSampler]):
        self.make_sampler = make_sampler
        self._samplers: dict[int, optuna.samplers.BaseSampler] = {}  # trial id -> its sampler

    def _sampler(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if trial._trial_id not in self._samplers:
            self._samplers[trial._trial_id] = self.make_sampler(trial.number)
        return self._samplers[trial._trial_id]

    def before_trial(self, study, trial):
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial._trial_id, None)


EQUAL_BUDGET_ATTR = "equal_budget"  # trial system attribute: {"value": [scientific values], "index": k}


class EqualBudgetSampler(optuna.samplers.BaseSampler):
    """Gives every value of the scientific hyperparameters the same number of trials, and tunes
    each value's nuisance hyperparameters with its own sampler (same kind, same seeds).

    An adaptive sampler left alone spends most of a budget on whichever cell leads early, and its
    model of a good learning rate mixes all cells. Here each new trial is assigned the scientific
    value with the fewest trials so far (failed ones are replaced), and its nuisance values come
    from a sampler that only sees that value's trials. The k-th trial of every value is drawn with
    the same seed, so the values' random draws are identical: a paired design.

    The assignment is made when the trial is created (under the study lock) and stored on the
    trial, so workers that create trials one after the other see each other's assignments.
    """

    def __init__(self, values: dict[str, list[Any]], make_sampler: Callable[[int], optuna.samplers.BaseSampler]):
        self.names = list(values)
        self.combos = [tuple(combo) for combo in itertools.product(*values.values())]
        self.make_sampler = make_sampler
        self._trials: dict[int, tuple[tuple, optuna.samplers.BaseSampler]] = {}  # trial id -> value, sampler

    def before_trial(self, study, trial):
        combo, sampler = self._assigned(study, trial)
        sampler.before_trial(_TrialsOfValue(study, self.names, combo), trial)

    def infer_relative_search_space(self, study, trial):
        combo, sampler = self._assigned(study, trial)
        space = sampler.infer_relative_search_space(_TrialsOfValue(study, self.names, combo), trial)
        return {name: dist for name, dist in space.items() if name not in self.names}

    def sample_relative(self, study, trial, search_space):
        combo, sampler = self._assigned(study, trial)
        return sampler.sample_relative(_TrialsOfValue(study, self.names, combo), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        combo, sampler = self._assigned(study, trial)
        if param_name in self.names:
            return combo[self.names.index(param_name)]
        return sampler.sample_independent(_TrialsOfValue(study, self.names, combo), trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        combo, sampler = self._assigned(study, trial)
        sampler.after_trial(_TrialsOfValue(study, self.names, combo), trial, state, values)
        self._trials.pop(trial._trial_id, None)

    def _assigned(self, study, trial: FrozenTrial) -> tuple[tuple, optuna.samplers.BaseSampler]:
        if trial._trial_id not in self._trials:
            recorded = trial.system_attrs.get(EQUAL_BUDGET_ATTR)  # first seen in before_trial: read fresh
            if recorded is None:
                recorded = self._assign(study, trial)
                study._storage.set_trial_system_attr(trial._trial_id, EQUAL_BUDGET_ATTR, recorded)
            self._trials[trial._trial_id] = (tuple(recorded["value"]), self.make_sampler(recorded["index"]))
        return self._trials[trial._trial_id]

    def _assign(self, study, trial: FrozenTrial) -> dict[str, Any]:
        # From the storage, not `study`: a Hyperband pruner hands samplers a view of one bracket.
        others = [t for t in study._storage.get_all_trials(study._study_id, deepcopy=False) if t.number != trial.number]
        fixed = trial.system_attrs.get("fixed_params", {})  # an enqueued configuration
        if all(name in fixed for name in self.names):
            combo = tuple(fixed[name] for name in self.names)
        else:
            counts = collections.Counter(
                scientific_value(t, self.names) for t in others
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            )
            combo = min(self.combos, key=lambda c: (counts[c], self.combos.index(c)))
        # Draw number k of this value: every earlier trial of it counts, failed ones included, so a
        # replacement gets a new draw rather than the one that failed.
        index = sum(1 for t in others if t.number < trial.number and scientific_value(t, self.names) == combo)
        return {"value": list(combo), "index": index}


def scientific_value(trial: FrozenTrial, names: list[str]) -> tuple:
    """The scientific values of a trial: as assigned when it was created, else from its params."""
    recorded = trial.system_attrs.get(EQUAL_BUDGET_ATTR)
    if recorded is not None:
        return tuple(recorded["value"])
    return tuple(trial.params.get(name) for name in names)


class _TrialsOfValue:
    """A read-only view of a study that shows a sampler only the trials of one scientific value."""

    def __init__(self, study: optuna.Study, names: list[str], combo: tuple):
        self._study, self._names, self._combo = study, names, combo

    def __getattr__(self, attribute):
        return getattr(self._study, attribute)

    def _matches(self, trial: FrozenTrial) -> bool:
        return scientific_value(trial, self._names) == self._combo

    def get_trials(self, deepcopy=True, states=None):
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if self._matches(t)]

    def _get_trials(self, deepcopy=True, states=None, use_cache=False):
        return [t for t in self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
                if self._matches(t)]

    @property
    def trials(self):
        return self.get_trials()


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    """The sweep's pruner; steps are epochs (counted from 1), so warm-up counts epochs too."""
    pruner = config.pruner
    if pruner.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs)
    if pruner.name == "percentile":
        return optuna.pruners.PercentilePruner(
            pruner.percentile, n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs,
        )
    if pruner.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, pruner.warmup_epochs))
    if pruner.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, pruner.warmup_epochs), max_resource=config.epochs)
    return optuna.pruners.NopPruner()


def _open_study(config: SweepConfig, storage: optuna.storages.BaseStorage, storage_url: str) -> optuna.Study:
    """Create the study, or load it after checking it was made from the same sweep definition."""
    fingerprint = config.study_fingerprint()
    if config.name in optuna.get_all_study_names(storage):
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        )
        recorded = study.user_attrs.get("fingerprint")
        if recorded is None and not study.trials:
            _describe_study(study, config)  # created by a process that stopped before describing it
            return study
        if recorded != fingerprint:
            changed = _changed_fields(json.loads(study.user_attrs.get("config", "{}")), config)
            raise ConfigError(
                f"study {config.name!r} in {mask_password(storage_url)} was created from a different sweep "
                f"definition (changed: {', '.join(changed) or 'unknown'}); give the sweep a new `name` "
                "to start a new study, or restore the original values to resume it"
            )
        return study
    study = optuna.create_study(
        study_name=config.name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config),
        direction=config.objective.direction,
    )
    _describe_study(study, config)
    return study


def _describe_study(study: optuna.Study, config: SweepConfig) -> None:
    study.set_user_attr("fingerprint", config.study_fingerprint())
    study.set_user_attr("config", json.dumps(masked_config(config)))
    study.set_user_attr("task", config.task.name)
    study.set_user_attr("metric", config.objective.metric)
    study.set_user_attr("scientific", config.scientific)


def masked_config(config: SweepConfig) -> dict[str, Any]:
    """The resolved config as plain data, with passwords in its store URLs masked (for tags and attrs)."""
    data = json.loads(config.model_dump_json())
    for key in ("storage", "tracking_uri"):
        if data.get(key):
            data[key] = mask_password(data[key])
    return data


def _changed_fields(recorded: dict[str, Any], config: SweepConfig) -> list[str]:
    current = json.loads(config.model_dump_json())
    ignored = {"trials", "storage", "tracking_uri", "max_consecutive_failures", "description", "log_models"}
    return [key for key in current if key not in ignored and recorded.get(key) != current[key]]


def mask_password(url: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`, for messages and tags.

    A password given as a query parameter (`?password=secret`) is masked too.
    """
    url = re.sub(r"(?i)([?&](?:password|passwd|pwd)=)[^&]*", r"\1***", url)
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def redact(text: str, url: str) -> str:
    """`text` with the password of `url` (if any) replaced by ***, wherever a library echoed it."""
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    found = re.findall(r"(?i)[?&](?:password|passwd|pwd)=([^&]*)", url)
    text = text.replace(url, mask_password(url))
    for secret in filter(None, [password, *found]):
        text = text.replace(secret, "***").replace(urllib.parse.unquote(secret), "***")
    return text


# --------------------------------------------------------------------------- running


def package_versions() -> dict[str, str]:
    versions = {}
    for package in ("rnn-study", "tensorflow", "tensorflow-cpu", "keras", "optuna", "mlflow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class _FailureStreak:
    """Stops the study after `limit` failed trials in a row (a broken setup, not bad luck)."""

    def __init__(self, limit: int):
        self.limit, self.streak, self.reasons = limit, 0, []
        self.stopped_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.FAIL:
            self.streak, self.reasons = 0, []
            return
        self.streak += 1
        self.reasons.append(trial.user_attrs.get("fail_reason", "unknown error"))
        if self.streak >= self.limit:
            self.stopped_reason = (
                f"stopped after {self.streak} failed trials in a row (max_consecutive_failures); "
                f"last error: {self.reasons[-1]}"
            )
            study.stop()


@dataclass
class OpenSweep:
    """A sweep opened by this process: its study (created or resumed), its MLflow runs and target."""

    sweep: Sweep
    target: int
    storage_url: str
    tracking_uri: str
    storage: optuna.storages.RDBStorage
    study: optuna.Study
    tracker: Any  # study.tracking.SweepTracker
    versions: dict[str, str]
    notes: list[str]
    stale: list[int] = field(default_factory=list)  # trials this process failed for want of heartbeats

    @property
    def config(self) -> SweepConfig:
        return self.sweep.config

    def lock(self) -> StudyLock:
        return StudyLock(self.storage, self.storage_url, self.config.name)

    def finished_and_running(self) -> tuple[int, int]:
        trials = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        running = sum(t.state == TrialState.RUNNING for t in trials)
        return len(trials) - running, running

    def fail_stale_trials(self) -> None:
        """Fail trials whose process stopped sending heartbeats, and close their MLflow runs."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)
        self.close_orphaned_runs()

    def close_orphaned_runs(self, always: bool = False) -> int:
        if not (always or self.stale):
            return 0
        self.stale.clear()

        def live() -> set[int]:
            # Read after MLflow was searched: a trial started meanwhile is still seen as live.
            return {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}

        closed = self.tracker.close_orphaned_trial_runs(live)
        if closed:
            self.notes.append(f"closed {closed} MLflow run(s) left RUNNING by a process that died")
        return closed

    def close(self, finished: bool) -> dict[str, int]:
        """Record the study's counts and best trial on the MLflow parent run; return the counts."""
        counts = state_counts(self.study)
        best = _best_trial(self.study)
        self.tracker.close_parent(
            summary={f"trials_{state.lower()}": n for state, n in counts.items()},
            best=None if best is None else {
                "trial": best.number, "value": best.value, "run_id": best.user_attrs.get("mlflow_run_id"),
            },
            finished=finished and counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) >= self.target,
        )
        return counts

    def result(self, started: int, counts: dict[str, int], stopped_reason: str | None) -> SweepResult:
        config = self.config
        table = trials_table(config.name, self.storage_url)
        return SweepResult(
            study_name=config.name, storage=self.storage_url, tracking_uri=self.tracking_uri,
            experiment_id=self.tracker.experiment_id, parent_run_id=self.tracker.parent_run_id,
            target=self.target, started=started, counts=counts, stopped_reason=stopped_reason, trials=table,
            best=best_by(table, config.scientific, config.objective.direction), notes=self.notes,
        )


def open_sweep(
    sweep: Sweep,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
) -> OpenSweep:
    """Check the stores and the data, then create or resume the study and its MLflow parent run.

    Every check that can refuse the sweep (flags, stores, dataset) runs before anything is written.
    Creating the study and its MLflow experiment and parent run happens under the study's lock,
    so workers that start together share one of each.
    """
    from study.data import load_task
    from study.tracking import SweepTracker

    config = sweep.config
    target = config.trials if trials is None else trials
    if target < 1:
        raise ConfigError(f"--trials must be at least 1 (got {target})")
    storage_url = resolve_storage(storage, config)
    tracking = resolve_tracking_uri(tracking_uri, config)
    heartbeat_seconds()  # refuse a bad RNN_STUDY_HEARTBEAT_SECONDS before anything runs
    check_writable(storage_url, "storage")
    check_tracking_reachable(tracking)
    load_task(config.task)  # cached per process: a data error leaves nothing behind
    notes: list[str] = []
    stale: list[int] = []
    rdb = open_storage(storage_url, on_stale_trial=lambda study, trial: stale.append(trial.number))
    versions = package_versions()
    with StudyLock(rdb, storage_url, config.name):
        try:
            study = _open_study(config, rdb, storage_url)
        except sqlalchemy.exc.SQLAlchemyError as err:
            raise StoreError(store_problem("storage", storage_url, err)) from None
        grid_size = config.grid_size()
        if grid_size is not None and target > grid_size:
            notes.append(f"the grid has {grid_size} points, so the sweep stops at {grid_size} trials, not {target}")
            target = grid_size
        for configuration in config.configurations:
            study.enqueue_trial(configuration, skip_if_exists=True)
        try:
            tracker = SweepTracker(tracking, experiment_name=config.name)
            tracker.open_parent(
                config.name,
                tags={
                    "task": config.task.name,
                    "sweep_file": str(sweep.path),
                    "sweep_sha256": sweep.file_sha256,
                    "fingerprint": config.study_fingerprint(),
                    "optuna_storage": mask_password(storage_url),
                    "metric": config.objective.metric,
                    "scientific": ",".join(config.scientific),
                    "target_trials": target,
                    **{f"version.{k}": v for k, v in versions.items()},
                },
                config=masked_config(config),
            )
        except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot track"
            raise StoreError(store_problem("tracking URI", tracking, err)) from None
    opened = OpenSweep(
        sweep=sweep, target=target, storage_url=storage_url, tracking_uri=tracking, storage=rdb, study=study,
        tracker=tracker, versions=versions, notes=notes, stale=stale,
    )
    opened.fail_stale_trials()
    opened.close_orphaned_runs(always=True)
    return opened


def run_sweep(
    sweep: Sweep,
    trials: int | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    reporter=None,
) -> SweepResult:
    """Run or resume `sweep` until `trials` (default: the file's) trials have finished.

    Other processes may run the same sweep at the same time (`study worker`): each claims one
    trial at a time while fewer than the target are finished or running, and waits while the
    missing trials are all running elsewhere, so together they stop at exactly the target.
    """
    # Imported here so that `study list`, `show` and config errors never pay for TensorFlow.
    from study.trial import Objective, SilentReporter, configure_threads

    configure_threads(sweep.config.threads)  # before TensorFlow runs anything in this process
    opened = open_sweep(sweep, trials, storage, tracking_uri)
    config = opened.config
    reporter = reporter or SilentReporter()

    reporter.sweep_started(config.name, opened.finished_and_running()[0], opened.target)
    objective = Objective(
        config, _cached_data(config), opened.tracker,
        run_tags={
            "study": config.name, "task": config.task.name, "sweep_sha256": sweep.file_sha256,
            **{f"version.{k}": v for k, v in opened.versions.items()},
        },
        reporter=reporter,
    )
    streak = _FailureStreak(config.max_consecutive_failures)
    interrupted = False
    started = 0
    try:
        with long_lived_objects_frozen():
            started = _run_until_target(opened, objective, streak, reporter)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        opened.close_orphaned_runs()
        counts = opened.close(finished=not interrupted)
    return opened.result(started, counts, streak.stopped_reason)


@contextlib.contextmanager
def long_lived_objects_frozen():
    """Keep the garbage collector's full collections off objects that live for the whole sweep.

    Keras' `clear_session()` runs a full collection before every model; with TensorFlow, MLflow,
    Optuna and the data loaded, that walks millions of objects (~0.5 s per trial on 2 cores).
    Freezing what exists once the sweep is set up leaves each collection the trials' own objects.
    """
    gc.collect()  # garbage that exists now is freed, not frozen
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _cached_data(config: SweepConfig):
    from study.data import load_task

    return load_task(config.task)


# How often a worker with nothing to claim looks at the study again: a cheap query, and at the end
# of a sweep every worker but the last one to finish waits in this loop before it exits.
WAIT_SECONDS = 0.5


def _run_until_target(opened: OpenSweep, objective, streak: _FailureStreak, reporter) -> int:
    """Claim and run trials until the study has `target` finished ones; return how many this ran.

    The next trial is claimed under the study lock, and only while finished + running trials are
    below the target; the lock is let go as soon as the trial exists (RUNNING), so other workers
    count it. Failed trials free their place, and so do trials of dead processes, once their
    heartbeat is older than the grace period.
    """
    study, target = opened.study, opened.target
    started = 0
    waiting = False
    while streak.stopped_reason is None:
        lock = opened.lock().acquire()
        try:
            opened.fail_stale_trials()
            finished, running = opened.finished_and_running()
            if finished >= target:
                return started
            if finished + running < target:
                waiting = False

                def claimed(trial: optuna.Trial, lock=lock) -> float:
                    lock.release()  # the trial exists now: other workers count it
                    return objective(trial)

                started += 1
                # No gc_after_trial: Keras' clear_session() collects before the next model anyway.
                study.optimize(claimed, n_trials=1, catch=(Exception,), callbacks=[streak])
                continue
        finally:
            lock.release()
        if not waiting:
            waiting = True
            notice = getattr(reporter, "waiting", None)
            if notice is not None:
                notice(running, heartbeat_seconds()[1])
        time.sleep(WAIT_SECONDS)
    return started


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


# --------------------------------------------------------------------------- reading studies back


def _load(study_name: str, storage: str) -> optuna.Study:
    rdb = open_storage(storage, create=False)
    names = optuna.get_all_study_names(rdb)
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise StudyNotFound(f"no study named {study_name!r} in {mask_password(storage)} (studies: {known})")
    return optuna.load_study(study_name=study_name, storage=rdb)


@dataclass
class TrialRecord:
    """What the study recorded about one trial: enough to retrain it exactly."""

    study_name: str
    number: int
    state: str
    params: dict[str, Any]
    seed: int
    value: float | None
    config: SweepConfig
    user_attrs: dict[str, Any]


def load_trial(study_name: str, number: int, storage: str) -> TrialRecord:
    study = _load(study_name, storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise StudyNotFound(f"study {study_name!r} has no trial {number} (trials 0 to {len(trials) - 1})")
    trial = trials[number]
    metric = study.user_attrs.get("metric", "value")
    return TrialRecord(
        study_name=study_name, number=number, state=trial.state.name,
        params=trial.user_attrs.get("params", trial.params), seed=trial.user_attrs.get("seed", 0),
        value=trial.value if trial.value is not None else trial.user_attrs.get(f"best_{metric}"),
        config=parse_config(json.loads(study.user_attrs["config"]), source=f"study {study_name}"),
        user_attrs=dict(trial.user_attrs),
    )


def study_configs(storage: str) -> dict[str, SweepConfig]:
    """The sweep config of every study in `storage` that rnn-study created."""
    rdb = open_storage(storage, create=False)
    configs = {}
    for summary in optuna.get_all_study_summaries(rdb, include_best_trial=False):
        if "config" in summary.user_attrs:
            configs[summary.study_name] = parse_config(json.loads(summary.user_attrs["config"]), source=summary.study_name)
    return configs


def list_studies(storage: str) -> pd.DataFrame:
    """One row per study in `storage`: task, trial counts by state, best value."""
    rdb = open_storage(storage, create=False)
    rows = []
    for name in optuna.get_all_study_names(rdb):
        study = optuna.load_study(study_name=name, storage=rdb)
        best = _best_trial(study)
        rows.append({
            "study": name,
            "task": study.user_attrs.get("task", ""),
            "metric": study.user_attrs.get("metric", "value"),
            **{state.lower(): n for state, n in state_counts(study).items()},
            "best_value": best.value if best else float("nan"),
            "best_trial": best.number if best else None,
        })
    columns = ["study", "task", "metric", "complete", "pruned", "fail", "running", "best_value", "best_trial"]
    return pd.DataFrame(rows, columns=columns)


def trials_table(study_name: str, storage: str) -> pd.DataFrame:
    """One row per trial: state, score, test metrics, every hyperparameter, size and speed."""
    study = _load(study_name, storage)
    metric = study.user_attrs.get("metric", "value")
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        params = attrs.get("params", trial.params)
        rows.append({
            "trial": trial.number,
            "state": trial.state.name,
            f"best_{metric}": trial.value if trial.state == TrialState.COMPLETE else attrs.get(f"best_{metric}"),
            **{k: v for k, v in attrs.items() if k.startswith("test_")},
            **params,
            "param_count": attrs.get("param_count"),
            "seconds_per_epoch": attrs.get("seconds_per_epoch"),
            "train_seconds": attrs.get("train_seconds"),
            "best_epoch": attrs.get("best_epoch"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"),
            "seed": attrs.get("seed"),
            "fail_reason": attrs.get("fail_reason") or (DIED if trial.state == TrialState.FAIL else None),
            "mlflow_run_id": attrs.get("mlflow_run_id"),
        })
    return pd.DataFrame(rows)


def best_by(table: pd.DataFrame, dimensions: list[str], direction: str) -> pd.DataFrame:
    """The best completed trial for each value of `dimensions` (overall best if none), with counts."""
    if table.empty:
        return table
    score = next(c for c in table.columns if c.startswith("best_") and c != "best_epoch")
    done = table[table["state"] == "COMPLETE"].dropna(subset=[score])
    keys = [d for d in dimensions if d in table.columns]
    if done.empty:
        return done
    order = done.sort_values(score, ascending=direction == "minimize")
    best = order.groupby(keys, sort=True).head(1) if keys else order.head(1)
    if keys:
        grouped = table.groupby(keys)["state"]
        best = best.merge(grouped.size().rename("trials").reset_index(), on=keys)
        best = best.merge(
            grouped.apply(lambda s: int((s == "FAIL").sum())).rename("failed").reset_index(), on=keys,
        ).sort_values(keys)
    else:
        best = best.assign(trials=len(table), failed=int((table["state"] == "FAIL").sum()))
    front = keys + ["trial", score] + [c for c in best.columns if c.startswith("test_")]
    rest = ["param_count", "seconds_per_epoch", "trials", "failed"]
    return best[front + [c for c in rest if c in best.columns]].reset_index(drop=True)


IMPORTANCE_EVALUATORS = {
    # Optuna 5's default: compares the parameter distribution of the top trials with all trials.
    "ped-anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    # Classic fANOVA on a random forest of (params -> objective); seeded for stable figures.
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
}


def param_importances(study_name: str, storage: str, evaluator: str = "fanova") -> dict[str, float]:
    """Normalised importance of each searched hyperparameter over the completed trials.

    Returns {} when fewer than two completed trials exist or nothing was searched; the evaluator
    is named by the caller because PED-ANOVA and fANOVA can rank parameters very differently.
    """
    study = _load(study_name, storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = {name for trial in complete for name in trial.params}
    if len(complete) < 2 or not searched:
        return {}
    try:
        found = optuna.importance.get_param_importances(study, evaluator=IMPORTANCE_EVALUATORS[evaluator]())
        return {name: float(value) for name, value in found.items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}  # e.g. every completed trial has the same value: importance is undefined
