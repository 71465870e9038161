"""Model sizes, without Keras: the task's shape as the model builder needs it (`ModelSpec`), each
hyperparameter's default filled in, the exact trainable-parameter count `build_model` would give a
model, and the units that meet a parameter budget.

Pure arithmetic, so a sweep refuses a space whose largest model is too large before TensorFlow is
imported; `tests/test_models.py` checks each count against Keras' own for every cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from study.spec.hyperparameters import HYPERPARAMETERS

if TYPE_CHECKING:
    from study.train.data import TaskData


@dataclass(frozen=True)
class ModelSpec:
    """What the model needs to know about its task: input shape, output kind and vocabulary."""

    input_shape: tuple[int, ...]
    kind: str  # "multiclass" | "binary" | "regression"
    num_classes: int | None = None
    vocab_size: int | None = None


def with_defaults(params: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """Fill every hyperparameter the caller left out with its documented default."""
    is_text = spec.vocab_size is not None
    full = {name: dim.default for name, dim in HYPERPARAMETERS.items() if is_text or not dim.text_only}
    full.update(params)
    return full


def model_spec(data: TaskData) -> ModelSpec:
    """The task's shape as the model builder needs it."""
    return ModelSpec(
        input_shape=tuple(data.input_shape), kind=data.kind,
        num_classes=data.num_classes, vocab_size=data.vocab_size,
    )


GATES = {"SimpleRNN": (1, 1), "GRU": (3, 2), "LSTM": (4, 1)}  # (gates, bias vectors per gate)


def parameter_count(spec: ModelSpec, params: dict[str, Any]) -> int:
    """The trainable parameters `build_model(spec, params)` would have, without building it.

    Keras' GRU uses reset_after=True (two bias vectors per gate); a Bidirectional layer doubles
    its weights and its output width.
    """
    p = with_defaults(params, spec)
    gates, biases = GATES[p["cell"]]
    directions = 2 if p["bidirectional"] else 1
    count = 0
    if spec.vocab_size is not None:
        width = p["embedding_dim"]
        count += spec.vocab_size * width
    else:
        width = spec.input_shape[-1]
    for _ in range(p["depth"]):
        units = p["units"]
        count += directions * gates * (units * (width + units) + biases * units)
        width = directions * units
    if p["dense_units"] > 0:
        count += width * p["dense_units"] + p["dense_units"]
        width = p["dense_units"]
    outputs = spec.num_classes if spec.kind == "multiclass" else 1
    return count + width * outputs + outputs


def units_for_budget(spec: ModelSpec, params: dict[str, Any], budget: int) -> int:
    """The unit count whose model comes closest to `budget` parameters (for size-matched comparisons)."""
    best_units, best_gap = 1, float("inf")
    for units in range(1, 4097):
        gap = abs(parameter_count(spec, {**params, "units": units}) - budget)
        if gap < best_gap:
            best_units, best_gap = units, gap
        elif gap > best_gap:
            break  # the count grows with units, so the gap only widens from here
    return best_units
