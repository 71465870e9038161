"""Training: TensorFlow and Keras loaded once, the tasks' data, model building, the fit loop with traced models reused, and stopping cleanly."""
