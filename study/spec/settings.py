"""Settings from the environment: the variables a study reads, the default stores, and the store URLs allowed."""

from __future__ import annotations

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
    """Refuse a URI whose scheme this store cannot use (e.g. a plain path for MLflow 3.17+)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in schemes:
        raise ValueError(
            f"{what} {uri!r} is not a supported URL; use one starting with "
            + ", ".join(f"{s}://" for s in schemes)
            + (" (e.g. sqlite:///mlruns/optuna.db)" if what == "storage" else " (e.g. sqlite:///mlruns/mlflow.db)")
        )
    return uri
