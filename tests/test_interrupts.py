"""Ctrl-C and SIGTERM: the interrupt carries its reason, and a main thread stuck in native code is
stopped within seconds by the watchdog (`study.train.interrupts`), with its hard-stop actions run first.

Each case runs in a small Python process of its own (signals and `os._exit` are process-wide);
none imports TensorFlow, so the file takes a few seconds. The same stop inside a real TensorFlow
step of a real sweep is `tests/test_workers.py::test_ctrl_c_inside_one_long_training_step_...`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from study.train.interrupts import REASONS, STUCK_SECONDS

PRELUDE = """
import os, signal, sys, threading, time
from study.train.interrupts import graceful_interrupts, on_hard_stop, request_stop
say = lambda text: print("said:", text, flush=True)
"""


def start(body: str) -> subprocess.Popen:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen, line: str) -> None:
    while True:
        got = process.stdout.readline()
        assert got, f"exited before printing {line!r}: {process.stderr.read()}"
        if got.strip() == line:
            return


def test_an_interrupt_in_python_code_is_raised_with_its_reason_and_no_hard_stop():
    process = start("""
        try:
            with graceful_interrupts(say, farewell="bye"), on_hard_stop(lambda: print("hard stop", flush=True)):
                print("ready", flush=True)
                while True:
                    time.sleep(0.01)  # Python code: the handler runs at once
        except KeyboardInterrupt as err:
            print("raised:", err.reason, flush=True)
        time.sleep(2 * float(sys.argv[1]))  # long enough for a wrongly armed watchdog to fire
        print("exited normally", flush=True)
    """.replace("sys.argv[1]", repr(STUCK_SECONDS)))
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert f"raised: {REASONS[signal.SIGTERM]}" in out
    assert "hard stop" not in out and "bye" not in out and "exited normally" in out


def test_a_stop_requested_from_another_thread_carries_its_own_reason():
    process = start("""
        try:
            with graceful_interrupts(say):
                threading.Timer(0.2, request_stop, ["its parent ended"]).start()
                time.sleep(30)
        except KeyboardInterrupt as err:
            print("raised:", err.reason, flush=True)
    """)
    out, err = process.communicate(timeout=60)
    assert "raised: its parent ended" in out, out + err


def test_ctrl_c_inside_a_long_native_call_stops_the_process_within_seconds():
    # The main thread blocks SIGINT and sleeps: as inside one long TensorFlow step, Python's
    # handler cannot run there, only the C-level one (in another thread) that wakes the watchdog.
    process = start("""
        with graceful_interrupts(say, farewell="error: interrupted; resume with: study sweep x.yaml"):
            with on_hard_stop(lambda: print("outer action", flush=True)):
                with on_hard_stop(lambda: print("inner action", flush=True)):
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                    # "ready" once the main thread sleeps: a signal that came while it still ran
                    # bytecode (even delivered to another thread) would be taken there, as it should.
                    threading.Timer(0.5, print, ["ready"], {"flush": True}).start()
                    time.sleep(120)
        print("the call returned", flush=True)
    """)
    wait_for_line(process, "ready")
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert process.returncode == 130, (process.returncode, took, out, err)
    assert STUCK_SECONDS - 0.5 < took < STUCK_SECONDS + 5, took
    lines = [line for line in out.splitlines() if line]
    assert lines == [
        "said: stopping now: training is inside one long step that cannot be interrupted",
        "inner action", "outer action",  # newest first: the trial before the sweep's parent run
        "said: error: interrupted; resume with: study sweep x.yaml",
    ], out + err
    assert "the call returned" not in out and "Traceback" not in err
    print(f"\nhard stop {took:.1f} s after Ctrl-C (goal: within {STUCK_SECONDS:.0f} s + the actions)")



def test_an_interrupt_that_native_code_turned_into_another_exception_leaves_as_the_interrupt():
    # TensorFlow's C++ (pybind11) hands a KeyboardInterrupt raised in a Python callback back as a
    # RuntimeError; the stand-in below does the same, so no TensorFlow is needed here.
    process = start("""
        from study.train.interrupts import Interrupted, interrupts_kept_through_native_code

        def native_call(callback):
            # The whole loop runs "in native code", so the Ctrl-C cannot land between two calls.
            try:
                while True:
                    callback()
            except BaseException as err:
                raise RuntimeError(f"pybind11::error_already_set: REPLACED BY {type(err).__name__}") from None

        def callback():
            print("ready", flush=True)  # printed from inside: the signal is sent only after it
            time.sleep(0.01)

        try:
            with graceful_interrupts(say), interrupts_kept_through_native_code():
                native_call(callback)
        except BaseException as err:
            print("raised:", type(err).__name__, getattr(err, "reason", ""), flush=True)
            print("because:", type(err.__cause__).__name__, flush=True)
    """)
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert f"raised: Interrupted {REASONS[signal.SIGINT]}" in out, out + err
    assert "because: RuntimeError" in out, out + err


def test_other_errors_of_native_code_pass_through_unchanged():
    from study.train.interrupts import graceful_interrupts, interrupts_kept_through_native_code

    with graceful_interrupts(lambda text: None):
        try:
            with interrupts_kept_through_native_code():
                raise RuntimeError("a real failure")
        except RuntimeError as err:
            assert str(err) == "a real failure"
        else:
            raise AssertionError("the error was swallowed")
