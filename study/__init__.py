"""rnn-study: tracked, reproducible RNN vs GRU vs LSTM hyperparameter studies.

The modules, in the order data flows through them (each file has one job; POSIX only):

- `config`: sweep files, their validation, and the environment variables that override them
- `data`: tasks as train / validation / test arrays, loaded once per process
- `models`: `build_model(spec, params)`, a pure function of the hyperparameters
- `trial`: one training, scored by its best validation epoch, and how it is recorded
- `stores`: the two store URLs, checked and opened; the study lock; passwords masked
- `samplers`: per-trial draws, equal budgets (paired draws) and pruners
- `sweep`: running a sweep until its target, on one process or many; replicates after it
- `results`: reading studies back from Optuna as DataFrames
- `scoring`: the rules all tables share (score, direction, best trial per value)
- `tracking`: MLflow, the only module that talks to it
- `replicate`: retraining a recorded trial (rerun) or the best of each value (replicates)
- `stats`: means, intervals and tests over replicates and paired draws
- `verdict`: which value leads, on which evidence, how sure; `across`: the same over tasks
- `tables`, `figures`, `report_figures`, `report`: the lab report (files, plots, their data, the page)
- `report_across`, `suite`: the cross-task page, and running a comparison on several tasks
- `seeds`: the lab notebooks' figures beside their reproductions
- `interrupts`: Ctrl-C and SIGTERM stop a process between two writes, within seconds
- `progress`, `workers`, `cli`: what users see while sweeps run, local worker processes, the `study` command
"""

__version__ = "0.1.0"
