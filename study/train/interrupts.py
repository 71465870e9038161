"""Stopping a process cleanly: Ctrl-C, SIGTERM, SIGHUP, or a parent that died.

`graceful_interrupts` turns SIGINT, SIGTERM and SIGHUP (the terminal closed, an SSH session ended;
left alone under `nohup`, which ignores it) into one `Interrupted` (a KeyboardInterrupt that
carries the reason the trial records), raised at once during training but never inside a write
to the stores, so an epoch's metrics or a trial's record are written whole before the trial is
marked (Optuna FAIL, MLflow KILLED) and the process exits 130.

Python runs signal handlers only between bytecodes of the main thread, so inside one long native
call (one training step of a huge model is minutes of TensorFlow C++) a Ctrl-C would wait for the
call to end. A watchdog thread hears every signal at once (`signal.set_wakeup_fd`); when the main
thread has not taken it within `STUCK_SECONDS`, the watchdog stops the process itself: the actions
registered with `on_hard_stop` (mark the trial, close its runs) run from there, bounded in time,
then the process exits 130. Whatever they could not write, the heartbeat cleanup of the next run
does, as after kill -9.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterator

CTRL_C = "interrupted by the user (Ctrl-C)"
REASONS = {signal.SIGINT: CTRL_C, signal.SIGTERM: "stopped by SIGTERM (asked to end by the system or a scheduler)",
           signal.SIGHUP: "stopped by SIGHUP (its terminal or session closed)"}
STUCK_SECONDS = 4.0  # a handler that has not run by then never will soon: the main thread is in native code
HARD_STOP_SECONDS = 15.0  # what the watchdog's own writes may take before it exits anyway


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt raised by `graceful_interrupts`; `reason` is what the trial records."""

    def __init__(self, reason: str = CTRL_C):
        super().__init__(reason)
        self.reason = reason


def reason_of(err: KeyboardInterrupt) -> str:
    return getattr(err, "reason", CTRL_C)


# A signal that arrives while code of these modules runs waits until it returns: these are the
# writes to the stores (MLflow, Optuna's storage and their database drivers), and the places where
# Python would swallow the exception (weakref callbacks and finalizers run by the garbage collector).
# `optuna.study._tell` is a private module, named only (tests/test_private_apis.py checks it).
_BOOKKEEPING = ("mlflow", "sqlalchemy", "optuna.storages", "optuna.study._tell", "study.store.tracking",
                "sqlite3", "psycopg", "pymysql", "MySQLdb", "requests", "urllib3", "http.client",
                "weakref", "_weakrefset")


def _not_now(frame) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_BOOKKEEPING) or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


_hard_stop_actions: list[Callable[[], None]] = []
_requested_reason: list[str] = []  # set by `request_stop`: why the SIGINT this process sends itself
_states: list[dict] = []  # one per open `graceful_interrupts`, innermost last


def raised_reason() -> str | None:
    """The reason of the `Interrupted` the innermost `graceful_interrupts` has raised, else None."""
    return _states[-1]["reason"] if _states and _states[-1]["raised"] else None


@contextlib.contextmanager
def interrupts_kept_through_native_code() -> Iterator[None]:
    """Let an `Interrupted` raised inside a Python callback of native code leave as itself.

    TensorFlow calls Python back from C++ (pybind11); an exception raised there comes out as
    another one, e.g. `RuntimeError: pybind11::error_already_set: MISMATCH of original and
    normalized active exception types: ORIGINAL InvalidArgumentError REPLACED BY Interrupted`
    (seen when a Ctrl-C landed in a dataset's generator). Whatever comes out after an interrupt
    was raised is that interrupt.
    """
    try:
        yield
    except Exception as err:
        reason = raised_reason()
        if reason is None:
            raise
        raise Interrupted(reason) from err


@contextlib.contextmanager
def on_hard_stop(action: Callable[[], None]) -> Iterator[None]:
    """While inside, a hard stop (see the module) runs `action` (newest first) before the process exits."""
    _hard_stop_actions.append(action)
    try:
        yield
    finally:
        _hard_stop_actions.remove(action)


