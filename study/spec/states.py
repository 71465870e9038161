"""Trial states: the ones a trial can end in, which of them count as finished, and the MLflow run
status each one ends its run with.

A trial is finished when it used its epoch budget or was stopped early on purpose (COMPLETE or
PRUNED): those count toward a sweep's target; a failed trial (FAIL) does not, and is run again.
"""

from __future__ import annotations

TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")  # Optuna's names, in the order tables show them
FINISHED_STATES = ("COMPLETE", "PRUNED")
MLFLOW_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}  # a trial run's end status


def finished_count(counts: dict[str, int]) -> int:
    """How many trials of `counts` (state name -> number) are finished."""
    return sum(counts.get(state, 0) for state in FINISHED_STATES)
