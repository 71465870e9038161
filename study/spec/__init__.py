"""What a study is: sweep and suite files, hyperparameters, tasks and settings from the environment (no TensorFlow, Optuna or MLflow)."""
