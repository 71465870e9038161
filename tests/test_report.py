"""Reports from tiny real sweeps and from a store filled by hand: tables match the tracked values,
every figure is written, failures are counted, and bad targets fail before anything is written."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import study.train.data
from study.reporting.build import build_report
from study.reporting.load import ReportError, load_trials
from study.search.sweep import run_sweep
from study.spec.sweep_file import load_sweep, parse_config
from study.store.tracking import SweepTracker

CLASSIFICATION_FIGURES = ("isolation", "distribution", "two_way", "objective_vs_params", "learning_curves",
                          "cost", "importance", "confusion_matrix")
FORMATS = ("png", "pdf")

DIGITS_GRID = """
    # 3 cells x 2 unit counts = 6 trials of 2 epochs: enough for every figure, in seconds.
    name: report-digits
    task: {name: digits}
    space:
      cell: {role: scientific, choices: [SimpleRNN, GRU, LSTM]}
      units: {choices: [4, 8]}
      learning_rate: {value: 0.01}
    trials: 6
    epochs: 2
    batch_size: 256
    sampler: grid
"""

SINE_GRID = """
    name: report-sine
    task: {name: sine, length: 200}
    space:
      cell: {role: scientific, choices: [GRU, LSTM]}
      units: {value: 4}
    trials: 2
    epochs: 2
    batch_size: 256
    sampler: grid
"""


def _write(folder, text: str, name: str):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory, shared_tracking_uri):
    """A real 6-trial digits sweep and its report, built from the sweep file with explicit stores."""
    folder = tmp_path_factory.mktemp("report-digits")
    stores = {"storage": f"sqlite:///{folder}/optuna.db", "tracking_uri": shared_tracking_uri}
    path = _write(folder, DIGITS_GRID, "digits.yaml")
    sweep = run_sweep(load_sweep(path), **stores)
    messages = []
    report = build_report(str(path), out=folder / "report", formats=FORMATS, progress=messages.append, **stores)
    return {"sweep": sweep, "report": report, "messages": messages, **stores}


@pytest.fixture(scope="module")
def sine(tmp_path_factory, shared_tracking_uri):
    """A real 2-trial regression sweep and its report, built from the study name."""
    folder = tmp_path_factory.mktemp("report-sine")
    stores = {"storage": f"sqlite:///{folder}/optuna.db", "tracking_uri": shared_tracking_uri}
    run_sweep(load_sweep(_write(folder, SINE_GRID, "sine.yaml")), **stores)
    return {"report": build_report("report-sine", out=folder / "report", formats=FORMATS, **stores), **stores}


# A hand-filled study: (trial, cell, learning rate, state, score). Trial 2 was pruned at a score higher
# than any completed trial's, so it must not be reported as best; no LSTM trial ran at all.
FILLED = [
    (0, "SimpleRNN", 0.0099, "COMPLETE", 0.80),
    (1, "SimpleRNN", 0.001, "COMPLETE", 0.70),
    (2, "SimpleRNN", 0.003, "PRUNED", 0.95),
    (3, "SimpleRNN", 0.002, "FAIL", None),
    (4, "GRU", 0.002, "COMPLETE", 0.85),
    (5, "GRU", 0.004, "FAIL", None),
    (6, "GRU", 0.005, "FAIL", None),
    (7, "GRU", 0.006, "FAIL", None),
    (8, "GRU", 0.007, "PRUNED", None),
]


def fill_store(tracking_uri: str, name: str) -> None:
    """Write a parent run and one run per FILLED trial, as a sweep would, without training."""
    config = parse_config({
        "name": name, "task": {"name": "digits"}, "trials": 12, "epochs": 3, "batch_size": 32,
        "space": {"cell": {"role": "scientific", "choices": ["SimpleRNN", "GRU", "LSTM"]},
                  "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
    })
    tracker = SweepTracker(tracking_uri, experiment_name=name)
    tracker.open_parent(name, tags={"metric": "val_accuracy", "scientific": "cell", "target_trials": 12},
                        config=json.loads(config.model_dump_json()))
    for number, cell, learning_rate, state, score in FILLED:
        params = {**config.fixed_params(), "cell": cell, "learning_rate": learning_rate, "epochs": 3}
        run = tracker.start_trial(number, params=params, tags={"cell": cell, "seed": number})
        if state == "FAIL":
            run.finish("FAIL", metrics={}, tags={"fail_reason": "loss became nan at epoch 2"})
            continue
        for epoch in (1, 2, 3):
            run.log_epoch(epoch, {"loss": 2.0 / epoch, "val_loss": 2.1 / epoch, "accuracy": 0.3 * epoch,
                                  "val_accuracy": (score or 0.5) - 0.1 * (3 - epoch)})
        metrics = {} if score is None else {"best_val_accuracy": score}
        if state == "COMPLETE":
            metrics |= {"best_epoch": 3, "test_accuracy": score - 0.01, "test_loss": 0.5,
                        "param_count": 226 if cell == "SimpleRNN" else 522, "train_seconds": 3.0,
                        "seconds_per_epoch": 1.0}
        run.finish(state, metrics=metrics, tags={})
    tracker.close_parent(summary={}, best=None, finished=False)


@pytest.fixture(scope="module")
def filled(tmp_path_factory, shared_tracking_uri):
    """The hand-filled study's report: no Optuna study, no logged models, test data 'offline'."""
    folder = tmp_path_factory.mktemp("report-filled")
    fill_store(shared_tracking_uri, "report-filled")
    with pytest.MonkeyPatch.context() as patch:
        def offline(task):
            raise study.train.data.DataError("digits are offline in this test")

        patch.setattr(study.train.data, "load_task", offline)
        report = build_report("report-filled", out=folder / "report", formats=FORMATS,
                              storage=f"sqlite:///{folder}/absent/optuna.db", tracking_uri=shared_tracking_uri)
    return {"report": report, "tracking_uri": shared_tracking_uri}


