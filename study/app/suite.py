"""Suites: one comparison run on several tasks, then concluded across them.

A suite file (`sweeps/suites/*.yaml`) names the suite and lists sweep files, one per task, that
compare the same values (e.g. the cells):

    name: offline-suite
    sweeps: [../suite_digits.yaml, ../suite_mnist1d.yaml, ../suite_sine.yaml]

The sweep files are named relative to the suite file, so a shipped suite (`study suite offline`,
found by `study.spec.shipped`) reads the shipped sweep files beside it from any folder.

`run_suite` runs (or resumes) each sweep, with the replicates its file asks for, then writes each
study's report and the cross-task page (`study.reporting.across_page`) to `reports/<suite name>/`.
Every sweep file is checked before anything runs, so a mistake in the third one costs no training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import Field, ValidationError

from study.spec.base import ConfigError, StrictModel
from study.spec.files import read_yaml_file
from study.spec.sweep_file import Sweep, error_lines, load_sweep
from study.search.progress import SweepReporter
from study.search.sweep import SweepResult, run_sweep


class SuiteConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="names the cross-task page's folder")
    description: str = ""
    sweeps: list[str] = Field(min_length=2, description="sweep files, relative to the suite file; one per task")


@dataclass
class Suite:
    config: SuiteConfig
    path: Path
    sweeps: list[Sweep]


@dataclass
class SuiteResult:
    suite: Suite
    sweeps: list[SweepResult]
    report: object = field(default=None, repr=False)  # study.reporting.across_page.AcrossResult; None if stopped
    stopped_reason: str | None = None  # a sweep stopped on failures: the suite stopped with it


def load_suite(path: str | Path) -> Suite:
    """Read a suite file and every sweep file it lists; ConfigError names the file and field."""
    path = Path(path)
    data, _ = read_yaml_file(path, "suite file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a suite file is a mapping with name and sweeps")
    try:
        config = SuiteConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError("\n".join(f"{path}: {line}" for line in error_lines(err))) from None
    sweeps = [load_sweep(path.parent / name) for name in config.sweeps]
    names = [s.config.name for s in sweeps]
    if len(set(names)) < len(names):
        raise ConfigError(f"{path}: sweeps: two sweep files share a study name ({', '.join(names)})")
    tasks = [s.config.task.name for s in sweeps]
    if len(set(tasks)) < len(tasks):
        raise ConfigError(f"{path}: sweeps: two sweep files run the same task ({', '.join(tasks)}); "
                          "a suite compares across tasks")
    return Suite(config, path, sweeps)


def run_suite(
    suite: Suite,
    storage: str | None = None,
    tracking_uri: str | None = None,
    reporter_for: Callable[[Sweep], SweepReporter] | None = None,
    formats: str = "png,pdf",
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Run every sweep of the suite to its target (and its replicates), then report across tasks."""
    from study.reporting.across_page import build_across_report

    results = []
    for sweep in suite.sweeps:
        reporter = reporter_for(sweep) if reporter_for else None
        result = run_sweep(sweep, storage=storage, tracking_uri=tracking_uri, reporter=reporter)
        results.append(result)
        if result.stopped_reason:
            return SuiteResult(suite, results, stopped_reason=f"{sweep.path}: {result.stopped_reason}")
    report = build_across_report([s.config.name for s in suite.sweeps], out or Path("reports") / suite.config.name,
                                 formats=formats, storage=storage, tracking_uri=tracking_uri, progress=progress)
    return SuiteResult(suite, results, report)
