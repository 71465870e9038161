"""Stores: where a study's search state and runs live, and checking them before anything is written.

Resolving the two store URLs (flag, then environment, then sweep file, then the local default),
refusing a store that cannot be used with one line (unreachable server, missing driver, read-only
file), opening Optuna's RDB storage with heartbeats, the `StudyLock` that serialises the moments
workers must not race, and masking passwords wherever a URL is shown. Nothing here trains or
talks to MLflow; `study.store.tracking` and the Optuna modules use it. Optuna and SQLAlchemy are imported
where they are used: `study sweep --jobs N` resolves the store URLs with this module and starts its
workers before it loads either.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from study.spec.base import ConfigError, shown
from study.spec.errors import StoppedEarly, StudyError
from study.spec.settings import (
    DEFAULT_STORAGE, DEFAULT_TRACKING_URI, HEARTBEAT_ENV, STORAGE_ENV, STORAGE_SCHEMES, THREADS_ENV, TRACKING_ENV,
    TRACKING_SCHEMES, check_uri,
)
from study.spec.sweep_file import SweepConfig

if TYPE_CHECKING:
    import optuna


def sqlite_path(uri: str) -> Path | None:
    """The file behind a `sqlite:///` URI, or None for other schemes."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def prepare_local_store(uri: str) -> None:
    """Create the folder of a local SQLite store (e.g. `mlruns/`) so the database can be opened."""
    path = sqlite_path(uri)
    if path is not None and str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)

DEFAULT_HEARTBEAT_SECONDS = 20  # a trial whose process died is failed after 3 x this without a heartbeat


CONNECT_TIMEOUT_SECONDS = 10  # an unreachable database server fails fast instead of hanging


class StudyNotFound(StudyError, LookupError):
    """A study name that the storage does not hold."""


class StoreError(ConfigError):
    """A storage or tracking URL that cannot be used: unreachable, read-only, or without its driver."""


class StoreFailed(StoppedEarly):
    """A store that stopped working while a sweep ran (a full disk, a server gone); the message says
    which and how to resume. Finished trials are kept."""


def mask_passwords_in(text: str) -> str:
    """`text` with the password of any `scheme://user:password@host` in it masked (error messages
    of database drivers and MLflow quote the URL they failed on)."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def store_failure(err: BaseException) -> str | None:
    """One line saying which store stopped working, if `err` (or what caused it) is a store's failure."""
    import sqlalchemy

    seen = 0
    while err is not None and seen < 10:
        text = " ".join(str(getattr(err, "orig", None) or err).split("(Background on this error")[0].split())
        full = "disk is full" in text or getattr(err, "errno", None) == 28
        if full or isinstance(err, sqlalchemy.exc.SQLAlchemyError) or type(err).__name__ in (
                "MlflowException", "RestException", "ConnectionError", "MaxRetryError"):
            hint = " (the disk is full: free some space)" if full else ""
            return mask_passwords_in(f"a store stopped working while the sweep ran: {text[:300]}{hint}; finished "
                                     "trials are kept: run the same command again to resume once it works")
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


@contextlib.contextmanager
def store_failures_in_threads_silenced() -> Iterator[None]:
    """Optuna's heartbeat thread dies with a traceback when its store fails (a full disk, a database
    gone); the sweep's own thread meets the same failure and says it in one line (`store_failure`).
    Any other exception in a thread is printed as before."""
    previous = threading.excepthook

    def hook(args) -> None:
        if store_failure(args.exc_value) is None:
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def resolve_storage(flag: str | None = None, config: SweepConfig | None = None) -> str:
    """Flag, then environment, then sweep file, then the embedded default."""
    url = flag or os.environ.get(STORAGE_ENV) or (config.storage if config else None) or DEFAULT_STORAGE
    try:
        return _not_in_memory(check_uri(url, STORAGE_SCHEMES, "storage"), "storage", DEFAULT_STORAGE)
    except ValueError as err:
        raise ConfigError(redact(str(err), url)) from None


def resolve_tracking_uri(flag: str | None = None, config: SweepConfig | None = None) -> str:
    uri = flag or os.environ.get(TRACKING_ENV) or (config.tracking_uri if config else None) or DEFAULT_TRACKING_URI
    try:
        return _not_in_memory(check_uri(uri, TRACKING_SCHEMES, "tracking URI"), "tracking URI", DEFAULT_TRACKING_URI)
    except ValueError as err:
        raise ConfigError(redact(str(err), uri)) from None


def _not_in_memory(url: str, what: str, example: str) -> str:
    """Refuse an in-memory SQLite database: each connection gets an empty one, so the study is gone
    as soon as it is written (and workers, reports and resumes could never see it)."""
    if url.split("?", 1)[0].rstrip("/") in ("sqlite:", "sqlite:/", "sqlite:///:memory:") or ":memory:" in url \
            or "mode=memory" in url:
        raise ValueError(f"{what} {url!r} is an in-memory database: the study would be lost when the command "
                         f"ends; use a file, e.g. {example}")
    return url


def heartbeat_seconds() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds; `RNN_STUDY_HEARTBEAT_SECONDS` sets the interval.

    A running trial records a heartbeat every interval; one silent for the grace period (three
    intervals) is taken for dead and failed. Short intervals find dead workers sooner; long ones
    tolerate a machine that stalls (swapping, a suspended laptop) without failing its trial.
    """
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS, 3 * DEFAULT_HEARTBEAT_SECONDS
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:  # "²".isdigit() is True, int("²") fails
        raise ConfigError(f"{HEARTBEAT_ENV}={shown(raw)}: use a whole number of seconds, at least 1")
    return int(raw), 3 * int(raw)


def threads_setting() -> int | None:
    """`RNN_STUDY_THREADS`: TensorFlow CPU threads per process (None: TensorFlow's default)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw or raw == "0":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{THREADS_ENV}={shown(raw)}: use a whole number of CPU threads, at least 1")
    return int(raw)


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
    import optuna
    import sqlalchemy

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


def preload_storage_code() -> None:
    """Import the code Optuna opens an RDB storage with, without opening one: for a `--jobs` worker,
    while its parent creates the storage."""
    from study.store.optuna_private import import_rdb_storage_code

    import_rdb_storage_code()


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
        import sqlalchemy

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
        import sqlalchemy

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
