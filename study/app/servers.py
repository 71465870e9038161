"""Serving the two UIs (`study ui`: MLflow's server; `study dashboard`: optuna-dashboard), each in
a process group of its own that stops as a whole with the command."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, ContextManager

from study.spec.base import ConfigError
from study.spec.errors import StoppedEarly


class ServerStopped(StoppedEarly):
    """A server that stopped before it answered; its own messages say why."""


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (a port in use, most often),
    rather than let it fail with a traceback seconds later."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: use a port number from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind(address)
    except OSError as err:
        hint = "; pass another --port" if err.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from None


def health_url(host: str, port: int, path: str) -> str:
    """Where to ask whether a server bound to `host` answers: a wildcard address is asked on loopback."""
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{local}:{port}{path}"


def mlflow_ui(tracking_uri: str, host: str, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment that serve MLflow's UI on `tracking_uri`."""
    # The registry named (the same store) spares a line saying so. Uvicorn's warnings and errors
    # only: no access log (a page load is dozens of requests, each a line in the terminal that
    # printed the links) and no start-up lines (the links say it answers).
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
               "--registry-store-uri", tracking_uri, "--host", host, "--port", str(port), "--workers", str(workers),
               "--uvicorn-opts", "--no-access-log --log-level warning"]
    # Starlette warns that the WSGI middleware MLflow's server imports is deprecated, once per
    # worker: MLflow's business, nothing a user can act on. PYTHONWARNINGS reaches the uvicorn
    # workers MLflow starts; the category is a UserWarning subclass that a -W option cannot name
    # (site-packages is not importable yet when the option is read), hence the message prefix.
    env = {**os.environ, "PYTHONWARNINGS": ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:starlette:UserWarning"]))}
    # MLflow's job runner (7 huey processes for its GenAI judges and periodic tasks; nothing here
    # uses them) more than doubled the time to the first answer on 2 cores: off unless asked for.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return command, env


def optuna_dashboard(storage: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment that serve optuna-dashboard on `storage`."""
    # The URL goes to the server in its environment, not its argv, where `ps` would show a password.
    env = {**os.environ, "RNN_STUDY_DASHBOARD_STORAGE": storage}
    return [sys.executable, "-c", _DASHBOARD_SERVER, host, str(port)], env


# optuna-dashboard's own command logs every request to the terminal; this serves its WSGI app the
# same way (threaded wsgiref) without that, and reads the storage URL from the environment.
_DASHBOARD_SERVER = """
import os, sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


app = wsgi(os.environ.pop("RNN_STUDY_DASHBOARD_STORAGE"))  # it creates no tables and migrates nothing
make_server(sys.argv[1], int(sys.argv[2]), app, server_class=Server, handler_class=QuietHandler).serve_forever()
"""


def serve(command: list[str], health: str, say_ready: Callable[[], None], env: dict[str, str],
          waiting: ContextManager) -> int:
    """Run a server in its own process group, call `say_ready()` once `health` answers (inside
    `waiting` until then), and stop the whole group on Ctrl-C or SIGTERM, or when this process dies
    (kill -9 too); return its exit code. A server that stops before it answers is `ServerStopped`."""
    from study.search.workers import guard_process_group

    # Servers start worker processes of their own: one process group, stopped as a whole, so no
    # server is left behind.
    server = subprocess.Popen(command, start_new_session=True, env=env, stdin=subprocess.DEVNULL)
    guard_process_group(server.pid)  # kill -9 of this command stops the server and its workers too
    signal.signal(signal.SIGTERM, _raise_interrupt)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy
    try:
        with waiting:
            while server.poll() is None:
                try:
                    opener.open(health, timeout=5).close()
                    break
                except urllib.error.HTTPError:
                    break  # it answers, if not on that path
                except OSError:
                    time.sleep(0.5)
        if server.poll() is not None:
            raise ServerStopped(f"the server stopped before it answered (exit code {server.returncode}); "
                                "see its messages above")
        say_ready()
        return server.wait()
    except KeyboardInterrupt:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        return 0


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