def written(report, stem: str) -> dict[str, pd.DataFrame]:
    """One table as CSV, Markdown and LaTeX, each parsed back to strings."""
    folder = report.out / "tables"
    csv = pd.read_csv(folder / f"{stem}.csv", dtype=str, keep_default_na=False)
    md_lines = (folder / f"{stem}.md").read_text().strip().splitlines()
    md_rows = [[cell.strip().replace("\\|", "|") for cell in line.strip().strip("|").split("|")] for line in md_lines]
    tex_lines = [line.removesuffix(" \\\\") for line in (folder / f"{stem}.tex").read_text().splitlines()
                 if line.endswith("\\\\")]
    tex_rows = [[cell.strip().replace("\\_", "_") for cell in line.split(" & ")] for line in tex_lines]
    return {
        "csv": csv,
        "md": pd.DataFrame(md_rows[2:], columns=md_rows[0]),
        "tex": pd.DataFrame(tex_rows[1:], columns=tex_rows[0]),
    }


# --------------------------------------------------------------------------- real sweeps


def test_best_per_cell_is_the_max_of_that_cells_tracked_trials(digits):
    trials = load_trials("report-digits", digits['storage'], digits['tracking_uri'])
    assert len(trials) == 6 and set(trials["state"]) == {"COMPLETE"}
    best = digits["report"].best.set_index("cell")
    assert list(best.index) == ["SimpleRNN", "GRU", "LSTM"]
    for cell, group in trials.groupby("cell"):
        top = group.loc[group["best_val_accuracy"].idxmax()]
        assert best.loc[cell, "best_val_accuracy"] == pytest.approx(group["best_val_accuracy"].max())
        assert best.loc[cell, "test_accuracy"] == pytest.approx(top["test_accuracy"])
        assert best.loc[cell, "param_count"] == top["param_count"]
        assert best.loc[cell, "trials"] == best.loc[cell, "complete"] == 2
    # the MLflow read-back agrees with what Optuna recorded for the same trials
    optuna_side = digits["sweep"].trials.set_index("trial")["best_val_accuracy"]
    assert np.allclose(trials.set_index("trial")["best_val_accuracy"], optuna_side.loc[trials["trial"]])


def test_load_trials_gives_params_their_types(digits):
    trials = load_trials("report-digits", digits['storage'], digits['tracking_uri'])
    assert trials["units"].dtype.kind == "i" and set(trials["units"]) == {4, 8}
    assert trials["learning_rate"].dtype.kind == "f"
    assert trials["bidirectional"].map(type).eq(bool).all()
    assert trials["param_count"].notna().all() and trials["seed"].notna().all()
    assert trials["mlflow_run_id"].str.len().eq(32).all()


def test_two_way_table_holds_the_best_of_each_cell_and_units(digits):
    trials = load_trials("report-digits", digits['storage'], digits['tracking_uri'])
    table = digits["report"].two_way.set_index(["cell", "units"])
    assert list(table.columns) == ["trials", "complete", "mean", "best"]
    assert list(table.index) == [(c, u) for c in ("SimpleRNN", "GRU", "LSTM") for u in (4, 8)]
    for (cell, units), group in trials.groupby(["cell", "units"]):
        assert table.loc[(cell, units), "best"] == pytest.approx(group["best_val_accuracy"].max())
        assert table.loc[(cell, units), "mean"] == pytest.approx(group["best_val_accuracy"].mean())
        assert table.loc[(cell, units), "complete"] == len(group) == 1


