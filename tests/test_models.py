"""build_model: every cell x depth x bidirectional builds, with the expected shapes and sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from study.spec.hyperparameters import CELLS
from study.train.models import XLA_MIN_SEQUENCE_STEPS, build_model, cudnn_eligible, resolve_jit_compile
from study.train.sizes import ModelSpec

DIGITS = ModelSpec(input_shape=(8, 8), kind="multiclass", num_classes=10)
SINE = ModelSpec(input_shape=(10, 1), kind="regression")
TEXT = ModelSpec(input_shape=(20,), kind="binary", vocab_size=50)


@pytest.mark.parametrize("cell, depth, bidirectional", itertools.product(CELLS, [1, 2], [False, True]))
def test_every_cell_depth_and_direction_builds(cell, depth, bidirectional):
    params = {"cell": cell, "units": 4, "depth": depth, "bidirectional": bidirectional}
    model = build_model(DIGITS, params)
    recurrent = [layer for layer in model.layers if layer.__class__.__name__ in (cell, "Bidirectional")]
    assert len(recurrent) == depth
    out = model.predict(np.zeros((3, 8, 8), "float32"), verbose=0)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)  # softmax over classes


def recurrent_weights(cell: str, units: int, inputs: int) -> int:
    # Keras GRU uses reset_after=True: two bias vectors per gate.
    gates, biases = {"SimpleRNN": (1, 1), "GRU": (3, 2), "LSTM": (4, 1)}[cell]
    return gates * (units * (inputs + units) + biases * units)


@pytest.mark.parametrize("cell", CELLS)
def test_parameter_count_matches_the_cell_formula(cell):
    model = build_model(DIGITS, {"cell": cell, "units": 16})
    dense = 16 * 10 + 10
    assert model.count_params() == recurrent_weights(cell, 16, 8) + dense


def test_stacked_bidirectional_sizes_add_up():
    model = build_model(DIGITS, {"cell": "GRU", "units": 6, "depth": 2, "bidirectional": True})
    first = 2 * recurrent_weights("GRU", 6, 8)
    second = 2 * recurrent_weights("GRU", 6, 12)  # the second layer reads both directions
    assert model.count_params() == first + second + (12 * 10 + 10)


def kinds(model) -> list[str]:
    return [layer.__class__.__name__ for layer in model.layers]


def test_output_and_dense_dropout_and_dense_layer_like_seed_002():
    model = build_model(DIGITS, {"cell": "LSTM", "units": 32, "activation": "relu", "dense_units": 64,
                                 "output_dropout": 0.2, "dense_dropout": 0.3})
    assert kinds(model) == ["LSTM", "Dropout", "Dense", "Dropout", "Dense"]
    assert [model.layers[i].rate for i in (1, 3)] == [0.2, 0.3]
    assert model.layers[0].activation.__name__ == "relu"


def test_output_dropout_follows_every_recurrent_layer_and_leaves_the_cells_alone():
    model = build_model(DIGITS, {"cell": "GRU", "units": 4, "depth": 3, "bidirectional": True, "output_dropout": 0.4})
    assert kinds(model) == ["Bidirectional", "Dropout"] * 3 + ["Dense"]
    for layer in model.layers[:6:2]:
        assert layer.forward_layer.dropout == 0 and layer.forward_layer.recurrent_dropout == 0


def test_input_and_recurrent_dropout_live_inside_the_cells_only():
    model = build_model(DIGITS, {"cell": "LSTM", "units": 4, "depth": 2, "input_dropout": 0.3, "recurrent_dropout": 0.1})
    assert kinds(model) == ["LSTM", "LSTM", "Dense"]  # no Dropout layer
    assert [(layer.dropout, layer.recurrent_dropout) for layer in model.layers[:2]] == [(0.3, 0.1)] * 2


def test_dense_dropout_alone_follows_only_the_dense_layer():
    model = build_model(DIGITS, {"cell": "SimpleRNN", "units": 4, "dense_units": 8, "dense_dropout": 0.5})
    assert kinds(model) == ["SimpleRNN", "Dense", "Dropout", "Dense"]


def test_params_recorded_before_issue_17_are_built_with_their_old_meaning():
    # `dropout` was the in-cell input dropout; `head_dropout` a Dropout after the stack and after the dense layer.
    old = build_model(DIGITS, {"cell": "LSTM", "units": 4, "depth": 2, "dropout": 0.3, "dense_units": 8,
                               "head_dropout": 0.2})
    assert kinds(old) == ["LSTM", "LSTM", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.dropout for layer in old.layers[:2]] == [0.3, 0.3]
    assert [old.layers[i].rate for i in (2, 4)] == [0.2, 0.2]


def test_text_model_has_an_embedding_and_a_sigmoid_output():
    model = build_model(TEXT, {"cell": "GRU", "units": 4, "embedding_dim": 7})
    assert model.layers[0].__class__.__name__ == "Embedding"
    assert model.layers[0].output_dim == 7
    out = model.predict(np.ones((2, 20), "int32"), verbose=0)
    assert out.shape == (2, 1) and np.all((out > 0) & (out < 1))
    assert model.loss == "binary_crossentropy"


def test_regression_model_is_linear_with_mse():
    model = build_model(SINE, {"cell": "LSTM", "units": 5, "optimizer": "sgd", "learning_rate": 0.01, "clipnorm": 1.0})
    assert model.loss == "mse"
    assert model.layers[-1].activation.__name__ == "linear"
    assert model.optimizer.__class__.__name__ == "SGD"
    assert model.optimizer.clipnorm == 1.0
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_build_is_pure_same_params_same_architecture():
    params = {"cell": "GRU", "units": 8, "depth": 2, "input_dropout": 0.1}
    before = dict(params)
    first, second = build_model(DIGITS, params), build_model(DIGITS, params)
    assert params == before  # the caller's dict is not modified
    assert first.count_params() == second.count_params()
    assert [l.get_config()["units"] for l in first.layers[:2]] == [l.get_config()["units"] for l in second.layers[:2]]


def test_cudnn_eligibility_follows_keras_rules():
    assert cudnn_eligible({"cell": "GRU", "activation": "tanh", "recurrent_dropout": 0.0})
    assert not cudnn_eligible({"cell": "GRU", "activation": "relu", "recurrent_dropout": 0.0})
    assert not cudnn_eligible({"cell": "LSTM", "activation": "tanh", "recurrent_dropout": 0.2})
    assert not cudnn_eligible({"cell": "SimpleRNN", "activation": "tanh", "recurrent_dropout": 0.0})



@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_recurrent_dropout_cells_give_up_cudnn_so_a_gpu_can_compile_them_with_xla(cell):
    # Keras' "auto" marks a tanh GRU/LSTM model as not XLA-compilable on a GPU for the cuDNN op it
    # might use; with recurrent dropout it never uses it, so `use_cudnn=False` must say so.
    dropped = build_model(DIGITS, {"cell": cell, "units": 4, "depth": 2, "recurrent_dropout": 0.2})
    kept = build_model(DIGITS, {"cell": cell, "units": 4, "depth": 2, "bidirectional": True})
    assert [layer.use_cudnn for layer in dropped.layers[:2]] == [False, False]
    assert [layer.forward_layer.use_cudnn for layer in kept.layers[:2]] == ["auto", "auto"]
    assert cudnn_eligible(kept_params := {"cell": cell, "activation": "tanh", "recurrent_dropout": 0.0})
    assert not cudnn_eligible({**kept_params, "recurrent_dropout": 0.2})

@pytest.mark.parametrize("spec", [DIGITS, SINE, TEXT], ids=["multiclass", "regression", "text"])
@pytest.mark.parametrize("params", [
    {"cell": "SimpleRNN", "units": 7},
    {"cell": "GRU", "units": 5, "depth": 3, "bidirectional": True},
    {"cell": "LSTM", "units": 9, "depth": 2, "dense_units": 6, "embedding_dim": 4},
])
def test_parameter_count_formula_matches_keras(spec, params):
    from study.train.sizes import parameter_count

    assert parameter_count(spec, params) == build_model(spec, params).count_params()


def test_units_for_budget_matches_sizes_across_cells():
    from study.train.sizes import parameter_count, units_for_budget

    budget = 20_000
    units = {cell: units_for_budget(DIGITS, {"cell": cell}, budget) for cell in CELLS}
    assert units["SimpleRNN"] > units["GRU"] > units["LSTM"]  # bigger cells get fewer units
    for cell, n in units.items():
        size = parameter_count(DIGITS, {"cell": cell, "units": n})
        neighbours = [parameter_count(DIGITS, {"cell": cell, "units": n + d}) for d in (-1, 1)]
        assert all(abs(size - budget) <= abs(other - budget) for other in neighbours)
        assert abs(size - budget) / budget < 0.05


def test_jit_compile_is_passed_to_keras():
    assert build_model(DIGITS, {"cell": "GRU", "units": 4}, jit_compile=True).jit_compile is True
    assert build_model(DIGITS, {"cell": "GRU", "units": 4}, jit_compile=False).jit_compile is False


def test_auto_xla_is_on_for_long_gru_trials_on_cpu_only():
    gru, lstm = {"cell": "GRU"}, {"cell": "LSTM"}
    long, short = XLA_MIN_SEQUENCE_STEPS, XLA_MIN_SEQUENCE_STEPS - 1
    assert resolve_jit_compile("auto", gru, long, gpu=False) is True
    assert resolve_jit_compile("auto", gru, short, gpu=False) is False
    assert resolve_jit_compile("auto", lstm, long, gpu=False) is False  # no faster under XLA on CPU
    assert resolve_jit_compile("auto", lstm, short, gpu=True) == "auto"  # Keras' own: XLA on a GPU
    assert resolve_jit_compile(False, gru, long, gpu=False) is False  # the user's choice wins
    assert resolve_jit_compile(True, lstm, short, gpu=False) is True


@pytest.mark.slow  # XLA compiles for ~20 s on 2 cores
def test_xla_compiles_every_gru_variant_auto_may_pick():
    params = {"cell": "GRU", "units": 4, "depth": 2, "bidirectional": True, "input_dropout": 0.2,
              "recurrent_dropout": 0.1, "output_dropout": 0.2, "dense_units": 8, "dense_dropout": 0.2,
              "embedding_dim": 4}
    model = build_model(TEXT, params, jit_compile=True)
    x, y = np.random.default_rng(0).integers(1, 50, (16, 20)), np.arange(16) % 2
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.jit_compile is True and np.isfinite(history.history["loss"][0])


@pytest.mark.slow  # a fresh Python that imports TensorFlow: ~12 s each on 2 cores
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_thread_settings_are_applied_in_a_fresh_process(how):
    import os
    import subprocess
    import sys

    code = ("from study.search.trial import configure_threads; import tensorflow as tf; "
            f"configure_threads({'2' if how == 'argument' else 'None'}); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    env = {**os.environ, "RNN_STUDY_THREADS": "2"} if how == "environment" else dict(os.environ)
    env.pop("RNN_STUDY_THREADS", None) if how == "argument" else None
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["2", "2"], done.stderr[-2000:]
