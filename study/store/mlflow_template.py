"""A new local MLflow store, fast: a SQLite tracking database starts as a copy of an empty one that
MLflow made once per machine (and per MLflow and SQLite version), kept in the user's cache.

MLflow itself is only asked to create its tables (through `study.store.mlflow_private`); the
tracking API is `study.store.tracking`'s.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def store_template_folder() -> Path:
    """Where the empty tracking database `new_sqlite_store` copies is kept: the user's cache."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnn-study"


def new_sqlite_store(path: Path) -> None:
    """Create the tracking database `path` as a copy of an empty one that MLflow made once, on this
    machine, for this MLflow version.

    MLflow creates a new SQLite store by running its schema migrations one by one (about 100
    alembic steps: 1.5-2.5 s of CPU on 2 cores, before the first trial of every new store); the
    copy is the database those steps produce (tables, indexes, schema revision), before MLflow adds
    its Default experiment, which it then adds to the copy as it would have. Nothing is ever half
    made: the template is renamed into place once complete, the copy is checked (`empty_store`) and
    only then linked into place (a process that created `path` first wins). A template that fails
    the check (a disk fault, a file replaced by hand) is made again, once. If anything fails, `path`
    is left absent and MLflow creates it the usual way.
    """
    import shutil
    import sqlite3

    import mlflow

    folder = store_template_folder()
    template = folder / f"mlflow-{mlflow.__version__}-sqlite-{sqlite3.sqlite_version}.db"
    making = folder / f".{template.name}.{os.getpid()}"
    copy = path.parent / f".{path.name}.{os.getpid()}.new"
    try:
        for _ in range(2):
            if not template.exists():
                _make_template(making, template)
            shutil.copyfile(template, copy)
            if empty_store(copy):
                break
            template.unlink(missing_ok=True)  # unusable: made again from MLflow's migrations
        else:
            return  # no usable copy: MLflow creates the store itself
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            os.link(copy, path)
    except Exception:  # noqa: BLE001, S110 - a cache or folder that cannot be written: MLflow creates the store
        pass
    finally:
        for leftover in (making, copy):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)


def _make_template(making: Path, template: Path) -> None:
    import sqlalchemy

    from study.store.mlflow_private import create_tables

    making.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{making}")
    try:
        create_tables(engine)
    finally:
        engine.dispose()
    os.replace(making, template)


def empty_store(path: Path) -> bool:
    """Whether `path` is an intact, empty MLflow tracking database: SQLite's quick check passes, it
    has MLflow's tables and one schema revision, and no experiment yet. Read-only."""
    import sqlite3

    from study.store.locations import MLFLOW_TABLES

    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if connection.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                return False
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not MLFLOW_TABLES | {"alembic_version"} <= tables:
                return False
            revisions = connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
            return revisions == 1 and connection.execute("SELECT count(*) FROM experiments").fetchone()[0] == 0
        finally:
            connection.close()
    except (sqlite3.Error, OSError):
        return False
