"""rnn-study: tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies.

The subpackages, from the bottom floor up (each imports only those below it; POSIX only):

- `spec`: sweep files, their validation, and the environment variables that override them
- `train`: TensorFlow loaded once, tasks as arrays, `build_model(spec, params)`, clean stops
- `store`: the two store URLs and the study lock; Optuna's trials read back; MLflow runs; the doctor
- `search`: samplers and pruners, one trial, a sweep to its target, workers, replicates, progress
- `analysis`: scoring rules, statistics, the verdict, the same across tasks
- `reporting`: tables, figures, the report page, the cross-task page, the seeds side by side
- `app`: the `study` command and suites
"""

__version__ = "0.1.0"
