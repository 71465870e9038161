"""Reports: the tables and figures of a lab report, read back from what a sweep tracked.

`build_report` turns a finished or partial study into `reports/<study>/`: the best trial per
compared value, a two-way table and every trial, each as CSV, Markdown and LaTeX with the same
rounded numbers (`study.reporting.tables`); the figures of `study.reporting.figure_data` (PNG and PDF); and
`report.md` and `report.html`, which put them together with captions, the sweep's fixed settings as
caveats, and warnings where the data calls for them. Everything is read from MLflow through `study.store.tracking`, except
hyperparameter importance, which Optuna computes from the study's storage through `study.store.trials`;
so a report can always be re-run. It is logged back to the study's parent run. `load_trials`,
`two_way_table` and `study.analysis.scoring.best_per_value` return the same tables as DataFrames for notebooks.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from study.spec.errors import StudyError
from study.reporting import figures

from study.reporting import figure_data as report_figures

from study.analysis import stats

from study.store import tracking
from study.analysis import verdict as verdict_rules
from study.spec.base import ConfigError
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.settings import STORAGE_ENV
from study.spec.sweep_file import SweepConfig, load_sweep, metric_direction, parse_config
from study.store.trials import in_trial_order, param_importances, trials_table
from study.analysis.scoring import (
    best_per_value, best_summary_columns, direction_of, score_column, value_order, varying_params,
)
from study.store.locations import StudyNotFound, mask_password, resolve_storage, resolve_tracking_uri
from study.reporting.tables import formatted, markdown_table, write_table

SUMMARY_METRICS = ("param_count", "seconds_per_epoch", "train_seconds", "best_epoch", "pruned_at_epoch")
INTEGER_METRICS = {"param_count", "best_epoch", "pruned_at_epoch"}
EVALUATORS = {"fANOVA": "fanova", "PED-ANOVA": "ped-anova"}  # shown name -> study.store.trials' name
FEW_TRIALS = 5  # fewer completed trials than this per compared value: the best is a rough estimate
EDGE = 0.05  # a best value within 5% of a range's end (log-scaled where searched on a log scale)
TOP = 3  # the isolation plot's spread: range of the top trials (until replicate seeds exist)
MAX_MODELS = 4  # best models rerun on the test set for the task figure


class ReportError(StudyError):
    """A report that cannot be made (unknown or empty study, bad option); nothing was written."""


@dataclass
class ReportResult:
    """What `build_report` wrote (`files`: tables, figures, report.md, report.html) and found."""

    study_name: str
    out: Path
    files: list[Path]
    warnings: list[str]
    trials: pd.DataFrame = field(repr=False)
    best: pd.DataFrame = field(repr=False)
    two_way: pd.DataFrame | None = field(repr=False)
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    parent_run_id: str | None = None  # the run the report was logged to; None if it was not
    verdict: verdict_rules.Verdict | None = None  # which value leads, on which evidence, how sure
    paired: pd.DataFrame | None = field(default=None, repr=False)  # one row per paired draw
    replicates: pd.DataFrame | None = field(default=None, repr=False)  # finished replicate runs, like `trials`

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The report's tables by name, as DataFrames (those the study has)."""
        named = {"best": self.best, "trials": self.trials, "two_way": self.two_way, "paired": self.paired,
                 "replicates": self.replicates}
        return {name: table for name, table in named.items() if table is not None}

    @property
    def figures(self) -> list[Path]:
        """The report's figures as PNG files, in the order the page shows them."""
        return [path for path in self.files if path.suffix == ".png"]
    config: SweepConfig | None = field(default=None, repr=False)  # the study's resolved sweep definition
    metric: str = ""
    direction: str = ""


# --------------------------------------------------------------------------- reading the store


