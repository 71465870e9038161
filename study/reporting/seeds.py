"""The seeds side by side: what each lab notebook reported, the same model reproduced here, and
the tuned best on the same task, all read from the stores (the reported figures come from the
`reported:` block of each seed sweep file, as the notebooks printed them).

A reproduction is the study's trial with the notebook's configuration plus its replicates (new
seeds, validation taken from the training data), summarised as mean ± standard deviation. The
tuned best is the best trial, by validation score, of the study named in `reported.search`, among
trials with the same cell when the reproduction names one.

The notebook's figure is one run, so the status sets it against the range where 95% of single runs
of the reproduction would land (a t prediction interval: mean ± t(0.975, n-1) · sd · √(1 + 1/n),
cut to the metric's range): "reproduced" only when it lies inside, else how far off it is. Beside
it stand the set-up differences that could explain a gap: the training examples used here (after
the validation hold-out, from `task.path` or a `train_size` subset) against the notebook's
(`reported.train_size`, else the standard training set), and a test subset.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy import stats as scipy_stats

from study.analysis import stats
from study.analysis.scoring import best_per_value
from study.analysis.wording import difference, percent
from study.reporting.tables import markdown_table
from study.store.stores import Stores
from study.store.tracking import load_runs
from study.store.trials import study_configs

COLUMNS = ["experiment", "configuration", "source", "metric", "reported", "reproduced_mean", "reproduced_sd",
           "reproduced_n", "status", "setup_differences", "reproduced_low", "reproduced_high", "tuned_best",
           "tuned_configuration", "tuned_study"]
CONFIDENCE = 0.95
# The datasets' own splits, as a notebook loads them (keras.datasets): what it trained and tested on.
STANDARD_TRAIN = {"mnist": 60_000, "fashion_mnist": 60_000, "imdb": 25_000}
STANDARD_TEST = {"mnist": 10_000, "fashion_mnist": 10_000, "imdb": 25_000}


def seeds_table(stores: Stores) -> pd.DataFrame:
    """One row per figure a notebook reported, with its reproduction and the tuned best."""
    configs = study_configs(stores.optuna_storage())
    rows = []
    for name, config in sorted(configs.items()):
        if config.reported is None:
            continue
        trials = stores.trials(name)
        replicates = load_runs(stores.tracking_uri, name, role="replicate")
        search = _search_trials(config.reported.search, configs, stores)
        for reported in config.reported.values:
            rows.append(_row(name, config, reported, trials, replicates, search))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(name, config, reported, trials, replicates, search) -> dict:
    metric = config.reported.metric
    label = ", ".join(f"{k}={v}" for k, v in reported.params.items()) or _describe_fixed(config)
    differences = setup_differences(config)
    row = {"experiment": name, "configuration": label, "source": config.reported.source, "metric": metric,
           "reported": reported.value, "reproduced_mean": math.nan, "reproduced_sd": math.nan, "reproduced_n": 0,
           "reproduced_low": math.nan, "reproduced_high": math.nan, "tuned_best": math.nan, "tuned_configuration": "",
           "tuned_study": config.reported.search or "", "status": "not run",
           "setup_differences": "; ".join(differences)}
    matching = trials[(trials["state"] == "COMPLETE") & _matches(trials, reported.params)] if not trials.empty else trials
    if not matching.empty:
        trial = matching.iloc[0]
        values = [trial[metric]]
        if not replicates.empty and f"metrics.{metric}" in replicates:
            mine = replicates[(replicates["status"] == "FINISHED")
                              & (replicates["tags.replicate_of_trial"] == str(int(trial["trial"])))]
            values += mine[f"metrics.{metric}"].dropna().tolist()
        series = pd.Series(values, dtype=float)
        low, high = one_run_range(series.to_numpy(), metric)
        row.update(reproduced_mean=series.mean(), reproduced_sd=series.std(ddof=1) if len(series) > 1 else math.nan,
                   reproduced_n=len(series), reproduced_low=low, reproduced_high=high,
                   status=status(reported.value, series.mean(), low, high, metric, differences))
    if search is not None and not search.empty:
        pool = search
        cell = reported.params.get("cell", config.fixed_params().get("cell"))
        if cell is not None and "cell" in pool:
            pool = pool[pool["cell"] == cell]
        tuned = best_per_value(pool, []) if not pool.empty else pool
        if not tuned.empty and pd.notna(tuned["trial"].iloc[0]) and metric in pool:
            best = pool.set_index("trial").loc[int(tuned["trial"].iloc[0])]
            row.update(tuned_best=best[metric],
                       tuned_configuration=f"trial {int(best.name)}: {best['cell']} {int(best['units'])} units, "
                                           f"depth {int(best['depth'])}, lr {best['learning_rate']:.2g}")
    return row


def one_run_range(values, metric: str, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Where `confidence` of single runs land, from these runs: a t prediction interval, cut to the
    metric's range (NaN for fewer than two runs)."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    low, high, _ = stats.within(mean - half, mean + half, stats.score_range(metric))
    return low, high


def status(reported: float, mean: float, low: float, high: float, metric: str, differences: list[str]) -> str:
    """Whether the notebook's figure lies within the range of one run here, else how far off it is,
    with the set-up differences that could explain a gap."""
    gap = reported - mean
    off = f"the reported value is {difference(abs(gap), metric)} {'above' if gap > 0 else 'below'}"
    shown = (lambda value: f"{value:.4f}") if percent(metric) else (lambda value: f"{value:.4g}")
    if math.isnan(low):
        text = f"one run only: {off} it; replicate it for a range (study replicate)"
    elif low <= reported <= high:
        return (f"reproduced: the reported value lies within the {CONFIDENCE:.0%} range of one run here "
                f"[{shown(low)}, {shown(high)}]")
    else:
        text = (f"not reproduced: {off} the mean here, outside the {CONFIDENCE:.0%} range of one run "
                f"[{shown(low)}, {shown(high)}]")
    return text + (f"; set-up differs: {'; '.join(differences)}" if differences else "")


def setup_differences(config) -> list[str]:
    """How the data here differ from the notebook's: the training examples (after the validation
    hold-out) against those it trained on, and a test subset; [] when none or unknown."""
    task = config.task
    notebook = config.reported.train_size or STANDARD_TRAIN.get(task.name)
    if notebook is None:
        return []  # a generated task: the notebook's own data are unknown here
    unit = "reviews" if task.is_text else "images"
    here = _sizes_here(task)
    origin = f" from task.path {task.path}" if task.path else ""
    if here is None:
        return [f"training {unit}: unknown (task.path {task.path} cannot be read here; the notebook: {notebook:,})"]
    train, test = here
    found = []
    if train != notebook:
        subset = f", a subset of {task.train_size:,}" if task.train_size else ""
        held = f", less {task.val_fraction:.0%} held out for validation" if task.val_fraction else ""
        found.append(f"{train:,} training {unit} here{origin}{subset}{held} (the notebook: {notebook:,})")
    if config.reported.metric.startswith("test_") and test != STANDARD_TEST[task.name]:
        found.append(f"{test:,} test {unit} here{'' if train != notebook else origin} "
                     f"(the notebook: {STANDARD_TEST[task.name]:,})")
    return found


def _sizes_here(task) -> tuple[int, int] | None:
    """(training, test) examples of this task here: counted from the standard split's sizes, or read
    from `task.path` (None when that cannot be read). Never downloads anything."""
    if task.path is None:
        total = task.train_size or STANDARD_TRAIN[task.name]
        held_out = min(max(round(total * task.val_fraction), 1), total - 1)  # as study.train.data splits it
        return total - held_out, task.test_size or STANDARD_TEST[task.name]
    from study.train.data import load_task  # numpy only; cached, as a report's figures load it too

    try:
        data = load_task(task)
    except Exception:  # noqa: BLE001 - a file gone or unreadable here: the difference is unknown, not an error
        return None
    return len(data.x_train), len(data.x_test)


def _matches(trials: pd.DataFrame, params: dict) -> pd.Series:
    mask = pd.Series(True, index=trials.index)
    for key, value in params.items():
        mask &= trials[key] == value
    return mask


def _describe_fixed(config) -> str:
    fixed = config.fixed_params()
    return f"{fixed.get('cell')}({fixed.get('units')})" + (f" x{fixed['depth']}" if fixed.get("depth", 1) > 1 else "")


def _search_trials(name: str | None, configs: dict, stores: Stores) -> pd.DataFrame | None:
    if not name or name not in configs:
        return None
    return stores.trials(name)


def to_markdown(table: pd.DataFrame) -> str:
    """The seeds table as Markdown: reported | reproduced mean ± sd (n) | tuned best."""
    rows = []
    for row in table.itertuples(index=False):
        reproduced = ("not run" if row.reproduced_n == 0 else
                      f"{row.reproduced_mean:.4f} ± {row.reproduced_sd:.4f} (n={row.reproduced_n})"
                      if row.reproduced_n > 1 else f"{row.reproduced_mean:.4f} (n=1)")
        tuned = "not run" if math.isnan(row.tuned_best) else f"{row.tuned_best:.4f} ({row.tuned_configuration})"
        rows.append({"experiment": row.experiment, "configuration": row.configuration, "metric": row.metric,
                     "reported": f"{row.reported:.4f}", "reproduced here (mean ± sd, n)": reproduced,
                     "status": row.status, "tuned best": tuned, "source": row.source})
    columns = ["experiment", "configuration", "metric", "reported", "reproduced here (mean ± sd, n)", "status",
               "tuned best", "source"]
    return markdown_table(pd.DataFrame(rows, columns=columns)) + "\n"


def write_seeds(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """The seeds table as `seeds.csv` (every column, full precision) and `seeds.md` in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "seeds.csv", index=False)
    (out / "seeds.md").write_text(to_markdown(table))
    return [out / "seeds.csv", out / "seeds.md"]
