"""Stores: where a study's search state and runs live, and checking them before anything is written.

Resolving the two store URLs (flag, then environment, then sweep file, then the local default),
refusing a store that cannot be used with one line (unreachable server, missing driver, read-only
file, a folder this user cannot enter, a dangling link, a file that is the other tool's store or no
database at all, two stores that would collide), opening Optuna's RDB storage with heartbeats,
the `StudyLock` that serialises the moments workers must not race, and masking passwords wherever
a URL is shown. Nothing here trains or talks to MLflow; `study.store.tracking` and the Optuna
modules use it. Optuna and SQLAlchemy are imported where they are used: `study sweep --jobs N`
resolves the store URLs with this module and starts its workers before it loads either (a local
file is looked at with the standard library's `sqlite3`).
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


def local_file_exists(uri: str, what: str, empty_is_absent: bool = False) -> bool | None:
    """Whether the file of a local SQLite store exists (None: not a local file; with `empty_is_absent`,
    a 0-byte file counts as none, as it holds nothing to read); StoreError, one line, when a folder
    on its way is one this user may not look into."""
    path = sqlite_path(uri)
    if path is None or str(path) in ("", ":memory:"):
        return None
    try:
        return path.exists() and not (empty_is_absent and path.is_file() and path.stat().st_size == 0)
    except PermissionError:
        raise StoreError(f"{what} {mask_password(uri)}: permission denied to look into the folder {closed_folder(path)}; "
                         f"make it readable, or pass --{'storage' if what == 'storage' else 'tracking-uri'} with "
                         "another location") from None


def closed_folder(path: Path) -> Path:
    """The first folder on the way to `path` that this user may not look into (for messages)."""
    for folder in [*reversed(path.parents), path][1:]:
        if not os.access(folder.parent, os.X_OK):
            return folder.parent
    return path.parent


def prepare_local_store(uri: str) -> None:
    """Create the folder of a local SQLite store (e.g. `mlruns/`) so the database can be opened."""
    path = sqlite_path(uri)
    if path is not None and str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)


# The tables that tell whose database a SQLite file is (each tool has more; these never change).
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info"})
MLFLOW_TABLES = frozenset({"experiments", "runs", "metrics"})
STORE_KINDS = {"storage": ("an Optuna storage", OPTUNA_TABLES), "tracking URI": ("an MLflow tracking store", MLFLOW_TABLES)}


def sqlite_tables(path: Path) -> set[str]:
    """The table names of the SQLite database `path`, read through a read-only connection (nothing
    is created or changed). Raises sqlite3.DatabaseError for a file that is not a database."""
    import sqlite3

    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=20)
    try:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def check_store_kind(url: str, what: str) -> None:
    """Refuse a local SQLite file that is not the store `what` ("storage" or "tracking URI") names,
    before either tool opens it: one that holds the other tool's tables (Optuna and MLflow would
    each add theirs to it, then fail on the other's schema revision), or that is not a database at
    all. Looked at read-only; a missing or empty file is a new store and passes."""
    import sqlite3

    path = sqlite_path(url)
    try:
        if path is None or str(path) in ("", ":memory:") or not path.is_file() or path.stat().st_size == 0:
            return
        tables = sqlite_tables(path)
    except sqlite3.OperationalError:
        return  # locked or not readable here: the tool that opens it says why
    except sqlite3.DatabaseError as err:  # "file is not a database", "database disk image is malformed"
        raise StoreError(f"cannot use {what} {mask_password(url)}: {path} is not a SQLite database ({err}); restore it "
                         "from a backup, or move it aside to start a new store") from None
    except OSError:
        return
    (mine, own), (theirs, other) = STORE_KINDS[what], STORE_KINDS["tracking URI" if what == "storage" else "storage"]
    flag = "--storage" if what == "storage" else "--tracking-uri"
    example = "sqlite:///mlruns/optuna.db" if what == "storage" else "sqlite:///mlruns/mlflow.db"
    if other <= tables:
        both = own <= tables
        raise StoreError(
            f"{what} {mask_password(url)}: {path} is {theirs}" + (f" and {mine} at once" if both else f", not {mine}")
            + f": Optuna and MLflow cannot share one SQLite file; pass {flag} with a file of its own (e.g. {example})"
            + ("; move this file aside, as neither tool can use it" if both else ""))


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
        return _not_in_memory(_one_at_sign(check_uri(url, STORAGE_SCHEMES, "storage"), "storage"), "storage",
                              DEFAULT_STORAGE)
    except ValueError as err:
        raise ConfigError(redact(str(err), url)) from None


def resolve_tracking_uri(flag: str | None = None, config: SweepConfig | None = None) -> str:
    uri = flag or os.environ.get(TRACKING_ENV) or (config.tracking_uri if config else None) or DEFAULT_TRACKING_URI
    try:
        return _not_in_memory(_one_at_sign(check_uri(uri, TRACKING_SCHEMES, "tracking URI"), "tracking URI"),
                              "tracking URI", DEFAULT_TRACKING_URI)
    except ValueError as err:
        raise ConfigError(redact(str(err), uri)) from None


def _one_at_sign(url: str, what: str) -> str:
    """Refuse a server URL whose user name or password holds an `@`: the database drivers split
    `user:pass@word@host` at the first `@`, so they would try the host `word@host` (and echo it, a
    piece of the password, in their error). Written `%40`, an `@` is read as part of the password."""
    if url.startswith("sqlite:"):
        return url  # a path, where `@` is an ordinary character
    credentials = url.split("://", 1)[1].split("?", 1)[0].rpartition("@")[0]
    if "@" in credentials:
        raise ValueError(f"{what} {mask_password(url)}: the user name or password holds an '@': write each one "
                         "as %40 (a database driver ends the password at its first '@')")
    return url


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
    if not create and local_file_exists(url, "storage", empty_is_absent=True) is False:  # reading writes nothing
        raise StudyNotFound(f"no study storage at {path}{' (an empty file)' if path.exists() else ''} (run `study "
                            "sweep <file>` first, or pass --storage)" + dangling_note(path))
    check_store_kind(url, "storage")  # before Optuna adds its tables to MLflow's file (or to garbage)
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
    hint = f"make it writable, or pass --{'storage' if what == 'storage' else 'tracking-uri'} with another location"
    link = _dangling_link(path)
    if link is not None:
        raise StoreError(f"{what} {url}: {link} is a dangling symbolic link (to {os.readlink(link)}, which does not "
                         f"exist); create what it points to, or remove the link, or pass --"
                         f"{'storage' if what == 'storage' else 'tracking-uri'} with another location")
    try:
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise StoreError(f"{what} {url}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StoreError(f"{what} {url}: the folder {existing}/ is read-only; {hint}")
        if path.is_dir():
            raise StoreError(f"{what} {url}: {path} is a folder; name a database file in it (e.g. "
                             f"sqlite:///{path / ('optuna.db' if what == 'storage' else 'mlflow.db')})")
        if path.exists() and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
            raise StoreError(f"{what} {url}: {path} is not a writable file; {hint}")
    except PermissionError:  # a folder on the way that this user may not look into
        raise StoreError(f"{what} {url}: permission denied to look into the folder {closed_folder(path)}; {hint}") from None


def _dangling_link(path: Path) -> Path | None:
    """The first of `path` and its folders that is a symbolic link to nothing, if any."""
    for candidate in [*reversed(path.parents), path]:
        try:
            if candidate.is_symlink() and not candidate.exists():
                return candidate
        except OSError:
            return None
    return None


def dangling_note(path: Path) -> str:
    """"; X is a dangling symbolic link (to Y)" when `path` goes through one, else "" (for messages)."""
    link = _dangling_link(path)
    return "" if link is None else f"; {link} is a dangling symbolic link (to {os.readlink(link)})"


def check_apart(storage: str, tracking_uri: str) -> None:
    """Refuse local stores that would collide: one SQLite file for both (Optuna and MLflow cannot
    share one), or a store's file where the other's folder (or MLflow's artifacts folder) goes
    (`--storage sqlite:///mlruns` beside `mlruns/mlflow.db`). Paths only: nothing is opened."""
    optuna_file, mlflow_file = sqlite_path(storage), sqlite_path(tracking_uri)
    if optuna_file is None or mlflow_file is None or ":memory:" in (str(optuna_file), str(mlflow_file)):
        return
    where = {"storage": optuna_file, "tracking URI": mlflow_file}
    full = {what: Path(os.path.abspath(path)) for what, path in where.items()}
    if full["storage"] == full["tracking URI"]:
        kind = ""
        with contextlib.suppress(Exception):
            tables = sqlite_tables(optuna_file) if optuna_file.is_file() else set()
            kind = (" (it is MLflow's tracking store)" if MLFLOW_TABLES <= tables and not OPTUNA_TABLES <= tables
                    else " (it is Optuna's storage)" if OPTUNA_TABLES <= tables and not MLFLOW_TABLES <= tables else "")
        raise StoreError(f"storage {mask_password(storage)} and tracking URI {mask_password(tracking_uri)} are one "
                         f"file{kind}: Optuna and MLflow cannot share one SQLite file; give each its own (e.g. "
                         "--storage sqlite:///mlruns/optuna.db --tracking-uri sqlite:///mlruns/mlflow.db)")
    artifacts = full["tracking URI"].parent / "artifacts"
    for what, other in (("storage", "tracking URI"), ("tracking URI", "storage")):
        file, flag = full[what], "--storage" if what == "storage" else "--tracking-uri"
        if file in full[other].parents:
            clash = f"the folder of the {other} ({where[other]})"
        elif what == "storage" and (file == artifacts or file in artifacts.parents):
            clash = f"where MLflow keeps the artifacts of the tracking URI {mask_password(tracking_uri)}"
        else:
            continue
        example = DEFAULT_STORAGE if what == "storage" else DEFAULT_TRACKING_URI
        example = "" if sqlite_path(example) == where[what] else f" (e.g. {example})"
        raise StoreError(f"{what} {mask_password(storage if what == 'storage' else tracking_uri)}: {where[what]} is "
                         f"{clash}, so it cannot be a database file; pass {flag} with a file of its own{example}")


def check_tracking_reachable(uri: str) -> None:
    """Fail in seconds, with one line, when the MLflow tracking server or database is not there.

    MLflow itself retries an unreachable server for minutes before it gives up.
    """
    scheme = uri.split("://", 1)[0].split("+", 1)[0]
    if scheme == "sqlite":
        check_writable(uri, "tracking URI")
        check_store_kind(uri, "tracking URI")
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

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock right now, looked at without waiting (a SQLite
        study without a lock file was never locked: none is made)."""
        path = sqlite_path(self.url)
        if path is not None and not Path(f"{path}.lock").exists():
            return False
        try:
            if not self._try():
                return True
        except OSError:
            return False  # cannot be told here (a lock file this user cannot open)
        self.release()
        return False

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
    """`text` with the password of `url` (if any) replaced by ***, wherever a library echoed it.

    The pieces of a password are masked too: a driver that parsed `user:top@secret@host` its own way
    echoes `secret@host` as the host it could not find. A piece of 2 characters or more is masked
    before an `@` or after a `:`, and anywhere once it has 4 (shorter ones would mask ordinary words);
    a password of 1-3 characters is masked only where the URL's own form `:secret@` is echoed.
    """
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    found = re.findall(r"(?i)[?&](?:password|passwd|pwd)=([^&]*)", url)
    text = text.replace(url, mask_password(url))
    secrets = [s for secret in filter(None, [password, *found]) for s in {secret, urllib.parse.unquote(secret)}]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(f":{secret}@", ":***@")
        if len(secret) >= 4:  # anywhere; a shorter one would mask letters of ordinary words ("p" in "port")
            text = text.replace(secret, "***")
    pieces = {piece for secret in secrets for piece in re.split(r"[@:/]", secret) if len(piece) >= 2}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(f"{piece}@", "***@").replace(f":{piece}", ":***")
        if len(piece) >= 4:
            text = text.replace(piece, "***")
    return text
