"""TensorFlow's and Keras' private parts this project relies on, each behind one small function.

Checked against TensorFlow 2.21.0 and Keras 3.15.1; `tests/test_private_apis.py` fails when one of
them changes. These are the names the model cache (`study.train.reuse`) needs to reuse a traced
model across trials: TensorFlow's kernel cache (`tensorflow.python.eager.context` and
`pywrap_tfe.TFE_ContextClearCaches`, which Keras' `clear_session()` and `set_random_seed()` call) and
Keras' `Model._symbolic_build`. Nothing else in the package uses a private TensorFlow or Keras name.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


def clear_kernel_cache() -> None:
    """`context.context().clear_kernel_cache()`: drop the kernels TensorFlow instantiated so far
    (the traced steps of models no longer kept), with the state of stateful kernels."""
    from tensorflow.python.eager import context

    context.context().clear_kernel_cache()


@contextlib.contextmanager
def kernel_cache_clearing_disabled() -> Iterator[None]:
    """Make `pywrap_tfe.TFE_ContextClearCaches`, through which every clearing of TensorFlow's kernel
    cache goes (`Context.clear_kernel_cache`), do nothing meanwhile; restored on the way out."""
    from tensorflow.python import pywrap_tfe

    clear = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear


def build_optimizer_and_metrics(model: Any, batch: tuple) -> bool:
    """`Model._symbolic_build(data_batch=)`: create a compiled model's optimizer, loss and metric
    variables from one batch, before its first training step is traced. Skipped if Keras no longer
    has it (the variables are then created while tracing, as Keras does by itself); returns whether
    it ran."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None:
        return False
    symbolic_build(data_batch=batch)
    return True
