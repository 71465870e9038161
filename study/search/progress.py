"""Following a sweep: what a user interface is told while trials run, and the words it shows.

A sweep calls its reporter (`SweepReporter`) as trials start, finish epochs and end; the CLI's
progress bars (`study.app.cli.RichReporter`) and the plain one-line-per-trial log of `study worker`
(`LineReporter`) both describe a trial with `describe_params` and say the same `waiting_text`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol


class SweepReporter(Protocol):
    """What a user interface can follow of a sweep."""

    def sweep_started(self, study_name: str, finished: int, target: int) -> None: ...
    def trial_started(self, number: int, params: dict[str, Any], epochs: int) -> None: ...
    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None: ...
    def trial_ended(self, number: int, state: str, value: float | None, reason: str | None) -> None: ...
    def waiting(self, running: int, grace_seconds: int) -> None: ...
    def replicate_started(self, record: Any, index: int) -> None: ...  # record: study.store.trials.TrialRecord
    def decision_looked(self, look: Any) -> None: ...  # a `decide:` sweep's look: study.search.decision.Look


class SilentReporter:
    """A reporter that shows nothing (library callers, tests)."""

    def sweep_started(self, study_name: str, finished: int, target: int) -> None:
        pass

    def trial_started(self, number: int, params: dict[str, Any], epochs: int) -> None:
        pass

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        pass

    def trial_ended(self, number: int, state: str, value: float | None, reason: str | None) -> None:
        pass

    def waiting(self, running: int, grace_seconds: int) -> None:
        pass

    def replicate_started(self, record: Any, index: int) -> None:
        pass

    def decision_looked(self, look: Any) -> None:
        pass


class GuardedReporter:
    """A reporter whose failures never reach the sweep: the first error (a closed stdout, as in
    `study sweep ... | head -n 1`, where Rich raises SystemExit) silences it for the rest of the
    sweep, which goes on recording.
    A Ctrl-C is not an error and passes through."""

    def __init__(self, reporter: SweepReporter):
        self.reporter = reporter
        self.error: Exception | None = None

    def __getattr__(self, name: str) -> Callable[..., None]:
        method = getattr(self.reporter, name)

        def guarded(*args: Any, **kwargs: Any) -> None:
            if self.error is not None:
                return
            try:
                method(*args, **kwargs)
            except (Exception, SystemExit) as err:  # noqa: BLE001 - Rich raises SystemExit on a broken pipe
                self.error = err

        return guarded


def describe_params(params: dict[str, Any], names: list[str]) -> str:
    """`cell=GRU learning_rate=0.00312`: the named hyperparameters of one trial, floats to 3 digits."""
    parts = []
    for name in names:
        value = params.get(name)
        parts.append(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts) or "fixed configuration"


def waiting_text(running: int, grace_seconds: int) -> str:
    """What a process with no trial to claim says while the missing ones run elsewhere."""
    return (f"waiting: the {running} missing trial(s) are running in other processes; a trial whose process died "
            f"is failed after {grace_seconds} s without a heartbeat, and then run again")


class LineReporter(SilentReporter):
    """One plain line per trial (for logs, pipes and remote machines): what ran and how it ended."""

    def __init__(self, searched: list[str], metric: str, write: Callable[[str], None] | None = None):
        self.searched, self.metric = searched, metric
        self.write = write or (lambda line: print(line, flush=True))
        self.params: dict = {}
        self.started_at = time.monotonic()

    def sweep_started(self, study_name: str, finished: int, target: int) -> None:
        self.write(f"joined study {study_name!r}: {finished} of {target} trials finished")

    def trial_started(self, number: int, params: dict, epochs: int) -> None:
        self.params, self.started_at = params, time.monotonic()

    def trial_ended(self, number: int, state: str, value: float | None, reason: str | None) -> None:
        seconds = time.monotonic() - self.started_at
        described = describe_params(self.params, self.searched)
        if state == "FAIL":
            self.write(f"trial {number} {described} FAILED: {reason}")
        elif state == "PRUNED":
            self.write(f"trial {number} {described} pruned ({seconds:.0f} s)")
        else:
            self.write(f"trial {number} {described} -> best {self.metric} {value:.4f} ({seconds:.0f} s)")

    def waiting(self, running: int, grace_seconds: int) -> None:
        self.write(waiting_text(running, grace_seconds))

    def decision_looked(self, look: Any) -> None:
        self.write(look.text())