def request_stop(reason: str) -> None:
    """Stop this process as a Ctrl-C would, from any thread, with `reason` as the trial's reason."""
    _requested_reason.append(reason)
    os.kill(os.getpid(), signal.SIGINT)


@contextlib.contextmanager
def graceful_interrupts(say: Callable[[str], None] | None = None, farewell: str = "") -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into one `Interrupted`, raised outside any write to the stores.

    A signal during a write is held until the write returns (checked every 50 ms). Once the
    interrupt is raised, further signals are ignored so that marking the trial cannot itself be
    interrupted; kill -9 remains for the impatient (and heartbeats clean up after it). Should
    Python swallow the interrupt anyway (an "exception ignored" in a callback of the garbage
    collector), it is raised again. A hard stop (see the module) prints `farewell` last.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    say = _never_failing(say or (lambda text: print(text, file=sys.stderr, flush=True)))
    state = {"pending": False, "raised": False, "reason": CTRL_C}

    def on_signal(signum, frame) -> None:
        if signum in REASONS:
            state["reason"] = _requested_reason[-1] if _requested_reason else REASONS[signal.Signals(signum)]
        if state["raised"]:
            say("already stopping: marking the current trial, then exiting")
            return
        if _not_now(frame):
            if not state["pending"] and signum != signal.SIGALRM:
                say("stopping after the current write to the stores...")
            state["pending"] = True
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        state["pending"], state["raised"] = False, True
        raise Interrupted(state["reason"])

    def on_alarm(signum, frame) -> None:
        if state["pending"]:
            on_signal(signum, frame)

    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and state["raised"]:
            state["raised"], state["pending"] = False, True  # swallowed: raise it again shortly
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        previous_hook(unraisable)

    # Without a handler SIGHUP ends the process at once (exit 129) and its trial stays RUNNING until
    # the heartbeat gives up on it. Under `nohup` it is ignored, and stays so: that is what was asked.
    hangup = [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN else []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, *hangup, signal.SIGALRM)}
    for sig in (signal.SIGINT, signal.SIGTERM, *hangup):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    sys.unraisablehook = on_unraisable
    watchdog = _Watchdog(state, say, farewell)
    _states.append(state)
    try:
        yield
    finally:
        _states.remove(state)
        watchdog.close()
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _never_failing(say: Callable[[str], None]) -> Callable[[str], None]:
    """`say`, made silent where it cannot write: after a SIGHUP the terminal is gone and writing to it
    raises (EIO), which inside a signal handler or the watchdog would stop the stop itself."""

    def safe(text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: a closed stream
            say(text)

    return safe


class _Watchdog:
    """Hears SIGINT, SIGTERM and SIGHUP as they arrive (the C-level handler writes their numbers to a pipe)
    and stops the process when the main thread has not taken one within `STUCK_SECONDS`."""

    def __init__(self, state: dict, say: Callable[[str], None], farewell: str):
        self.state, self.say, self.farewell = state, say, farewell
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.closed = threading.Event()
        threading.Thread(target=self._watch, name="interrupt-watchdog", daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)  # ends the watchdog's read

    def _taken(self) -> bool:
        return self.state["raised"] or self.state["pending"]

    def _watch(self) -> None:
        try:
            while not self.closed.is_set():
                heard = os.read(self.read_fd, 64)
                if not heard:
                    return
                if not set(heard) & set(REASONS) or self._taken():
                    continue
                deadline = time.monotonic() + STUCK_SECONDS
                while time.monotonic() < deadline and not self._taken() and not self.closed.is_set():
                    time.sleep(0.1)
                if not self._taken() and not self.closed.is_set():
                    self._stop()
        finally:
            os.close(self.read_fd)

    def _stop(self) -> None:
        self.state["raised"] = True  # the main thread, should it wake, ignores further signals
        self.say("stopping now: training is inside one long step that cannot be interrupted")

        def run_actions() -> None:
            for action in reversed(list(_hard_stop_actions)):
                with contextlib.suppress(BaseException):
                    action()

        actions = threading.Thread(target=run_actions, name="hard-stop", daemon=True)
        actions.start()
        actions.join(HARD_STOP_SECONDS)
        if self.farewell:
            self.say(self.farewell)
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # a progress display hid the cursor; nothing else will show it
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(130)
