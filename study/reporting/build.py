"""Reports: the tables and figures of a lab report, read back from what a sweep tracked.

`build_report` turns a finished or partial study into `reports/<study>/`: the best trial per
compared value, a two-way table and every trial, each as CSV, Markdown and LaTeX with the same
rounded numbers (`study.reporting.tables`); the figures of `study.reporting.figure_data` (PNG and PDF); and
`report.md` and `report.html`, which put them together with captions, the sweep's fixed settings as
caveats, and warnings where the data calls for them, and the same page as an A4 PDF to hand in
(`report.pdf`, from its Typst source `report.typ`: `study.reporting.pdf`). The trials are the study's trials table
(`study.store.stores`: Optuna's states and values, MLflow's run ids; MLflow's runs alone when the
Optuna study is gone), histories and models come from MLflow (`study.store.tracking`),
hyperparameter importance from Optuna (`study.store.trials`); so a report can always be re-run.
It is logged back to the study's parent run. The study is read by `study.reporting.load`, the
page's words come from `study.reporting.text` and it is rendered by `study.reporting.page`. `study.reporting.load.load_trials`, `two_way_table` and
`study.analysis.scoring.best_per_value` return the same tables as DataFrames for notebooks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import pandas as pd

from study.analysis import stats
from study.analysis import verdict as verdict_rules
from study.analysis.budget import budget_curve
from study.analysis.scoring import (
    best_per_value, best_summary_columns, direction_of, score_column, value_order, varying_params,
)
from study.reporting import figures
from study.reporting import figure_data as report_figures
from study.reporting.load import (
    ReportError, TrackedStudy, open_study, replicate_trials,
)
from study.reporting.page import render_html, render_markdown
from study.reporting.pdf import write_pdf
from study.reporting.tables import formatted, markdown_table, write_table
from study.reporting.text import (
    VERDICT_RULE, budget_text, caveats, data_sizes, data_warnings, distinct_draws, metric_text, table_links,
)
from study.spec.base import ConfigError
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig, load_sweep
from study.store import tracking
from study.store.locations import StudyNotFound
from study.store.parent_summary import VERDICT_TAG, summary_metrics
from study.store.trials import param_importances


EVALUATORS = {"fANOVA": "fanova", "PED-ANOVA": "ped-anova"}  # shown name -> study.store.trials' name
TOP = 3  # the isolation plot's spread: range of the top trials (until replicate seeds exist)


MAX_MODELS = 4  # best models rerun on the test set for the task figure


@dataclass
class ReportResult:
    """What `build_report` wrote (`files`: tables, figures, report.md, report.html, report.typ,
    report.pdf) and found."""

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
                 "replicates": self.replicates, "expected_best": self.verdict.budget if self.verdict else None}
        return {name: table for name, table in named.items() if table is not None}

    @property
    def figures(self) -> list[Path]:
        """The report's figures as PNG files, in the order the page shows them."""
        return [path for path in self.files if path.suffix == ".png"]

    def _repr_html_(self) -> str:
        """Jupyter's and Colab's inline view: the verdict, the best table and the figures."""
        from study.reporting.notebook import report_html

        return report_html(self)
    config: SweepConfig | None = field(default=None, repr=False)  # the study's resolved sweep definition
    metric: str = ""
    direction: str = ""


# --------------------------------------------------------------------------- reading the store


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
    from study.spec.flags import check_report_request

    compare = check_report_request(target, out, compare, ReportError)  # --compare and --out, before any store is read
    say = progress or (lambda message: None)
    sweep_config = None
    try:
        if Path(target).is_file() or Path(target).suffix in (".yaml", ".yml"):
            sweep_config = load_sweep(target).config
    except ConfigError as err:
        raise ReportError(str(err)) from None
    formats = _check_formats(formats)
    say("reading the study's trials (Optuna) and runs (MLflow)")
    study = open_study(sweep_config.name if sweep_config else str(target), storage, tracking_uri, sweep_config)
    dimensions = _compared(study, compare)
    out = Path(out) if out is not None else Path("reports") / study.name
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file, not a folder; give a folder for the report")
    try:
        return _Builder(study, dimensions, out, formats, say).build()
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


