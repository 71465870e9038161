"""The two stores: where they live and how they are checked, Optuna's trials read back, MLflow runs written and read, the doctor, and the private Optuna and MLflow APIs they rely on."""
