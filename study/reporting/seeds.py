"""The seeds side by side: what each lab notebook reported, the same model reproduced here, and
the tuned best on the same task, all read from the stores (the reported figures come from the
`reported:` block of each seed sweep file, as the notebooks printed them).

A reproduction is the study's trial with the notebook's configuration plus its replicates (new
seeds, validation taken from the training data), summarised as mean ± standard deviation. The
tuned best is the best trial, by validation score, of the study named in `reported.search`, among
trials with the same cell when the reproduction names one.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from study.analysis.scoring import best_per_value
from study.reporting.tables import markdown_table
from study.store.stores import Stores
from study.store.tracking import load_runs
from study.store.trials import study_configs

COLUMNS = ["experiment", "configuration", "source", "metric", "reported", "reproduced_mean", "reproduced_sd",
           "reproduced_n", "tuned_best", "tuned_configuration", "tuned_study", "status"]


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
    row = {"experiment": name, "configuration": label, "source": config.reported.source, "metric": metric,
           "reported": reported.value, "reproduced_mean": math.nan, "reproduced_sd": math.nan, "reproduced_n": 0,
           "tuned_best": math.nan, "tuned_configuration": "", "tuned_study": config.reported.search or "",
           "status": "not run"}
    matching = trials[(trials["state"] == "COMPLETE") & _matches(trials, reported.params)] if not trials.empty else trials
    if not matching.empty:
        trial = matching.iloc[0]
        values = [trial[metric]]
        if not replicates.empty and f"metrics.{metric}" in replicates:
            mine = replicates[(replicates["status"] == "FINISHED")
                              & (replicates["tags.replicate_of_trial"] == str(int(trial["trial"])))]
            values += mine[f"metrics.{metric}"].dropna().tolist()
        series = pd.Series(values, dtype=float)
        row.update(reproduced_mean=series.mean(), reproduced_sd=series.std(ddof=1) if len(series) > 1 else math.nan,
                   reproduced_n=len(series), status="reproduced")
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
                     "tuned best": tuned, "source": row.source})
    columns = ["experiment", "configuration", "metric", "reported", "reproduced here (mean ± sd, n)", "tuned best", "source"]
    return markdown_table(pd.DataFrame(rows, columns=columns)) + "\n"


def write_seeds(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """The seeds table as `seeds.csv` (every column, full precision) and `seeds.md` in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "seeds.csv", index=False)
    (out / "seeds.md").write_text(to_markdown(table))
    return [out / "seeds.csv", out / "seeds.md"]
