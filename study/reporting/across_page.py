"""The cross-task report: several studies that compare the same values on different tasks, read
back from the stores, summed up on one page (`study report A B C --out reports/NAME`).

Each study first gets its own report (`study.reporting.build.build_report`, in `reports/<study>/`, with its
own verdict). Then each (value, task) contributes runs: its replicates where the study has them
(the strongest evidence: the best configuration retrained with new seeds), else its paired draws,
else only its best trial; the source is said per task. `study.analysis.across` turns the runs into the
value x task table, ranks, the IQM and the probability of improvement; this module writes them
as tables, figures and `report.md` / `report.html` / `report.pdf` (with its Typst source `report.typ`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from study.analysis import across
from study.reporting import across_figures, figures
from study.reporting.build import ReportResult, build_report
from study.reporting.load import ReportError
from study.reporting.page import render_html, render_markdown
from study.reporting.pdf import write_pdf
from study.reporting.tables import formatted, write_table
from study.spec.flags import check_across_request


@dataclass
class AcrossResult:
    out: Path
    files: list[Path]
    verdict: str
    studies: list[ReportResult] = field(repr=False)
    table: pd.DataFrame = field(repr=False)  # study.analysis.across.value_task_table
    ranks: pd.DataFrame = field(repr=False)
    iqm: pd.DataFrame = field(repr=False)
    improvement: pd.DataFrame = field(repr=False)


def build_across_report(
    targets: list[str],
    out: str | Path,
    compare: list[str] | None = None,
    formats: str | tuple[str, ...] = ("png", "pdf"),
    storage: str | None = None,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AcrossResult:
    """Report each study, then write the cross-task page into `out`. Raises ReportError when a study
    cannot be reported or the studies do not compare the same dimension on different tasks."""
    check_across_request(targets, out, compare, ReportError)  # a study listed twice, --out: before any report
    say = progress or (lambda message: None)
    studies = []
    for target in targets:
        say(f"report of {target}")
        studies.append(build_report(target, compare=compare, formats=formats, storage=storage,
                                    tracking_uri=tracking_uri, progress=lambda m, t=target: say(f"{t}: {m}")))
    by = studies[0].best.columns[0]
    if any(s.best.columns[0] != by for s in studies):
        raise ReportError("the studies compare different dimensions ("
                          + ", ".join(f"{s.study_name}: {s.best.columns[0]}" for s in studies)
                          + "); pass --compare to choose one")
    tasks = [s.config.task.name if s.config else s.study_name for s in studies]
    if len(set(tasks)) < len(tasks):
        raise ReportError(f"two studies run the same task ({', '.join(tasks)}): a cross-task page compares tasks")
    say("across tasks: IQM and probability of improvement (stratified bootstrap)")
    runs = pd.concat([_runs(s, by) for s in studies], ignore_index=True)
    order = list(dict.fromkeys(v for s in studies for v in s.best[by]))
    table = across.value_task_table(runs, by, order)
    ranked = across.ranks(table, by)
    iqms = across.iqm(runs, by)
    improvement = across.probability_of_improvement(runs, by)
    sources = dict(table.drop_duplicates("task")[["task", "source"]].itertuples(index=False))
    verdict = across.overall_verdict(iqms, improvement, by, {t: s.verdict.tiers for t, s in zip(tasks, studies)},
                                     sources)

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    files = []
    for frame, stem in ((table, "value_task"), (ranked, "ranks"), (iqms, "iqm"), (improvement, "improvement")):
        files += write_table(frame, out / "tables", stem)
    formats = (formats.split(",") if isinstance(formats, str) else list(formats))
    with figures.theme():
        files += figures.save(across_figures.interval_plot(iqms, by, "iqm", "IQM of normalized scores (0 = chance, 1 = best possible)"),
                              out / "figures", "iqm", tuple(formats))
        files += figures.save(across_figures.improvement_plot(improvement), out / "figures", "improvement", tuple(formats))
    blocks = _page(studies, by, tasks, table, ranked, iqms, improvement, verdict, formats)
    files += write_pdf(blocks, out)  # report.typ and report.pdf first: a failed compile writes no page
    for name, text in (("report.md", render_markdown(blocks)), ("report.html", render_html(blocks, out))):
        (out / name).write_text(text)
        files.append(out / name)
    return AcrossResult(out, files, verdict, studies, table, ranked, iqms, improvement)


def _runs(study: ReportResult, by: str) -> pd.DataFrame:
    """The runs this study contributes per value: replicates, else paired draws, else the best trial."""
    score = f"best_{study.metric}"
    task = study.config.task.name if study.config else study.study_name
    replicates = study.replicates
    if replicates is not None and not replicates.empty and replicates.groupby(by).size().min() >= 2:
        runs, source = replicates[[by, score]].rename(columns={score: "score"}), "replicates"
    elif study.paired is not None and not study.paired.empty:
        values = [c for c in study.best[by] if c in study.paired]
        runs = study.paired.melt(value_vars=values, var_name=by, value_name="score")
        source = "paired draws"
    else:
        runs = study.best.dropna(subset=[score])[[by, score]].rename(columns={score: "score"})
        source = "best trial only"
    runs = runs.assign(task=task, source=source)
    runs["normalized"] = across.normalize(runs["score"].to_numpy(float), study.metric, task, _reference(study))
    return runs


def _reference(study: ReportResult) -> dict[str, float]:
    """What predicting the training mean and the noise alone score on a regression task."""
    config = study.config
    if config is None or config.task.kind != "regression":
        return {}
    from study.train.data import load_task

    data = load_task(config.task)
    centre = float(np.mean(data.y_train))
    residual = data.y_val.ravel() - centre
    noise = float(getattr(config.task, "noise", 0.0))
    if study.metric.endswith("mae"):
        return {"chance": float(np.mean(np.abs(residual))), "floor": noise * math.sqrt(2 / math.pi)}
    return {"chance": float(np.mean(residual ** 2)), "floor": noise ** 2}


def _page(studies, by, tasks, table, ranked, iqms, improvement, verdict, formats) -> list[tuple]:
    shown = next((f for f in ("png", "svg") if f in formats), None)
    blocks: list[tuple] = [("h1", f"{by} across tasks: {', '.join(tasks)}"), ("h2", "Verdict across tasks"),
                           ("p", f"**{verdict}**"), ("h3", "Per task")]
    blocks.append(("ul", [f"`{task}` ([report](../{s.study_name}/report.html)): {s.verdict.headline}"
                          for task, s in zip(tasks, studies)]))
    sources = ", ".join(f"`{task}`: {src}" for task, src in
                        table.drop_duplicates("task")[["task", "source"]].itertuples(index=False))
    blocks += [
        ("p", f"Studies: {', '.join(f'`{s.study_name}`' for s in studies)}; read from their stores on "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Runs per value and task come from: {sources} "
              "(replicates are the strongest evidence: each value's best configuration retrained with new seeds)."),
        ("h2", f"{by} × task"), ("table", formatted(table)),
        ("p", "Mean score of each value's runs on each task with its 95% t-interval and n, and the mean normalized "
              "score (0 = chance, 1 = the best possible: perfect accuracy, or for a regression task the noise "
              "floor; what predicting the training mean scores is 0). Files: [CSV](tables/value_task.csv)."),
        ("h2", "Ranks per task"), ("table", formatted(ranked)),
        ("p", "Rank of each value on each task by mean normalized score (1 = best, ties share the mean rank), and "
              "the average rank over tasks. Files: [CSV](tables/ranks.csv)."),
        ("h2", "Aggregate: interquartile mean"), ("table", formatted(iqms)),
    ]
    if shown:
        blocks.append(("img", f"figures/iqm.{shown}", "IQM per value"))
    blocks += [
        ("p", "The interquartile mean (the mean of the middle 50%) of all runs' normalized scores over all tasks, "
              "robust to one outlying task or run, with a 95% interval from a stratified bootstrap (runs resampled "
              "within each task, 2,000 times). Computed as in Agarwal et al. (2021), \"Deep Reinforcement Learning "
              "at the Edge of the Statistical Precipice\" (rliable), with numpy and scipy (`study.analysis.across`)."),
        ("h2", "Aggregate: probability of improvement"), ("table", formatted(improvement)),
    ]
    if shown:
        blocks.append(("img", f"figures/improvement.{shown}", "Probability of improvement"))
    blocks.append(("p", "P(X > Y): for each task, the chance that a random run of X scores better than a random run "
                        "of Y (ties count half), averaged over tasks; above 0.5 X tends to beat Y. 95% interval from "
                        "the same stratified bootstrap. With few runs per task these intervals are wide: they say how "
                        "much the tasks agree, not how large the differences are."))
    return blocks
