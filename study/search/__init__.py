"""The search: samplers and pruners, one trial, a sweep to its target, worker processes, replicates and what a running sweep reports."""
