"""The two stores: where they live and how they are checked, Optuna's trials read back, MLflow runs written and read, and the doctor."""
