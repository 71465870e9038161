"""rnn-study: tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies.

The public Python API (`study.app.api`), loaded on first use so `import study` is instant and
changes nothing (no logger, warning filter or environment variable):

    import study
    result = study.run_sweep("sweeps/quick.yaml", jobs=2)   # or a dict, or a loaded Sweep
    study.trials("quick"); study.history("quick")           # DataFrames
    rep = study.report("quick")                             # rep.verdict, rep.tables["best"], rep.figures
    study.doctor("quick")

The subpackages, from the bottom floor up (each imports only those below it; POSIX only):

- `spec`: sweep files, their validation, and the environment variables that override them
- `train`: TensorFlow loaded once, tasks as arrays, `build_model(spec, params)`, clean stops
- `store`: the two store URLs and the study lock; Optuna's trials read back; MLflow runs; the doctor
- `search`: samplers and pruners, one trial, a sweep to its target, workers, replicates, progress
- `analysis`: scoring rules, statistics, the verdict, the same across tasks
- `reporting`: tables, figures, the report page, the cross-task page, the seeds side by side
- `app`: the `study` command, suites and this API
"""

__version__ = "0.1.0"

__all__ = ["run_sweep", "load", "trials", "history", "report", "doctor", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from study.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
