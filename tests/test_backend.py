"""TensorFlow loaded once, quietly: its native start-up notices are dropped, every other line kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from study.train.backend import start_up_notices_filtered


def test_start_up_notices_are_dropped_and_every_other_line_is_passed_on(capfd):
    with start_up_notices_filtered():
        # What the tensorflow package writes from C++ on a machine without an NVIDIA driver.
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795885097.611327 16051 cudart_stub.cc:31] Could not find cuda drivers on your "
                    b"machine, GPU will not be used.\n")
        os.write(2, b"E0000 00:00:1795885100.848130 16051 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
                    b"CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"E0000 something that really went wrong\n")
        os.write(2, b"UserWarning: a Python warning\n")
    assert capfd.readouterr().err == "E0000 something that really went wrong\nUserWarning: a Python warning\n"


def test_loading_tensorflow_through_study_prints_no_notice():
    loaded = subprocess.run([sys.executable, "-c", "import study.train.backend as b; print(b.gpu_available())"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": ""})
    assert loaded.returncode == 0 and loaded.stdout.strip() in ("True", "False"), loaded.stderr
    assert "cuda" not in loaded.stderr.lower() and "InitializeLog" not in loaded.stderr, loaded.stderr


TENSORFLOW_NOTICES = ("I0000", "E0000", "W0000", "WARNING:tensorflow", "oneDNN", "retracing")


def test_a_sweep_and_its_report_print_no_tensorflow_notice(tiny_sweep, tmp_path):
    """What a user sees from the two main commands, run as they run them: our lines only."""
    sweep = tiny_sweep(trials=3)
    study_command = Path(sys.executable).with_name("study")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "RNN_STUDY_STORAGE", "MLFLOW_TRACKING_URI")}
    for args in (["sweep", str(sweep)], ["report", sweep.stem, "--out", str(tmp_path / "report")]):
        done = subprocess.run([str(study_command), *args], capture_output=True, text=True, timeout=600,
                              cwd=tmp_path, env=environment)
        assert done.returncode == 0, done.stdout + done.stderr
        printed = done.stdout + done.stderr
        assert not [line for line in printed.splitlines() if any(word in line for word in TENSORFLOW_NOTICES)], printed


def test_retracing_warnings_are_dropped_and_other_tensorflow_warnings_kept():
    import logging

    from study.train.backend import tf

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        tf.get_logger().warning("5 out of the last 5 calls to <function f> triggered tf.function retracing. ...")
        tf.get_logger().warning("a warning that matters")
    finally:
        tf.get_logger().removeHandler(handler)
    assert seen == ["a warning that matters"]
