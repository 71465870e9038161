"""`study ui` and `study dashboard`: the MLflow UI and optuna-dashboard on this project's stores."""

from __future__ import annotations

from typing import Optional

import typer

from study.app.options import StorageOption, TrackingOption
from study.app.terminal import console, exit_codes, fail
from study.spec.base import ConfigError


def ui(
    tracking_uri: Optional[str] = TrackingOption,
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 exposes the UI to your network"),
    port: int = typer.Option(5000, help="port to serve on"),
    workers: int = typer.Option(1, help="MLflow server worker processes: 1 answers soonest on a small machine "
                                        "(MLflow's own default is 4); more serve many readers at once"),
) -> None:
    """Open the MLflow UI on this project's tracking store (bound to 127.0.0.1 by default); the links
    are printed once the server answers."""
    from study.app import servers
    from study.store.locations import mask_password, resolve_tracking_uri, sqlite_path
    from study.store.tracking import experiment_links

    with exit_codes():
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {workers})")
        uri = resolve_tracking_uri(tracking_uri)  # the MLflow store alone: the UI never reads Optuna's
        if uri.startswith(("http://", "https://")):
            console.print(f"this project tracks to a server already: {mask_password(uri)}")
            return
        db = sqlite_path(uri)
        if db is not None and not db.exists():
            raise ConfigError(f"no tracking store at {db}; run `study sweep sweeps/quick.yaml` first")
        servers.check_port(host, port)
    base = f"http://{host}:{port}"
    links = experiment_links(uri, base)

    def say_ready() -> None:
        console.print(f"MLflow UI at {base}  (Ctrl-C to stop)")
        for name, url in links.items():
            console.print(f"  {name}: {url}")

    command, env = servers.mlflow_ui(uri, host, port, workers)
    serve_until_stopped(command, servers.health_url(host, port, "/health"), say_ready, env,
                        starting=f"starting the MLflow UI ({workers} worker{'s' if workers > 1 else ''}; "
                                 "10-60 s on 2 cores)")


def dashboard(
    storage: Optional[str] = StorageOption,
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 exposes the dashboard to your network"),
    port: int = typer.Option(8080, help="port to serve on"),
) -> None:
    """Open optuna-dashboard on this project's Optuna storage (bound to 127.0.0.1 by default):
    each study's history, parameter plots and importances, named by its metric."""
    import importlib.util

    from study.app import servers
    from study.store.stores import Stores

    if importlib.util.find_spec("optuna_dashboard") is None:
        raise fail("optuna-dashboard is not installed; pip install 'rnn-study[dashboard]' (or, in a clone: "
                   ".venv/bin/pip install -e '.[dashboard]')")
    with exit_codes():
        stores = Stores.resolve(storage)
        stores.optuna_storage()  # refuse a missing or unreachable store in one line
        stores.close()
        servers.check_port(host, port)
    base = f"http://{host}:{port}"
    command, env = servers.optuna_dashboard(stores.storage, host, port)
    serve_until_stopped(command, servers.health_url(host, port, "/api/meta"), lambda: console.print(
        f"optuna-dashboard at {base}  (Ctrl-C to stop)"), env, starting="starting optuna-dashboard")


def serve_until_stopped(command: list[str], health_url: str, say_ready, env: dict[str, str], starting: str) -> None:
    """`study.app.servers.serve` with a spinner until the server answers; exits with its code."""
    from study.app import servers

    with exit_codes():
        code = servers.serve(command, health_url, say_ready, env, waiting=console.status(starting))
    raise typer.Exit(code)