def load_trials(study_name: str, tracking_uri: str | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """One row per trial run of a study in MLflow, with the columns of `study show --csv` (read
    from Optuna) in the same order (`study.store.trials.in_trial_order`): trial, state, score
    (`best_<metric>`), `test_*`, every hyperparameter (typed), size and speed, seed, fail_reason,
    mlflow_run_id. A trial with several runs (an Optuna store that was emptied and the study run
    again) keeps its latest one; `notes` gets a line naming the others."""
    try:
        uri = resolve_tracking_uri(tracking_uri)
    except ConfigError as err:
        raise ReportError(str(err)) from None
    _require_store(uri)
    runs = tracking.load_runs(uri, study_name, "trial")
    if runs.empty:
        if tracking.experiment_id(uri, study_name) is None:
            raise ReportError(f"no study named {study_name!r} in the MLflow store {mask_password(uri)}; "
                              "run `study sweep` first, or pass --tracking-uri")
        raise ReportError(f"study {study_name!r} has no trial runs yet: nothing to report")
    return _trials_frame(_one_run_per_trial(runs, study_name, notes if notes is not None else []))


def _one_run_per_trial(runs: pd.DataFrame, study_name: str, notes: list[str]) -> pd.DataFrame:
    latest = runs.sort_values("start_time").drop_duplicates(subset="tags.trial_number", keep="last")
    extra = runs[~runs["run_id"].isin(latest["run_id"])]
    if not extra.empty:
        trials = sorted({int(t) for t in extra["tags.trial_number"]})
        notes.append(f"{len(extra)} trial run(s) in MLflow repeat trial(s) {', '.join(map(str, trials))} "
                     f"(runs {', '.join(extra['run_id'])}); the report uses each trial's latest run. "
                     f"`study doctor {study_name}` says which run Optuna recorded, and --repair sets the others aside")
    return latest


EPOCH_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae")


def epoch_history(study_name: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every trial's per-epoch metrics as one tidy DataFrame, for your own notebooks and plots:
    one row per (trial, epoch) with study, trial, cell, units, depth, state, epoch (from 1) and a
    column per logged metric (loss, val_loss, and accuracy / val_accuracy or mae / val_mae).

        from study.reporting.build import epoch_history
        epoch_history("quick")   # `study history quick --csv history.csv` writes the same table
    """
    trials = load_trials(study_name, tracking_uri)
    uri = resolve_tracking_uri(tracking_uri)
    long = tracking.load_histories(uri, list(trials["mlflow_run_id"]), list(EPOCH_METRICS))
    wide = long.pivot_table(index=["run_id", "epoch"], columns="key", values="value", aggfunc="last").reset_index()
    described = [c for c in ("trial", "cell", "units", "depth", "state") if c in trials]
    table = trials[[*described, "mlflow_run_id"]].merge(wide, left_on="mlflow_run_id", right_on="run_id")
    metrics = [m for m in EPOCH_METRICS if m in table]
    table = table.assign(study=study_name)[["study", *described, "epoch", *metrics]]
    return table.astype({"epoch": int}).sort_values(["trial", "epoch"]).reset_index(drop=True)


def _require_store(uri: str) -> None:
    # Opening a missing SQLite file would create an empty store: a report must write nothing.
    path = tracking.sqlite_path(uri)
    if path is not None and not path.exists():
        raise ReportError(f"no MLflow store at {path} (run `study sweep <file>` first, or pass --tracking-uri)")


def _trials_frame(runs: pd.DataFrame) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "trial": pd.to_numeric(runs["tags.trial_number"]).astype(int),
        "state": _column(runs, "tags.state").fillna("RUNNING"),
    }
    for name, dim in HYPERPARAMETERS.items():
        if f"params.{name}" in runs:
            columns[name] = _typed(runs[f"params.{name}"], dim.kind)
    metrics = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    scores = sorted(m for m in metrics if m.startswith("best_") and m != "best_epoch")
    for metric in scores + sorted(m for m in metrics if m.startswith("test_")) + list(SUMMARY_METRICS):
        values = pd.to_numeric(_column(runs, f"metrics.{metric}"))
        columns[metric] = values.round().astype("Int64") if metric in INTEGER_METRICS else values.astype(float)
    columns["seed"] = pd.to_numeric(_column(runs, "tags.seed")).astype("Int64")
    columns["fail_reason"] = _column(runs, "tags.fail_reason")
    columns["mlflow_run_id"] = runs["run_id"]
    return in_trial_order(pd.DataFrame(columns).sort_values("trial").reset_index(drop=True))


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)


def _typed(values: pd.Series, kind: str) -> pd.Series:
    """MLflow stores params as strings; give them back their hyperparameter's type."""
    if kind == "bool":
        return values.map({"True": True, "False": False})
    if kind == "int":
        numbers = pd.to_numeric(values)
        return numbers.astype(int) if numbers.notna().all() else numbers.astype("Int64")
    if kind == "float":
        return pd.to_numeric(values).astype(float)
    return values.astype(object)


@dataclass
class _Study:
    """What a report needs to know about a study besides its trials."""

    name: str
    tracking_uri: str
    trials: pd.DataFrame
    parent: dict[str, Any]  # the parent run's row of tracking.load_runs, {} if there is none
    config: SweepConfig | None  # the resolved sweep definition the parent run recorded
    metric: str
    direction: str
    notes: list[str] = field(default_factory=list)  # what the MLflow store itself says is off (duplicate runs)

    @property
    def score(self) -> str:
        return f"best_{self.metric}"

    @property
    def kind(self) -> str:
        if self.config is not None:
            return self.config.task.kind
        return "regression" if "test_mae" in self.trials else "multiclass"


def _open_study(name: str, tracking_uri: str, sweep_config: SweepConfig | None) -> _Study:
    notes: list[str] = []
    trials = load_trials(name, tracking_uri, notes)
    parents = tracking.load_runs(tracking_uri, name, "parent")
    parent = parents.iloc[0].to_dict() if not parents.empty else {}
    config = _recorded_config(tracking_uri, parent) or sweep_config
    scores = [c for c in trials if c.startswith("best_") and c != "best_epoch"]
    metric = parent.get("tags.metric") or (config.objective.metric if config else None) or (
        scores[0].removeprefix("best_") if scores else "val_accuracy")
    direction = config.objective.direction if config else metric_direction(metric)
    if f"best_{metric}" not in trials:
        trials[f"best_{metric}"] = np.nan  # no trial completed yet
    return _Study(name, tracking_uri, trials, parent, config, metric, direction, notes)


def _recorded_config(tracking_uri: str, parent: dict[str, Any]) -> SweepConfig | None:
    """The sweep definition the parent run logged (`config.yaml`), or None if it cannot be read."""
    if not parent:
        return None
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = tracking.download_artifact(tracking_uri, parent["run_id"], "config.yaml", folder)
            return parse_config(yaml.safe_load(path.read_text()), source="the parent run's config.yaml")
        except Exception:  # noqa: BLE001 - a missing or outdated artifact: fall back to the sweep file
            return None


# --------------------------------------------------------------------------- tables


def two_way_table(trials: pd.DataFrame, rows: str, columns: str, score: str | None = None,
                  direction: str | None = None, config: SweepConfig | None = None) -> pd.DataFrame:
    """One row per (rows, columns) combination that ran: trials, completed, and the mean and best
    score of its completed trials. A combination's best depends on how many trials it got, so the
    counts stand beside it: a nuisance dimension (drawn at random) gives unequal counts."""
    score = score or score_column(trials)
    maximize = (direction or direction_of(score)) == "maximize"
    done = trials[(trials["state"] == "COMPLETE") & trials[score].notna()]
    grouped = done.groupby([rows, columns])[score]
    table = pd.DataFrame({
        "trials": trials.groupby([rows, columns]).size(),
        "complete": grouped.size(),
        "mean": grouped.mean(),
        "best": grouped.max() if maximize else grouped.min(),
    })
    table["complete"] = table["complete"].fillna(0).astype(int)
    order = pd.MultiIndex.from_product([value_order(trials, rows, config), value_order(trials, columns, config)],
                                       names=[rows, columns])
    return table.reindex([key for key in order if key in table.index]).rename_axis([rows, columns]).reset_index()


# --------------------------------------------------------------------------- the report


def build_report(
    target: str,
    out: str | Path | None = None,
    compare: list[str] | None = None,
    formats: str | tuple[str, ...] = ("png", "pdf"),
    storage: str | None = None,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Write the report of a study (a name, or a sweep file naming it and its stores) into `out`
    (default `reports/<study>`), log it to the study's parent run, and return what was written.

    Raises ReportError, before writing anything, for an unknown or empty study, a compared
    dimension that is not a hyperparameter, an unknown figure format or a bad store URL.
    """
    say = progress or (lambda message: None)
    sweep_config = None
    try:
        if Path(target).is_file() or Path(target).suffix in (".yaml", ".yml"):
            sweep_config = load_sweep(target).config
        tracking_uri = resolve_tracking_uri(tracking_uri, sweep_config)
    except ConfigError as err:
        raise ReportError(str(err)) from None
    formats = _check_formats(formats)
    say("reading the study's runs from MLflow")
    study = _open_study(sweep_config.name if sweep_config else str(target), tracking_uri, sweep_config)
    dimensions = _compared(study, compare)
    try:
        storage = _importance_storage(storage, sweep_config, study.parent)
    except ConfigError as err:
        raise ReportError(str(err)) from None
    _agree_with_optuna(study, storage)
    out = Path(out) if out is not None else Path("reports") / study.name
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file, not a folder; give a folder for the report")
    try:
        return _Builder(study, dimensions, storage, out, formats, say).build()
    except OSError as err:
        raise ReportError(f"cannot write the report to {out}: {err.strerror or err}") from None


def _check_formats(formats: str | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(formats, str):  # the CLI's --formats png,pdf,svg
        formats = formats.split(",")
    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in formats if f.strip()))
    supported = figures.Figure().canvas.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if unknown or not formats:
        raise ReportError(f"unknown figure format {unknown[0] if unknown else '(none given)'!r}; "
                          f"use some of: {', '.join(sorted(supported))}")
    return formats


def _compared(study: _Study, compare: list[str] | None) -> list[str]:
    """The dimensions to compare: as asked, else the study's scientific hyperparameters, else cell."""
    if compare:
        dimensions = list(compare)
    else:
        recorded = study.parent.get("tags.scientific")
        dimensions = recorded.split(",") if isinstance(recorded, str) else (
            study.config.scientific if study.config else [])
        dimensions = [d for d in dimensions if d in study.trials] or ["cell"]
    choices = [p for p in HYPERPARAMETERS if p in study.trials]
    for dimension in dimensions:
        if dimension not in choices:
            raise ReportError(f"cannot compare by {dimension!r}: not a hyperparameter of study "
                              f"{study.name!r}; choose from {', '.join(choices)}")
    return dimensions


def _agree_with_optuna(study: _Study, storage: str) -> None:
    """Where the Optuna study can be read, a trial counts as finished only if both stores say so:
    a trial whose states differ takes Optuna's (what `study show` says), and a note names it."""
    try:
        optuna_states = trials_table(study.name, storage).set_index("trial")["state"]
    except Exception:  # noqa: BLE001 - no Optuna study here: the importance section says so
        return
    trials = study.trials
    mlflow_states = trials.set_index("trial")["state"]
    differ = [(t, mlflow_states[t], optuna_states[t]) for t in mlflow_states.index
              if t in optuna_states.index and mlflow_states[t] != optuna_states[t]]
    if not differ:
        return
    for number, _, state in differ:
        trials.loc[trials["trial"] == number, "state"] = state
    study.notes.append(
        f"MLflow and Optuna disagree on {len(differ)} trial(s) ("
        + "; ".join(f"trial {t}: MLflow {m}, Optuna {o}" for t, m, o in differ)
        + "): the report takes Optuna's state, as `study show` does; "
        f"`study doctor {study.name}` says why, and --repair fixes what it safely can")


def _importance_storage(flag: str | None, sweep_config: SweepConfig | None, parent: dict[str, Any]) -> str:
    """Flag, environment or sweep file as for a sweep; else the storage the parent run recorded."""
    chosen = flag or os.environ.get(STORAGE_ENV) or (sweep_config.storage if sweep_config else None)
    recorded = parent.get("tags.optuna_storage")
    if not chosen and isinstance(recorded, str) and "***" not in recorded:  # a masked password is unusable
        chosen = recorded
    return resolve_storage(chosen, sweep_config)


VERDICT_RULE = (
    "How the verdict is reached: the strongest evidence the study has decides (replicates, then paired draws); "
    "a value wins only if it beats every other value on it (Holm-adjusted p < 0.05 and a 95% interval excluding "
    "zero) and no other tested evidence puts another value first. The best single trials alone never decide: a "
    "maximum over noisy trials has no uncertainty of its own.")

TABLE_STEMS = ("best", "two_way", "trials", "replicates", "comparisons", "paired", "paired_comparisons")
FIGURE_STEMS = ("isolation", "distribution", "two_way", "objective_vs_params", "learning_curves", "cost",
                "importance", "confusion_matrix", "actual_vs_predicted")


class _Builder:
    """Writes one report: tables, figures, then the page that collects them with the warnings."""

    def __init__(self, study: _Study, dimensions: list[str], storage: str, out: Path,
                 formats: tuple[str, ...], say: Callable[[str], None]):
        self.study, self.storage, self.out, self.formats, self.say = study, storage, out, formats, say
        trials, config = study.trials, study.config
        primary = dimensions[0]
        # Two dimensions when asked; else cell x units whenever the other one of them varies.
        secondary = dimensions[1] if len(dimensions) > 1 else next(
            (d for d in ("cell", "units") if d != primary and d in trials and trials[d].nunique() > 1), None)
        order = value_order(trials, primary, config)
        best = best_per_value(trials, primary, study.score, study.direction, config)
        self.data = report_figures.ReportData(
            trials=trials, best=best,
            two_way=None if secondary is None else two_way_table(
                trials, primary, secondary, study.score, study.direction, config),
            score=study.score, score_label="best " + _metric_text(study.metric, study.kind),
            maximize=study.direction == "maximize", kind=study.kind, primary=primary, secondary=secondary,
            order=order, config=config, tracking_uri=study.tracking_uri,
            warnings=data_warnings(study, primary, best),
        )
        if len(dimensions) > 2:
            self.data.warnings.append(f"only the first two compared dimensions are used "
                                      f"({', '.join(dimensions[:2])}); ignored: {', '.join(dimensions[2:])}")
        self.replicates = replicate_trials(study.name, study.tracking_uri)
        self.data.replicates = self.replicates
        self.replicate_summary, self.comparisons = replicate_statistics(self.replicates, primary, study.score)
        self.paired, self.paired_comparisons, self.verdict = self._verdict(primary, order, best)
        self.data.warnings += self.verdict.warnings
        self.files: list[Path] = []
        self.figures: list[tuple[str, str, str]] = []  # (stem, title, caption) in the page's order

    def _verdict(self, primary: str, order: list, best: pd.DataFrame):
        """The paired draws (if the study has them) and the verdict on every kind of evidence."""
        study, config = self.study, self.study.config
        searched = list(config.searched) if config else varying_params(study.trials)
        nuisance = [p for p in searched if p != primary and p in study.trials]
        maximize = study.direction == "maximize"
        draws = verdict_rules.paired_draws(study.trials, primary, study.score, nuisance, order)
        paired = verdict_rules.paired_evidence(draws, order, maximize)
        decided = verdict_rules.decide(
            primary, study.score, maximize, verdict_rules.best_trial_evidence(best, primary, study.score, maximize),
            verdict_rules.median_evidence(study.trials, primary, study.score, maximize), paired,
            verdict_rules.replicate_evidence(self.replicate_summary, self.comparisons, primary, maximize))
        if paired is None:
            return None, None, decided
        return draws, paired.comparisons, decided

    def build(self) -> ReportResult:
        """Write every file into a staging folder inside `out`, then move them into place one by one
        (tables and figures first, the pages last), so a report killed half-way never leaves a page
        that links a missing or half-written figure."""
        data = self.data
        self.out.mkdir(parents=True, exist_ok=True)
        for leftover in self.out.glob(".staging-*"):  # from a report that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=self.out) as staging:
            stage = Path(staging)
            (stage / "tables").mkdir()
            (stage / "figures").mkdir()
            self.say("writing tables")
            written = write_table(data.best, stage / "tables", "best")
            if data.two_way is not None:
                written += write_table(data.two_way, stage / "tables", "two_way")
            # Data more than a table to read: its CSV is at full precision, as `study show --csv`'s.
            written += write_table(data.trials, stage / "tables", "trials", exact_csv=True)
            if self.paired is not None:
                written += write_table(self.paired, stage / "tables", "paired")
                written += write_table(self.paired_comparisons, stage / "tables", "paired_comparisons")
            if self.replicate_summary is not None:
                written += write_table(self.replicate_summary, stage / "tables", "replicates")
                written += write_table(self.comparisons, stage / "tables", "comparisons")
            self.say("hyperparameter importance (fANOVA and PED-ANOVA)")
            data.importances = self._importances()
            for message, step in report_figures.REPORT_FIGURES:
                self.say(f"figure: {message}")
                with figures.theme():
                    drawn = step(data)
                    if drawn is not None:
                        written += figures.save(drawn.figure, stage / "figures", drawn.stem, self.formats)
                        self.figures.append((drawn.stem, drawn.title, drawn.caption))
            self.say("writing report.md and report.html")
            blocks = self._page()
            for name, text in (("report.md", render_markdown(blocks)), ("report.html", render_html(blocks, stage))):
                (stage / name).write_text(text)
                written.append(stage / name)
            self.files = self._publish(stage, written)
        logged = self._log()
        return ReportResult(self.study.name, self.out, self.files, data.warnings, data.trials, data.best,
                            data.two_way, data.importances, logged, self.verdict, self.paired, self.replicates,
                            self.study.config, self.study.metric, self.study.direction)

    def _publish(self, stage: Path, written: list[Path]) -> list[Path]:
        """Move the staged files into `out` (each move atomic; pages last), then remove the files of
        an earlier report that this one did not rewrite."""
        pages = [path for path in written if path.parent == stage]
        placed = []
        for path in [p for p in written if p not in pages] + pages:
            target = self.out / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            placed.append(target)
        for folder, stems in ((self.out / "tables", TABLE_STEMS), (self.out / "figures", FIGURE_STEMS)):
            for path in folder.iterdir():
                if path.is_file() and path.stem in stems and path not in placed:
                    path.unlink()
        return placed

    def _importances(self) -> dict[str, dict[str, float]]:
        try:
            found = {shown: param_importances(self.study.name, self.storage, name) for shown, name in EVALUATORS.items()}
        except (StudyNotFound, ConfigError) as err:  # ConfigError: a storage that cannot be opened
            self.data.warnings.append(f"no hyperparameter importance: the Optuna study could not be read ({err})")
            return {}
        if not any(found.values()):
            self.data.warnings.append("no hyperparameter importance: fewer than two completed trials, nothing "
                                      "searched, or every completed trial scored the same")
        return found

    # ------------------------------------------------------------------- page and logging

    def _page(self) -> list[tuple]:
        study, config, data = self.study, self.study.config, self.data
        counts = study.trials["state"].value_counts()
        summary = (f"Task `{config.task.name if config else study.parent.get('tags.task', '?')}`; score: the best "
                   f"`{study.metric}` over the epochs ({study.direction}d). Trials: "
                   + ", ".join(f"{int(counts.get(s, 0))} {w}" for s, w in
                               (("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed"), ("RUNNING", "running")))
                   + f". Compared: {self._compared_text()}"
                   + f". Read from MLflow `{mask_password(study.tracking_uri)}` (experiment `{study.name}`) and, for "
                   f"importance only, Optuna `{mask_password(self.storage)}`, on "
                   f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.")
        blocks: list[tuple] = [("h1", f"Study report: {study.name}")]
        if config and config.description:
            blocks.append(("p", config.description))
        blocks += [("h2", f"Verdict: which {data.primary} is better here"), ("p", f"**{self.verdict.headline}**")]
        if self.verdict.details:
            blocks.append(("ul", self.verdict.details))
        blocks.append(("p", VERDICT_RULE))
        blocks += [("p", summary), ("h2", "Warnings"),
                   ("ul", data.warnings) if data.warnings else ("p", "None: no warning applies to these data."),
                   ("h2", "Fixed settings (caveats)"), ("ul", self._caveats())]
        blocks += [("h2", f"Best trial per {data.primary}"), ("table", formatted(data.best)),
                   ("p", f"Score and test metrics of the best completed trial of each {data.primary} value (test "
                         "metrics at its best epoch; the test set is never used for selection), the hyperparameters "
                         "that vary, and the trial counts. " + _links("best"))]
        blocks.append(("p", budget_text(study, data.primary)))
        blocks += self._paired_blocks()
        blocks += self._replicate_blocks()
        if data.two_way is not None:
            counts = data.two_way["complete"]
            fair = (f"Every combination had {counts.iloc[0]} completed trials." if counts.nunique() == 1 else
                    f"The counts are unequal ({counts.min()} to {counts.max()} completed trials per combination): "
                    f"`{data.secondary}` was not given an equal budget, and a best of more trials is higher by "
                    "chance alone, so compare the means and read n.")
            blocks += [("h2", f"`{study.metric}` per {data.primary} and {data.secondary}"),
                       ("table", formatted(data.two_way)),
                       ("p", f"Trials, completed trials (n), and the mean and best score of the completed trials of "
                             f"each combination. {fair} " + _links("two_way"))]
        blocks.append(("h2", "Figures"))
        shown = next((f for f in ("png", "svg", "jpg", "jpeg", "webp") if f in self.formats), None)
        for number, (stem, title, caption) in enumerate(self.figures, 1):
            blocks.append(("h3", f"Figure {number}. {title}"))
            if shown:
                blocks.append(("img", f"figures/{stem}.{shown}", title))
            files = " · ".join(f"[{f.upper()}](figures/{stem}.{f})" for f in self.formats)
            blocks.append(("p", f"{caption} Files: {files}."))
        blocks += [("h2", "All trials"), ("p", f"{len(study.trials)} trials, one row each: the data behind every figure, "
                                               f"failed trials with their reason. {_links('trials')}")]
        return blocks

    def _compared_text(self) -> str:
        data, config = self.data, self.study.config
        text = f"`{data.primary}`"
        if data.secondary:
            scientific = config is not None and data.secondary in config.scientific
            text += (f" and `{data.secondary}`" if scientific else
                     f", with `{data.secondary}` beside it in the two-way table (it varies as a nuisance "
                     "hyperparameter, so its counts are not balanced)")
        return text

    def _paired_blocks(self) -> list[tuple]:
        primary = self.data.primary
        if self.paired is None:
            return [("h2", "Paired draws"),
                    ("p", f"None: no draw was trained with the same nuisance values for every {primary}. "
                          "`budget: equal` with the random sampler (or a grid) trains each value on the very same "
                          "draws, so they can be compared draw by draw.")]
        wins = stats.paired_sentences(self.paired_comparisons, self.study.score, self.study.direction == "maximize")
        return [
            ("h2", f"Paired draws: every {primary} on the same nuisance values"),
            ("p", f"{len(self.paired)} draws were trained with identical nuisance values for every {primary}; one "
                  f"row per draw with its nuisance values and each {primary}'s score. " + _links("paired")),
            ("table", formatted(self.paired)),
            ("h3", "Draw by draw"),
            ("ul", wins),
            ("p", "Mean paired difference with a 95% t-interval, wins per pair, and the two-sided Wilcoxon "
                  "signed-rank test, p-values adjusted over the pairs with Holm's method. " + _links("paired_comparisons")),
        ]

    def _caveats(self) -> list[str]:
        """The fixed settings every comparison holds under, and what the evidence does not cover."""
        study = self.study
        return caveats(study, replicated=self.replicate_summary is not None,
                       sizes=_data_sizes(study.config), importance_draws=_distinct_draws(study, self.data.primary))

    def _replicate_blocks(self) -> list[tuple]:
        primary, score = self.data.primary, self.study.score
        if self.replicate_summary is None:
            return [("h2", "Replicates"),
                    ("p", f"No replicate runs yet, so each {primary} is represented by one search trial, whose "
                          f"score is optimistically biased (it was selected as the best). Run "
                          f"`study replicate {self.study.name} --seeds 3` (or set `replicates:` in the sweep file) "
                          "to retrain each best configuration with new seeds, then re-run this report.")]
        lines = stats.sentences(self.comparisons, score)
        return [
            ("h2", f"Replicates: mean, spread and significance per {primary}"),
            ("table", formatted(self.replicate_summary)),
            ("p", f"The best configuration of each {primary} retrained with new seeds (the search trial itself is "
                  f"left out: it was selected as the best, so its score is biased upward). Mean, standard deviation "
                  f"and a 95% t-interval of `{score}`; parameter count beside each value. " + _links("replicates")),
            ("h3", "Pairwise differences"),
            ("ul", lines) if lines else ("p", "Fewer than two replicates per value: no test is possible."),
            ("p", "Welch's t-test (unequal variances) on the replicate scores, p-values adjusted for the number "
                  "of pairs with Holm's step-down method. " + _links("comparisons")),
        ]

    def _description(self) -> str:
        """The parent run's description in the MLflow UI: the verdict and the best trial per value."""
        lines = [f"**Verdict.** {self.verdict.headline}", *[f"- {line}" for line in self.verdict.details], "",
                 markdown_table(formatted(self.data.best[best_summary_columns(self.data.best)])), "",
                 "Full report: the `report/report.html` artifact of this run."]
        return "\n".join(lines)

    def _log(self) -> str | None:
        data, run_id = self.data, self.study.parent.get("run_id")
        if not run_id:
            data.warnings.append("the study has no parent run in MLflow: the report was not logged there")
            return None
        self.say("logging the report to the study's parent run")
        try:
            tracking.log_folder(self.study.tracking_uri, run_id, self.out, "report")
            tracking.set_description(self.study.tracking_uri, run_id, self._description())
        except Exception as err:  # noqa: BLE001 - the files are written; only the upload failed
            data.warnings.append(f"the report could not be logged to the parent run {run_id}: {err}")
            return None
        return run_id


def replicate_trials(study_name: str, tracking_uri: str) -> pd.DataFrame:
    """The finished replicate runs of a study (see `study replicate`), one row each like `load_trials`."""
    runs = tracking.load_runs(tracking_uri, study_name, role="replicate")
    if runs.empty:
        return pd.DataFrame()
    frame = _trials_frame(runs)
    return frame[(frame["state"] == "COMPLETE") & (runs.set_index(frame.index)["status"] == "FINISHED")]


def replicate_statistics(replicates: pd.DataFrame, by: str, score: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Per-value summary (n, mean, sd, 95% CI, parameter count) and Holm-adjusted pairwise tests."""
    if replicates.empty or by not in replicates or score not in replicates:
        return None, None
    summary = stats.summarize(replicates, [by], score)
    sizes = replicates.groupby(by)["param_count"].median().rename("param_count").reset_index()
    summary = summary.merge(sizes, on=by)
    return summary, stats.pairwise(replicates, by, score)


def budget_text(study: _Study, primary: str) -> str:
    """How the trial budget was split over the compared values (the fairness of the comparison)."""
    config = study.config
    counts = study.trials[study.trials["state"].isin(["COMPLETE", "PRUNED"])].groupby(primary).size()
    per_value = ", ".join(f"{value} {count}" for value, count in counts.items())
    if config is None:
        return f"Finished trials per {primary}: {per_value}."
    if config.uses_equal_budget:
        return (f"Budget: equal. Each {primary} value got the same number of trials and its own {config.sampler} "
                f"sampler (seed {config.seed}) over the same nuisance space, so no value was starved by an adaptive "
                f"sampler; finished trials per {primary}: {per_value}.")
    how = "an explicit grid" if config.sampler == "grid" else (
        "explicit configurations" if config.configurations else f"one shared {config.sampler} sampler")
    return f"Budget: {how} chose the {primary} values; finished trials per {primary}: {per_value}."


def _links(stem: str) -> str:
    return "Files: " + " · ".join(f"[{ext.upper()}](tables/{stem}.{ext})" for ext in ("csv", "md", "tex")) + "."


def _metric_text(metric: str, kind: str) -> str:
    if metric.endswith("accuracy"):
        return "validation accuracy (fraction correct)"
    if metric.endswith("mae"):
        return "validation MAE (target units)"
    return "validation loss (MSE)" if kind == "regression" else "validation loss (cross-entropy)"


# --------------------------------------------------------------------------- warnings and caveats


def data_warnings(study: _Study, by: str, best: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the comparison: gaps, failures, thin data, edges."""
    trials, config, warnings = study.trials, study.config, list(study.notes)
    hp = config.hyperparameters.get(by) if config else None
    missing = [v for v in (hp.choices or ()) if v not in set(trials[by])] if hp else []
    if missing:
        warnings.append(f"no trial ran with {by} = {', '.join(map(str, missing))} (a partial sweep, or values the "
                        "sampler never drew): they are missing from every table and figure")
    target = pd.to_numeric(study.parent.get("tags.target_trials"), errors="coerce")
    finished = int(trials["state"].isin(["COMPLETE", "PRUNED"]).sum())
    if pd.notna(target) and finished < target:
        warnings.append(f"partial sweep: {finished} of {int(target)} trials finished; resume it with "
                        "`study sweep <file>` and re-run this report")
    running = int((trials["state"] == "RUNNING").sum())
    if running:
        warnings.append(f"{running} trial(s) still RUNNING (or their process died unrecorded): left out")
    for _, row in best.iterrows():
        if row["complete"] == 0:
            warnings.append(f"no completed trial for {by} = {row[by]} ({row['trials']} trial(s): "
                            f"{row['failed']} failed, {row['pruned']} pruned)")
        elif row["failed"] > row["trials"] / 2:
            warnings.append(f"most trials with {by} = {row[by]} failed ({row['failed']} of {row['trials']}): its "
                            "best value may be a lucky survivor; see fail_reason in tables/trials.csv")
    few = [f"{row[by]} ({row['complete']})" for _, row in best.iterrows() if 0 < row["complete"] < FEW_TRIALS]
    if few:
        warnings.append(f"fewer than {FEW_TRIALS} completed trials for {by} = {', '.join(few)}: "
                        "a best value from so few trials is a rough estimate")
    if len(best) == 1:
        warnings.append(f"only one value of {by} was tried: there is nothing to compare")
    return warnings + edge_warnings(study, by, best)


def edge_warnings(study: _Study, by: str, best: pd.DataFrame) -> list[str]:
    """Best trials whose value of a searched range lies at its end: the optimum may be outside it."""
    if study.config is None:
        return []
    trials = study.trials.set_index("trial")
    warnings = []
    for _, row in best.dropna(subset=["trial"]).iterrows():
        for name, hp in study.config.searched.items():
            if hp.low is None or hp.high is None or hp.high <= hp.low or name not in trials:
                continue
            value = trials.loc[row["trial"], name]
            scale = math.log if hp.log else float
            position = (scale(value) - scale(hp.low)) / (scale(hp.high) - scale(hp.low))
            if position <= EDGE or position >= 1 - EDGE:
                side = "lower" if position < 0.5 else "upper"
                warnings.append(f"the best trial for {by} = {row[by]} (trial {row['trial']}) has `{name}` = "
                                f"{value:.4g}, at the {side} edge of the searched range [{hp.low:g}, {hp.high:g}]: "
                                "the best setting may lie outside it; consider widening the range")
    return warnings


def caveats(study: _Study, replicated: bool = False, sizes: dict[str, int] | None = None,
            importance_draws: tuple[int, int] | None = None) -> list[str]:
    """The sweep's fixed settings (every comparison in the report holds only under them) and what
    the evidence does not cover: replicates or not, pruning or not, data sizes."""
    config = study.config
    if config is None:
        return ["the parent run holds no sweep definition: epochs, batch size, data split and sampler are unknown"]
    task = ", ".join(f"{k}={v}" for k, v in config.task.model_dump(exclude={"name"}).items() if v is not None)
    fixed = ", ".join(f"{k}={v}" for k, v in config.fixed_params().items())
    pruned = int((study.trials["state"] == "PRUNED").sum())
    stopping = ("no early stopping: every trial trains every epoch" if config.pruner.name == "none" else
                f"a {config.pruner.name} pruner stopped {pruned} trial(s) early; pruned trials are never a best "
                "trial, but their budgets were cut")
    split = ("unknown here (the task's data could not be loaded on this machine)" if not sizes else
             f"{sizes['train']} training, {sizes['validation']} validation and {sizes['test']} test examples")
    lines = [
        f"Epochs: {config.epochs} per trial; {stopping}. A trial's score is its best `{study.metric}` over its "
        "epochs; its test metrics are measured once, with that epoch's weights.",
        f"Batch size: {config.batch_size}.",
        f"Data: task `{config.task.name}` ({task}); {split}; the test set is never used for selection.",
        f"Sampler: {config.sampler}, seed {config.seed}; each trial trains from a seed derived from "
        "(sweep seed, trial number).",
        f"Fixed hyperparameters: {fixed or 'none'}.",
    ]
    if replicated:
        lines.append("Replicates: the best configuration of each value was retrained with new seeds (see "
                     "Replicates); other differences rest on one training run per trial.")
    else:
        lines.append("One training run per trial and no replicate seeds yet: differences smaller than the spread of "
                     "the top trials are not evidence.")
    if importance_draws is not None:
        trials, draws = importance_draws
        lines.append(f"Hyperparameter importance rests on {trials} completed trials with {draws} distinct nuisance "
                      "draws (values of the hyperparameters other than the compared one)" + (
                          ": with so few draws, read its ranking as rough." if draws < 20 else "."))
    return lines


def _data_sizes(config: SweepConfig | None) -> dict[str, int] | None:
    """Train, validation and test sizes of the study's task, or None where it cannot be loaded here."""
    if config is None:
        return None
    from study.train.data import load_task  # cached per process; the confusion-matrix figure loads it too

    try:
        data = load_task(config.task)
    except Exception:  # noqa: BLE001 - e.g. MNIST offline: the caveat says the sizes are unknown
        return None
    return {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test)}


def _distinct_draws(study: _Study, primary: str) -> tuple[int, int] | None:
    """(completed trials, distinct nuisance draws among them): what the importance figure rests on."""
    searched = list(study.config.searched) if study.config else varying_params(study.trials)
    done = study.trials[study.trials["state"] == "COMPLETE"]
    columns = [p for p in searched if p != primary and p in done]
    if not columns or done.empty:
        return None
    return len(done), len(done[columns].astype(str).drop_duplicates())


# --------------------------------------------------------------------------- report.md and report.html

HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
img {{ max-width: 100%; }} code {{ background: #f3f3f3; padding: 0 .2em; }}
table {{ border-collapse: collapse; font-size: .82em; margin: 1em 0; display: block; overflow-x: auto; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .2em .4em; text-align: right; }}
th {{ white-space: normal; overflow-wrap: anywhere; vertical-align: bottom; }} td {{ white-space: nowrap; }}
th {{ border-bottom: 2px solid #999; }}
</style></head><body>
{body}
</body></html>
"""


def render_markdown(blocks: list[tuple]) -> str:
    parts = []
    for kind, *payload in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + payload[0])
        elif kind == "p":
            parts.append(payload[0])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in payload[0]))
        elif kind == "img":
            parts.append(f"![{payload[1]}]({payload[0]})")
        elif kind == "table":
            parts.append(markdown_table(payload[0]))
    return "\n\n".join(parts) + "\n"


def render_html(blocks: list[tuple], folder: Path | None = None) -> str:
    """The page as one HTML file; with `folder`, its figures embedded (data: URLs), so the page shows
    them wherever it is opened: a browser, MLflow's artifact viewer, an e-mail attachment."""
    body = []
    for kind, *payload in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(payload[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(payload[0])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in payload[0]) + "</ul>")
        elif kind == "img":
            body.append(f'<figure><img src="{_embedded(folder, payload[0])}" alt="{html.escape(payload[1])}"></figure>')
        elif kind == "table":
            body.append(payload[0].to_html(index=False, border=0, escape=True))
    title = next(payload[0] for kind, *payload in blocks if kind == "h1")
    return HTML_PAGE.format(title=html.escape(title), body="\n".join(body))


def _embedded(folder: Path | None, link: str) -> str:
    path = folder / link if folder is not None else None
    if path is None or not path.is_file():
        return html.escape(link)
    kind = {"svg": "svg+xml", "jpg": "jpeg"}.get(path.suffix.lstrip("."), path.suffix.lstrip("."))
    return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_html(text: str) -> str:
    """The little Markdown the report's own text uses: `code`, **bold** and [links](href)."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
