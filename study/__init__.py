"""rnn-study: tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies.

The modules, in the order data flows through them: `config` (sweep files), `data` (tasks),
`models` (build_model), `trial` (one training run), `sweep` (the Optuna study), `tracking`
(MLflow), `cli` (the `study` command).
"""

__version__ = "0.1.0"
