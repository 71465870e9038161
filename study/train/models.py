"""Model building: a pure function from (task shape, hyperparameters) to a compiled Keras 3 model.

`build_model` depends only on its arguments, so the best trial of any study can be rebuilt from its
recorded params. The architecture is the one every lab notebook writes by hand:

    [Embedding] -> depth x ({SimpleRNN | GRU | LSTM} [Bidirectional] -> [Dropout(output_dropout)])
    -> [Dense(relu) -> [Dropout(dense_dropout)]] -> output (softmax classes | sigmoid | linear)

`input_dropout` and `recurrent_dropout` live inside each cell (Keras `dropout=` and
`recurrent_dropout=`); the other two are Dropout layers. Params recorded before issue 17 may say
`dropout` or `head_dropout`; they are built with their old meaning (see `study.spec.hyperparameters.LEGACY_DROPOUTS`).
"""

from __future__ import annotations

from typing import Any

from study.train.backend import keras
from study.train.sizes import ModelSpec, with_defaults


RECURRENT_LAYERS = {"SimpleRNN": keras.layers.SimpleRNN, "GRU": keras.layers.GRU, "LSTM": keras.layers.LSTM}

OUTPUTS = {
    # kind: (output activation, loss, metrics)
    "multiclass": ("softmax", "sparse_categorical_crossentropy", ["accuracy"]),
    "binary": ("sigmoid", "binary_crossentropy", ["accuracy"]),
    "regression": (None, "mse", ["mae"]),
}


def build_model(spec: ModelSpec, params: dict[str, Any], jit_compile: bool | str = "auto") -> keras.Model:
    """Build and compile the model described by `params` (see `study.spec.hyperparameters.HYPERPARAMETERS`).

    `jit_compile` is how the model is run, not what it is: True compiles training with XLA,
    "auto" leaves it to Keras (which keeps XLA off on CPU-only TensorFlow); a sweep's own "auto"
    is settled per trial by `resolve_jit_compile` first.
    """
    p = with_defaults(params, spec)
    layers: list[keras.layers.Layer] = [keras.Input(shape=spec.input_shape)]
    if spec.vocab_size is not None:
        layers.append(keras.layers.Embedding(spec.vocab_size, p["embedding_dim"]))

    # A trial recorded before issue 17 is rebuilt as it was trained: its `dropout` was the input
    # dropout, its `head_dropout` a Dropout after the stack and after the dense layer.
    input_dropout = p.get("dropout", p["input_dropout"])
    head_dropout = p.get("head_dropout", 0.0)

    # A GRU/LSTM with recurrent dropout never runs cuDNN's kernel, but under Keras' "auto" a tanh one
    # still turns the model's XLA off on a GPU (for the cuDNN op it might have used): it would get
    # neither. Saying so lets XLA compile it; the computation is the same step-by-step loop.
    cudnn = {"use_cudnn": False} if p["cell"] != "SimpleRNN" and p["recurrent_dropout"] > 0 else {}
    for index in range(p["depth"]):
        recurrent = RECURRENT_LAYERS[p["cell"]](
            p["units"],
            activation=p["activation"],
            dropout=input_dropout,
            recurrent_dropout=p["recurrent_dropout"],
            # Every layer but the last passes its whole sequence to the next one.
            return_sequences=index < p["depth"] - 1,
            **cudnn,
        )
        layers.append(keras.layers.Bidirectional(recurrent) if p["bidirectional"] else recurrent)
        if p["output_dropout"] > 0:
            layers.append(keras.layers.Dropout(p["output_dropout"]))

    if head_dropout > 0:
        layers.append(keras.layers.Dropout(head_dropout))
    if p["dense_units"] > 0:
        layers.append(keras.layers.Dense(p["dense_units"], activation="relu"))
        if p["dense_dropout"] > 0 or head_dropout > 0:
            layers.append(keras.layers.Dropout(p["dense_dropout"] or head_dropout))

    activation, loss, metrics = OUTPUTS[spec.kind]
    outputs = spec.num_classes if spec.kind == "multiclass" else 1
    layers.append(keras.layers.Dense(outputs, activation=activation))

    model = keras.Sequential(layers, name=f"{p['cell']}_{p['units']}x{p['depth']}")
    model.compile(optimizer=make_optimizer(p), loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model


def make_optimizer(params: dict[str, Any]) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    clipnorm = params["clipnorm"] or None  # 0 means "no clipping"; Keras wants None for that
    return optimizers[params["optimizer"]](learning_rate=params["learning_rate"], clipnorm=clipnorm)


# On CPU, XLA runs a GRU's epochs up to ~2x faster but first compiles every new model (~5 s, and
# every trial builds one). benchmarks/xla.py measured the break-even at 1.9-2.7 million sequence
# steps trained (GRU-64 on MNIST-1D and on Fashion-MNIST rows); SimpleRNN needed 5.6-14 million,
# LSTM gained only on short sine windows and lost on Fashion rows. Above the GRU break-even with a
# margin for run-to-run noise:
XLA_MIN_SEQUENCE_STEPS = 4_000_000


def resolve_jit_compile(setting: bool | str, params: dict[str, Any], sequence_steps: int, gpu: bool) -> bool | str:
    """What one trial passes to Keras' `compile(jit_compile=...)` for the sweep's `jit_compile`.

    True and False are the user's choice. "auto" on a GPU is Keras' own auto (XLA on); on CPU it
    turns XLA on for GRU trials that train enough to repay compiling: `sequence_steps`
    (training sequences x time steps x epochs) of at least XLA_MIN_SEQUENCE_STEPS.
    """
    if setting != "auto":
        return setting
    if gpu:
        return "auto"
    return params.get("cell") == "GRU" and sequence_steps >= XLA_MIN_SEQUENCE_STEPS


def cudnn_eligible(params: dict[str, Any]) -> bool:
    """Whether Keras can use the fused cuDNN kernel for this configuration on a GPU.

    Keras picks cuDNN for GRU/LSTM only with the default activations (tanh), no recurrent
    dropout and no unrolling; SimpleRNN never has a cuDNN kernel.
    """
    return (
        params.get("cell") in ("GRU", "LSTM")
        and params.get("activation", "tanh") == "tanh"
        and params.get("recurrent_dropout", 0.0) == 0
    )
