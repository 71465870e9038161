"""Settings from the environment: the variables a study reads, the default stores, and the store URLs allowed."""

from __future__ import annotations

import os
from pathlib import Path

from study.spec.base import shown

# Settings read from the environment (flags win over them, they win over the sweep file).
STORAGE_ENV = "RNN_STUDY_STORAGE"  # Optuna storage URL
TRACKING_ENV = "MLFLOW_TRACKING_URI"  # MLflow tracking URI (MLflow's own variable)
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"  # the stores when neither flag, variable nor sweep file names one
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
HEARTBEAT_ENV = "RNN_STUDY_HEARTBEAT_SECONDS"  # seconds between a running trial's heartbeats
THREADS_ENV = "RNN_STUDY_THREADS"  # TensorFlow CPU threads per process

STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "http", "https", "databricks")


def check_uri(uri: str, schemes: tuple[str, ...], what: str) -> str:
    """Refuse a URI whose scheme this store cannot use (e.g. a plain path for MLflow 3.17+), and a
    SQLite URL with options after `?` or a file name the system would refuse as too long."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in schemes:
        raise ValueError(
            f"{what} {uri!r} is not a supported URL; use one starting with "
            + ", ".join(f"{s}://" for s in schemes)
            + (" (e.g. sqlite:///mlruns/optuna.db)" if what == "storage" else " (e.g. sqlite:///mlruns/mlflow.db)")
        )
    if scheme == "sqlite":
        _check_sqlite_url(uri, what)
    return uri


def _check_sqlite_url(uri: str, what: str) -> None:
    rest = uri.split("://", 1)[1]
    path, _, options = rest[1:].partition("?") if rest.startswith("/") else ("", "", "")
    # `?mode=memory`: the in-memory refusal (study.store.locations) says more than this one would.
    if options and "memory" not in options:
        # Without `uri=true` SQLAlchemy drops `mode=ro` and the like: the file would be created and
        # written (and its lock file named after the whole URL) before anything failed.
        raise ValueError(f"{what} {shown(uri)}: a SQLite URL takes no options after '?' here ({shown(options)} "
                         "would be ignored and the file written); name the file alone, e.g. "
                         f"sqlite:///{shown(path)[1:-1]}")
    problem = path_too_long(path)
    if problem:
        raise ValueError(f"{what} {shown(uri)}: {problem}")


NAME_MAX = 255  # bytes in one file or folder name (Linux and macOS file systems: ext4, XFS, btrfs, APFS)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def path_too_long(path: str) -> str | None:
    """Why the system would refuse `path` as too long (`[Errno 36] File name too long`), else None;
    checked without asking the system, which raises it from `stat` and `exists` alike."""
    parts = Path(path).parts
    for part in parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            which = f"its part {shown(part)}" if len(parts) > 1 else "the name"
            return (f"{which} is {size} bytes long, more than a file or folder name may have ({NAME_MAX}); "
                    "use a shorter name")
    if len(os.fsencode(path)) >= PATH_MAX:
        return (f"the path is {len(os.fsencode(path))} bytes long, more than a path may have ({PATH_MAX - 1}); "
                "use a shorter one")
    return None