def test_every_figure_is_written_in_each_format(digits, sine):
    for stem in CLASSIFICATION_FIGURES:
        for fmt in FORMATS:
            path = digits["report"].out / "figures" / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 1000, path
            assert path in digits["report"].files
    for fmt in FORMATS:
        assert (sine["report"].out / "figures" / f"actual_vs_predicted.{fmt}").stat().st_size > 1000
    assert not (digits["report"].out / "figures" / "actual_vs_predicted.png").exists()


def test_csv_markdown_and_latex_carry_the_same_numbers(digits):
    for stem in ("best", "two_way"):
        tables = written(digits["report"], stem)
        assert tables["csv"].equals(tables["md"]), stem
        assert tables["csv"].equals(tables["tex"]), stem
    # The trials CSV is data at full precision; its Markdown and LaTeX are the same numbers rounded once.
    from study.reporting.tables import formatted

    tables = written(digits["report"], "trials")
    exact = pd.read_csv(digits["report"].out / "tables" / "trials.csv")
    assert formatted(exact).astype(str).equals(tables["md"]) and tables["md"].equals(tables["tex"])
    assert not tables["csv"].equals(tables["md"])  # some digits were kept, not rounded away
    best = written(digits["report"], "best")["csv"].set_index("cell")
    for cell, row in digits["report"].best.set_index("cell").iterrows():
        assert float(best.loc[cell, "best_val_accuracy"]) == pytest.approx(row["best_val_accuracy"], rel=1e-3)


def test_report_page_names_both_evaluators_and_links_what_exists(digits):
    report = digits["report"]
    page = (report.out / "report.md").read_text()
    assert "fANOVA" in page and "PED-ANOVA" in page
    assert "logged best-epoch model" in page  # the confusion matrix says which model it shows
    assert "Batch size: 256." in page and "Epochs: 2 per trial" in page  # fixed settings as caveats
    assert "top 3 trials" in page  # the isolation plot's spread is not a seed spread
    for link in pd.Series(page).str.extractall(r"\]\(([^)]+)\)")[0]:
        assert (report.out / link).is_file(), link
    html = (report.out / "report.html").read_text()
    # Figures embedded, so the page shows them in MLflow's artifact viewer too.
    assert '<img src="data:image/png;base64,' in html and "<table" in html and 'src="figures/' not in html
    assert set(report.importances) == {"fANOVA", "PED-ANOVA"} and all(report.importances.values())
    assert any(m.startswith("figure:") for m in digits["messages"])


