"""Training: TensorFlow and Keras loaded once, the tasks' data, model building, and stopping cleanly."""