def _compared(study: TrackedStudy, compare: list[str] | None) -> list[str]:
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


TABLE_STEMS = ("best", "two_way", "trials", "replicates", "comparisons", "paired", "paired_comparisons",
               "expected_best")
FIGURE_STEMS = ("replicates", "paired_draws", "expected_best", "isolation", "distribution", "two_way",
                "objective_vs_params", "learning_curves", "cost", "importance", "confusion_matrix", "actual_vs_predicted")


class _Builder:
    """Writes one report: tables, figures, then the page that collects them with the warnings."""

    def __init__(self, study: TrackedStudy, dimensions: list[str], out: Path, formats: tuple[str, ...],
                 say: Callable[[str], None]):
        self.study, self.out, self.formats, self.say = study, out, formats, say
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
            score=study.score, score_label="best " + metric_text(study.metric, study.kind),
            maximize=study.direction == "maximize", kind=study.kind, primary=primary, secondary=secondary,
            order=order, config=config, tracking_uri=study.tracking_uri,
            warnings=data_warnings(study, primary, best),
        )
        if len(dimensions) > 2:
            self.data.warnings.append(f"only the first two compared dimensions are used "
                                      f"({', '.join(dimensions[:2])}); ignored: {', '.join(dimensions[2:])}")
        self.replicates = replicate_trials(study.name, study.tracking_uri)
        self.data.replicates = self.replicates
        self.margin = config.study_margin if config else None  # None: the metric's default (stats.default_margin)
        self.replicate_summary, self.comparisons = replicate_statistics(self.replicates, primary, study.score,
                                                                        self.margin)
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
        sequential = bool(config and config.decide and config.decide.evidence == "paired" and primary in config.scientific)
        paired = verdict_rules.paired_evidence(draws, order, maximize, study.score, self.margin, sequential)
        self.budget = budget_curve(study.trials, primary, study.score, maximize, order)
        if config and config.decide and config.decide.evidence == "replicates" and primary == config.scientific[0]:
            replicates = verdict_rules.sequential_replicate_evidence(self.replicates, primary, study.score, order,
                                                                     maximize, self.margin)
        else:
            replicates = verdict_rules.replicate_evidence(self.replicate_summary, self.comparisons, primary, maximize)
        decided = verdict_rules.decide(
            primary, study.score, maximize, verdict_rules.best_trial_evidence(best, primary, study.score, maximize),
            verdict_rules.median_evidence(study.trials, primary, study.score, maximize), paired, replicates,
            self.budget)
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
            if self.budget is not None and not self.budget.empty:
                written += write_table(self.budget, stage / "tables", "expected_best")
            if self.replicate_summary is not None:
                written += write_table(self.replicate_summary, stage / "tables", "replicates")
                written += write_table(self.comparisons, stage / "tables", "comparisons")
            self.say("hyperparameter importance (fANOVA and PED-ANOVA)")
            data.importances = self._importances()
            data.verdict, data.paired = self.verdict, self.paired  # the evidence figures draw the verdict's own
            with figures.theme():
                drawn = []
                for message, step in report_figures.REPORT_FIGURES:
                    self.say(f"figure: {message}")
                    drawn.append(step(data))
                # Saved in the page's order (the verdict's own figure first), so `files` lists them so too.
                for figure in report_figures.page_order([d for d in drawn if d is not None], self.verdict.basis):
                    written += figures.save(figure.figure, stage / "figures", figure.stem, self.formats)
                    self.figures.append((figure.stem, figure.title, figure.caption))
            self.say("writing report.md, report.html and report.pdf")
            blocks = self._page()
            for name, text in (("report.md", render_markdown(blocks)), ("report.html", render_html(blocks, stage))):
                (stage / name).write_text(text)
                written.append(stage / name)
            written += write_pdf(blocks, stage)  # report.typ and report.pdf, published with the pages
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
            found = {shown: param_importances(self.study.name, self.study.stores.optuna_storage(), name) for shown, name in EVALUATORS.items()}
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
                   + f". {self._sources()}, on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.")
        blocks: list[tuple] = [("h1", f"Study report: {study.name}")]
        if config and config.description:
            blocks.append(("p", config.description))
        blocks += [("h2", f"Verdict: which {data.primary} is better here"), ("p", f"**{self.verdict.headline}**")]
        if self.verdict.details:
            blocks.append(("ul", self.verdict.details))
        figure_blocks = self._figure_blocks()
        blocks += figure_blocks[0] if figure_blocks else []  # the figure that carries the verdict, beside it
        blocks += self._question_blocks()
        blocks.append(("p", VERDICT_RULE))
        blocks += [("p", summary), ("h2", "Warnings"),
                   ("ul", data.warnings) if data.warnings else ("p", "None: no warning applies to these data."),
                   ("h2", "Fixed settings (caveats)"), ("ul", self._caveats())]
        blocks += [("h2", f"Best trial per {data.primary}"), ("table", formatted(data.best)),
                   ("p", f"Score and test metrics of the best completed trial of each {data.primary} value (test "
                         "metrics at its best epoch; the test set is never used for selection), the hyperparameters "
                         "that vary, and the trial counts. " + table_links("best"))]
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
                             f"each combination. {fair} " + table_links("two_way"))]
        blocks.append(("h2", "Figures"))
        for drawn in figure_blocks[1:]:
            blocks += drawn
        blocks += [("h2", "All trials"), ("p", f"{len(study.trials)} trials, one row each: the data behind every figure, "
                                               f"failed trials with their reason. {table_links('trials')}")]
        return blocks + self._setup_blocks()

    def _setup_blocks(self) -> list[tuple]:
        """What ran, on which data, with which seeds and software: the versions the sweep recorded on
        its parent run, else those of the environment writing this report."""
        study, config = self.study, self.study.config
        task = config.task.name if config else study.parent.get("tags.task", "?")
        sizes = data_sizes(config)
        data = f"; {sizes['train']} training, {sizes['validation']} validation, {sizes['test']} test examples" if sizes else ""
        recorded = {key.removeprefix("tags.version."): value for key, value in study.parent.items()
                    if key.startswith("tags.version.") and isinstance(value, str)}
        versions = recorded or {name: _version(name) for name in ("tensorflow", "keras", "optuna", "mlflow")}
        software = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
        budget = f" (target {config.trials}, {config.epochs} epochs each, batch size {config.batch_size})" if config else ""
        replicated = f"; {len(self.replicates)} replicate runs" if not self.replicates.empty else ""
        items = [f"Study `{study.name}`, task `{task}`{data}.",
                 f"Trials: {len(study.trials)} in the search{budget}{replicated}."]
        if config:
            seeds = sorted(int(s) for s in self.replicates.get("seed", pd.Series(dtype="Int64")).dropna().unique())
            shown = (", ".join(map(str, seeds)) if len(seeds) <= 10 else
                     f"{len(seeds)} distinct, {seeds[0]} to {seeds[-1]}")
            items.append(f"Seeds: {config.sampler} sampler seeded with {config.seed}; each trial trains from a seed "
                         "derived from (sweep seed, trial number)" + (f"; replicate seeds: {shown}" if seeds else "") + ".")
        items.append(f"Software ({'recorded by the sweep' if recorded else 'of the environment writing this report'}): "
                     f"{software or 'unknown'}.")
        return [("h2", "Set-up"), ("ul", items)]

    def _figure_blocks(self) -> list[list[tuple]]:
        """Each figure's heading, image and caption, in page order (the first carries the verdict)."""
        shown = next((f for f in ("png", "svg", "jpg", "jpeg", "webp") if f in self.formats), None)
        figures = []
        for number, (stem, title, caption) in enumerate(self.figures, 1):
            files = " · ".join(f"[{f.upper()}](figures/{stem}.{f})" for f in self.formats)
            figures.append([("h3", f"Figure {number}. {title}"),
                            *([("img", f"figures/{stem}.{shown}", title)] if shown else []),
                            ("p", f"{caption} Files: {files}.")])
        return figures

    def _question_blocks(self) -> list[tuple]:
        """One labelled line per question the study can answer, the findings where they disagree, and
        the expected best score against the tuning budget k."""
        verdict, blocks = self.verdict, []
        if verdict.answers:
            blocks += [("h3", "The questions, answered one by one"),
                       ("ul", [f"**{a.question[0].upper()}{a.question[1:]}**: {a.text}" for a in verdict.answers])]
        if verdict.findings:
            blocks += [("h3", "Findings"), ("ul", [f[0].upper() + f[1:] + "." for f in verdict.findings])]
        if self.budget is not None and not self.budget.empty:
            blocks += [("h3", f"Expected best `{self.study.score}` at a tuning budget of k trials"),
                       ("table", formatted(self.budget)),
                       ("p", f"The expected best score of k trials drawn from each {self.data.primary}'s completed "
                             "trials (Dodge et al. 2019, \"Show Your Work\"): k = 1 is the mean trial, the largest k "
                             "the study's own budget; a 95% percentile bootstrap band over the trials. "
                             + table_links("expected_best"))]
        return blocks

    def _sources(self) -> str:
        stores = self.study.stores
        mlflow = f"MLflow `{stores.tracking_shown}` (experiment `{self.study.name}`)"
        if stores.trials_read_from == "Optuna":
            return f"Trials read from Optuna `{stores.storage_shown}`, runs and histories from {mlflow}"
        return f"Read from {mlflow}; the Optuna study `{stores.storage_shown}` could not be read"

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
                  f"row per draw with its nuisance values and each {primary}'s score. " + table_links("paired")),
            ("table", formatted(self.paired)),
            ("h3", "Draw by draw"),
            ("ul", wins),
            ("p", "Mean paired difference with a 95% t-interval, wins per pair, and the two-sided Wilcoxon "
                  "signed-rank test, p-values adjusted over the pairs with Holm's method. " + table_links("paired_comparisons")),
        ]

    def _caveats(self) -> list[str]:
        """The fixed settings every comparison holds under, and what the evidence does not cover."""
        study = self.study
        return caveats(study, replicated=self.replicate_summary is not None,
                       sizes=data_sizes(study.config), importance_draws=distinct_draws(study, self.data.primary))

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
                  f"and a 95% t-interval of `{score}`; parameter count beside each value. " + table_links("replicates")),
            ("h3", "Pairwise differences"),
            ("ul", lines) if lines else ("p", "Fewer than two replicates per value: no test is possible."),
            ("p", "Welch's t-test (unequal variances) on the replicate scores, p-values adjusted for the number "
                  "of pairs with Holm's step-down method. " + table_links("comparisons")),
        ]

    def _description(self) -> str:
        """The parent run's description in the MLflow UI: the verdict and the best trial per value."""
        lines = [f"**Verdict.** {self.verdict.headline}", *[f"- {line}" for line in self.verdict.details],
                 *[f"- {a.question[0].upper()}{a.question[1:]}: {a.text}" for a in self.verdict.answers[1:]],
                 *[f"- Finding: {f}." for f in self.verdict.findings], "",
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
            # The parent's row in the runs table: best and mean per compared value, the verdict's headline.
            study = self.study
            by = list(study.config.scientific) if study.config is not None else [data.primary]
            tracking.log_parent_summary(
                study.tracking_uri, run_id,
                summary_metrics(study.trials, by, study.score, study.direction == "maximize"),
                {VERDICT_TAG: self.verdict.headline} if self.verdict is not None else {})
        except Exception as err:  # noqa: BLE001 - the files are written; only the upload failed
            data.warnings.append(f"the report could not be logged to the parent run {run_id}: {err}")
            return None
        return run_id


def replicate_statistics(replicates: pd.DataFrame, by: str, score: str, margin: float | None = None,
                         ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Per-value summary (n, mean, sd, 95% CI, parameter count) and Holm-adjusted pairwise tests."""
    if replicates.empty or by not in replicates or score not in replicates:
        return None, None
    summary = stats.summarize(replicates, [by], score)
    sizes = replicates.groupby(by)["param_count"].median().rename("param_count").reset_index()
    summary = summary.merge(sizes, on=by)
    return summary, stats.pairwise(replicates, by, score, margin=margin)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