def test_report_is_logged_to_the_parent_run(digits):
    report = digits["report"]
    assert report.parent_run_id == digits["sweep"].parent_run_id
    client = MlflowClient(digits["tracking_uri"])
    logged = {a.path for a in client.list_artifacts(report.parent_run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures", "report/tables"} <= logged


def test_regression_report_takes_the_lowest_loss(sine):
    report = sine["report"]
    trials = load_trials("report-sine", sine['storage'], sine['tracking_uri'])
    best = report.best.set_index("cell")
    for cell, group in trials.groupby("cell"):
        assert best.loc[cell, "best_val_loss"] == pytest.approx(group["best_val_loss"].min())
    assert report.two_way is None  # units did not vary
    assert "actual_vs_predicted" in (report.out / "report.md").read_text()


# --------------------------------------------------------------------------- a hand-filled store


def test_failed_and_pruned_trials_are_counted(filled):
    best = filled["report"].best.set_index("cell")
    assert list(best.index) == ["SimpleRNN", "GRU"]
    assert best.loc["SimpleRNN", ["trials", "complete", "pruned", "failed"]].tolist() == [4, 2, 1, 1]
    assert best.loc["GRU", ["trials", "complete", "pruned", "failed"]].tolist() == [5, 1, 1, 3]
    assert best.loc["SimpleRNN", "trial"] == 0  # not the pruned trial 2, whose partial score is higher
    assert best.loc["SimpleRNN", "best_val_accuracy"] == pytest.approx(0.80)
    trials = written(filled["report"], "trials")["csv"]
    assert trials["state"].value_counts().to_dict() == {"COMPLETE": 3, "FAIL": 4, "PRUNED": 2}
    assert (trials.loc[trials["state"] == "FAIL", "fail_reason"] == "loss became nan at epoch 2").all()


def test_warnings_name_gaps_failures_edges_and_skipped_figures(filled):
    report = filled["report"]
    text = "\n".join(report.warnings)
    assert "no trial ran with cell = LSTM" in text
    assert "partial sweep: 5 of 12 trials finished" in text
    assert "most trials with cell = GRU failed (3 of 5)" in text
    assert "fewer than 5 completed trials" in text
    assert "`learning_rate` = 0.0099, at the upper edge" in text
    assert "no hyperparameter importance" in text
    assert "test data of task `digits` could not be loaded" in text
    page = (report.out / "report.md").read_text()
    assert "no trial ran with cell = LSTM" in page and "could not be loaded" in page
    for stem in ("isolation", "distribution", "learning_curves", "cost", "objective_vs_params"):
        assert (report.out / "figures" / f"{stem}.png").stat().st_size > 1000, stem
    assert not (report.out / "figures" / "importance.png").exists()
    assert not (report.out / "figures" / "confusion_matrix.png").exists()


# --------------------------------------------------------------------------- refusals


def test_unknown_study_fails_and_writes_nothing(tmp_path, shared_tracking_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReportError, match="no study named 'never-swept'"):
        build_report("never-swept", tracking_uri=shared_tracking_uri)
    with pytest.raises(ReportError, match="no MLflow store"):
        build_report("never-swept", tracking_uri=f"sqlite:///{tmp_path}/nowhere/mlflow.db")
    assert list(tmp_path.iterdir()) == []  # no reports/ folder, no store created


def test_empty_study_fails_and_writes_nothing(tmp_path, shared_tracking_uri):
    SweepTracker(shared_tracking_uri, experiment_name="report-empty").open_parent(
        "report-empty", tags={}, config={"name": "report-empty"})
    with pytest.raises(ReportError, match="has no trial runs yet"):
        build_report("report-empty", out=tmp_path / "out", tracking_uri=shared_tracking_uri)
    assert not (tmp_path / "out").exists()


def test_bad_compare_or_format_fails_and_writes_nothing(tmp_path, filled):
    with pytest.raises(ReportError, match="cannot compare by 'colour'.*choose from cell"):
        build_report("report-filled", out=tmp_path / "a", compare=["colour"], tracking_uri=filled["tracking_uri"])
    with pytest.raises(ReportError, match="unknown figure format 'docx'"):
        build_report("report-filled", out=tmp_path / "b", formats=("png", "docx"), tracking_uri=filled["tracking_uri"])
    assert list(tmp_path.iterdir()) == []


def test_a_report_that_fails_half_way_leaves_the_previous_one_whole(filled, tmp_path, monkeypatch):
    import study.reporting.figure_data

    out = tmp_path / "report"
    first = build_report("report-filled", out=out, formats=("png",), tracking_uri=filled["tracking_uri"])
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert (out / "report.md") in before and first.files

    def crash(data):
        raise RuntimeError("killed while drawing")

    steps = list(study.reporting.figure_data.REPORT_FIGURES)
    monkeypatch.setattr(study.reporting.figure_data, "REPORT_FIGURES", (*steps[:3], ("crash", crash), *steps[3:]))
    with pytest.raises(RuntimeError, match="killed while drawing"):
        build_report("report-filled", out=out, formats=("png",), tracking_uri=filled["tracking_uri"])

    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before  # nothing half-written, nothing deleted, no staging folder left behind
    page = (out / "report.md").read_text()
    for link in pd.Series(page).str.extractall(r"\]\(([^)]+)\)")[0]:
        assert (out / link).is_file(), link


def test_epoch_history_is_one_tidy_row_per_trial_and_epoch(digits, tmp_path):
    from typer.testing import CliRunner

    from study.app.cli import app
    from study.reporting.load import epoch_history

    history = epoch_history("report-digits", digits['storage'], digits['tracking_uri'])
    assert list(history.columns) == ["study", "trial", "cell", "units", "depth", "state", "epoch", "loss",
                                     "val_loss", "accuracy", "val_accuracy"]
    assert len(history) == 6 * 2 and set(history["epoch"]) == {1, 2}
    trials = load_trials("report-digits", digits['storage'], digits['tracking_uri']).set_index("trial")
    best = history.groupby("trial")["val_accuracy"].max()
    assert best.to_dict() == pytest.approx(trials["best_val_accuracy"].to_dict())  # the score is the best epoch

    path = tmp_path / "history.csv"
    out = CliRunner().invoke(app, ["history", "report-digits", "--csv", str(path), "--tracking-uri",
                                   digits["tracking_uri"]])
    assert out.exit_code == 0, out.output
    pd.testing.assert_frame_equal(pd.read_csv(path), history, check_dtype=False)


def test_the_parent_runs_description_carries_the_verdict_and_the_best_table(digits):
    run = MlflowClient(digits["tracking_uri"]).get_run(digits["report"].parent_run_id)
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(f"**Verdict.** {digits['report'].verdict.headline}")
    assert "| cell" in note and "best_val_accuracy" in note


def test_a_report_into_a_file_or_with_an_unusable_storage_is_one_clear_message(filled, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    with pytest.raises(ReportError, match="is a file, not a folder"):
        build_report("report-filled", out=target, formats=("png",), tracking_uri=filled["tracking_uri"])
    report = build_report("report-filled", out=tmp_path / "r", formats=("png",), tracking_uri=filled["tracking_uri"],
                          storage="postgresql://u:secret@127.0.0.1:1/x")
    assert any("no hyperparameter importance: the Optuna study could not be read" in w and "secret" not in w
               for w in report.warnings)


def test_the_reports_trials_csv_says_what_study_show_csv_says(digits, tmp_path):
    # Issue 15: they used to differ in column names (run_id / mlflow_run_id), order and precision.
    from study.app.cli import app
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, ["show", "report-digits", "--storage", digits["storage"], "--csv",
                                     str(tmp_path / "show.csv")])
    assert shown.exit_code == 0, shown.output
    from_optuna = pd.read_csv(tmp_path / "show.csv")
    from_mlflow = pd.read_csv(digits["report"].out / "tables" / "trials.csv")
    assert list(from_mlflow.columns) == list(from_optuna.columns)
    pd.testing.assert_frame_equal(from_mlflow, from_optuna, check_exact=True)


def test_a_trial_with_two_runs_is_reported_once_with_a_warning(tmp_path, shared_tracking_uri):
    # Issue 13, item 3's damage (the study run again after its Optuna store was emptied) used to
    # crash the report: `TypeError: must be real number, not Series` in edge_warnings.
    from study.store.tracking import SweepTracker

    fill_store(shared_tracking_uri, "report-duplicates")
    tracker = SweepTracker(shared_tracking_uri, experiment_name="report-duplicates")
    tracker.attach_parent("report-duplicates")
    again = tracker.start_trial(0, params={"cell": "SimpleRNN", "learning_rate": 0.0099, "epochs": 3},
                                tags={"cell": "SimpleRNN", "seed": 0})
    again.finish("COMPLETE", metrics={"best_val_accuracy": 0.81, "best_epoch": 2, "test_accuracy": 0.8}, tags={})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study.train.data, "load_task", lambda task: (_ for _ in ()).throw(study.train.data.DataError("offline")))
        report = build_report("report-duplicates", out=tmp_path / "report", formats=("png",),
                              storage=f"sqlite:///{tmp_path}/absent/optuna.db", tracking_uri=shared_tracking_uri)
    assert report.trials["trial"].is_unique and len(report.trials) == len(FILLED)
    assert report.trials.set_index("trial").loc[0, "mlflow_run_id"] == again.run_id  # the latest run
    [warning] = [w for w in report.warnings if "repeat trial(s) 0" in w]
    assert again.run_id not in warning and "study doctor report-duplicates" in warning


def test_the_report_counts_a_trial_as_optuna_does_and_names_the_disagreement(tiny_sweep, stores, scripted_training,
                                                                              tmp_path):
    # Issue 13, item 1: the report (MLflow) and `study show` (Optuna) used to count trials
    # differently after a crash between the two stores' writes, with no word.
    from mlflow.tracking import MlflowClient

    scripted_training()
    result = run_sweep(load_sweep(tiny_sweep(trials=3)), **stores)
    run_id = result.trials.set_index("trial").loc[1, "mlflow_run_id"]
    MlflowClient(stores["tracking_uri"]).set_tag(run_id, "state", "FAIL")  # MLflow says otherwise
    report = build_report(result.study_name, out=tmp_path / "report", formats=("png",), **stores)
    assert report.trials.set_index("trial").loc[1, "state"] == "COMPLETE"  # Optuna's, as `study show`
    [note] = [w for w in report.warnings if "disagree" in w]
    assert "trial 1: MLflow FAIL, Optuna COMPLETE" in note and f"study doctor {result.study_name}" in note
