"""TensorFlow and Keras, loaded once per process, quietly and with this project's settings.

Every module that builds, trains or loads a model takes Keras from here (`from study.train.backend
import keras`), so whichever comes first loads TensorFlow the same way:

- GPU memory growth on: several processes on one GPU (`--jobs N`, several `study worker`s) each
  take memory as they need it instead of the first reserving nearly all of it;
- TensorFlow's native start-up notices filtered out of the process's stderr. On a machine without
  an NVIDIA GPU the `tensorflow` package writes "Could not find cuda drivers on your machine" (twice)
  and "failed call to cuInit: ... UNKNOWN ERROR (303)" from C++ before its logging is set up, so
  `TF_CPP_MIN_LOG_LEVEL` cannot silence them, and they read like a crash to a CPU user. Every other
  line written while TensorFlow loads is passed on, after it has loaded. The same goes for the
  "oneDNN custom operations are on" notice (twice per process, `I0000`, which
  `TF_CPP_MIN_LOG_LEVEL=2` does not silence either): it says results may differ in the last digits
  from a build without oneDNN, which `study rerun` already measures;
- TensorFlow's "triggered tf.function retracing" warnings dropped: a report predicts with several
  saved models of different shapes, one after another, which retraces by design; every other
  TensorFlow warning still shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from typing import Iterator

# CPU-feature and oneDNN notices at import say nothing actionable here; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

START_UP_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc|rebuild TensorFlow with the appropriate compiler flags"
    r"|oneDNN custom operations are on"
)


@contextlib.contextmanager
def start_up_notices_filtered() -> Iterator[None]:
    """Hold what is written to file descriptor 2 meanwhile, then pass on all but START_UP_NOTICES.

    The notices come from native code writing to the descriptor, not through `sys.stderr`, so the
    descriptor itself is pointed at a temporary file for the duration.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not START_UP_NOTICES.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


with start_up_notices_filtered():
    import keras  # noqa: E402 - after the environment above, which TensorFlow reads as it loads
    import tensorflow as tf  # noqa: E402

    # TensorFlow looks for a GPU driver (cuInit) the first time devices are listed: here, filtered.
    # Listing devices does not start the runtime, so thread settings made later still apply.
    _GPUS = tf.config.list_physical_devices("GPU")


class _WithoutRetracingWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_WithoutRetracingWarnings())


def gpu_available() -> bool:
    return bool(_GPUS)


__all__ = ["keras", "tf", "gpu_available", "start_up_notices_filtered"]
