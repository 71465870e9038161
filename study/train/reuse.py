"""Reusing traced models: a later trial of an architecture trains the model an earlier trial traced.

A trial builds its model as always; when a model of the same architecture is kept from an earlier
trial in this process, that model is loaded with the new one's initial state and trained instead,
so its training and test steps are not traced again (`TracedModels`). It relies on TensorFlow's
kernel cache and a Keras internal, through `study.train.tensorflow_private`.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from typing import Iterator

import numpy as np

from study.train.backend import keras
from study.train.tensorflow_private import build_optimizer_and_metrics, clear_kernel_cache, kernel_cache_clearing_disabled


class TracedModels:
    """Compiled models whose training and test steps are traced, kept for later trials of the same
    architecture in this process (the least recently used dropped beyond `size`).

    Tracing and instantiating a new model's steps is most of what a trial costs besides its epochs
    (~1 s of a MNIST-1D trial, benchmarks/fixed_cost.py). A trial builds its model as always (so its initial
    weights come from its seed exactly as before); when a kept model has the same architecture
    (everything but the learning rate, which Keras holds in a variable), that model is loaded with
    the new one's whole initial state (weights, dropout seed states, a fresh optimizer with the
    new learning rate) and trained instead: the same computation, without tracing it again.
    """

    def __init__(self, size: int):
        self.size = size
        self.models: OrderedDict[str, keras.Model] = OrderedDict()

    def take(self, fresh: keras.Model, batch: tuple[np.ndarray, np.ndarray]) -> tuple[keras.Model, str]:
        """The model to train for `fresh` and its architecture key: a kept model holding `fresh`'s
        initial state, else `fresh` itself, with its optimizer and metric state built up front."""
        key = architecture(fresh)
        kept = self.models.pop(key, None)  # out of the cache while it trains; `keep` puts it back
        if kept is not None:
            fresh.optimizer.build(fresh.trainable_variables)  # Keras' own initial optimizer state
            if _state_layout(kept) == _state_layout(fresh):
                for target, source in zip([*kept.variables, *kept.optimizer.variables],
                                          [*fresh.variables, *fresh.optimizer.variables]):
                    target.assign(source.value)
                return kept, key
        # A new model: the steps TensorFlow instantiated for models no longer kept can go.
        clear_kernel_cache()
        # Keras otherwise creates the optimizer and metric variables while tracing the first training
        # step, and TensorFlow traces a function whose first call created variables a second time.
        build_optimizer_and_metrics(fresh, batch)
        return fresh, key

    def keep(self, key: str, model: keras.Model) -> None:
        self.models[key] = model
        self.models.move_to_end(key)
        while len(self.models) > self.size:
            self.models.popitem(last=False)

    def clear(self) -> None:
        self.models.clear()


# A search usually varies a few architecture choices (cell x units: 6 in benchmarks/sweeps/pruning.yaml);
# a kept MNIST-1D model takes a few MiB, mostly its traced graphs.
TRACED_MODELS = TracedModels(size=8)


@contextlib.contextmanager
def kernel_cache_kept() -> Iterator[None]:
    """Keep TensorFlow's kernel cache through Keras' `clear_session()` and `set_random_seed()`.

    Both clear it (with the state of stateful kernels, which this project's models do not use:
    Keras 3 draws dropout masks from seeded stateless ops). It holds the instantiated steps of the
    kept models, which a reused model's first epoch would otherwise instantiate and optimise again
    (~0.4 s of CPU on MNIST-1D). `TracedModels.take` clears it when a trial builds a new model.
    """
    with kernel_cache_clearing_disabled():
        yield


def architecture(model: keras.Model) -> str:
    """What decides a compiled model's traced steps: its layers, its optimizer's settings but the
    learning rate, its loss, metrics and XLA setting."""
    optimizer = {k: v for k, v in model.optimizer.get_config().items() if k != "learning_rate"}
    compiled = {k: v for k, v in model.get_compile_config().items() if k != "optimizer"}
    return json.dumps([model.get_config(), type(model.optimizer).__name__, optimizer, compiled, model.jit_compile],
                      sort_keys=True, default=repr)


def _state_layout(model: keras.Model) -> list[tuple[str, tuple, str]]:
    return [(v.path, tuple(v.shape), str(v.dtype)) for v in [*model.variables, *model.optimizer.variables]]
