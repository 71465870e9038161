"""The Model Registry: the best trial of each compared value, registered on request.

`register_best` registers, for each value of the study's compared dimensions (e.g. each cell), the
logged MLflow Model of its best completed trial as a version of one registered model named after
the study, with the alias `best-<value>` (moved to the new version when a later call finds a better
trial) and the verdict line as the version's description. It is opt-in: `study register STUDY`, or
`register: true` in the sweep file. Works on a local SQLite store and on a tracking server alike
(both serve the registry through `MlflowClient`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from study.analysis.scoring import best_per_value
from study.spec.hyperparameters import HYPERPARAMETERS
from study.store.parent_summary import VERDICT_TAG
from study.store.stores import Stores
from study.store.tracking import client_for, load_runs


@dataclass(frozen=True)
class Registered:
    """One registered model version: which value's best trial it is, and where it lives."""

    value: str  # the compared value, e.g. "GRU" ("GRU-64" for several dimensions)
    alias: str  # "best-GRU"
    trial: int
    run_id: str
    model_name: str
    version: str
    score: float


def alias_for(value: str) -> str:
    """`best-<value>`, in the characters MLflow allows in an alias (letters, digits, `-`, `_`)."""
    return "best-" + re.sub(r"[^A-Za-z0-9_-]+", "_", value)


def register_best(study_name: str, stores: Stores, compare: list[str] | None = None,
                  description: str | None = None, model_name: str | None = None) -> list[Registered]:
    """Register the best trial's model of each compared value; return what was registered.

    `compare` defaults to the study's scientific dimensions; `description` becomes each version's
    description; by default the verdict line that `study report` last put on the parent run (its
    `verdict` tag), or, before any report, one that names the trial and its score. A version
    of the same run already registered is reused (no duplicate versions on a second call). A value
    whose best trial logged no MLflow Model (`log_models: false`, or a study logged before trials'
    models were MLflow Models) is skipped: LookupError if none has one.
    """
    from study.store.trials import load_trial

    table = stores.trials(study_name)
    if table.empty:
        raise LookupError(f"study {study_name!r} has no trials to register")
    config = load_trial(study_name, int(table["trial"].iloc[0]), stores.optuna_storage()).config
    dimensions = compare if compare is not None else list(config.scientific)
    choices = [name for name in HYPERPARAMETERS if name in table]
    for dimension in dimensions:
        if dimension not in choices:
            raise ValueError(f"cannot compare by {dimension!r}: not a hyperparameter of study {study_name!r}; "
                             f"choose from {', '.join(choices)}")
    score = f"best_{config.objective.metric}"
    best = best_per_value(table, dimensions, score=score, direction=config.objective.direction,
                          config=config).dropna(subset=["trial"])
    client = client_for(stores.tracking_uri)
    name = model_name or study_name
    parents = load_runs(stores.tracking_uri, study_name, "parent")
    verdict = parents.iloc[0].get(f"tags.{VERDICT_TAG}") if not parents.empty else None
    description = description or (verdict if isinstance(verdict, str) and verdict else None)
    found: list[Registered] = []
    for _, row in best.iterrows():
        value = "-".join(str(row[d]) for d in dimensions if d in row) or study_name
        run_id = table.loc[table["trial"] == row["trial"], "mlflow_run_id"].iloc[0]
        if not isinstance(run_id, str) or not run_id:
            continue
        outputs = client.get_run(run_id).outputs.model_outputs or []
        if not outputs:
            continue
        if not found and not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name, description=f"best trial of each compared value of study {study_name}")
        text = description or (f"{study_name}: best trial of {value} (trial {int(row['trial'])}, "
                               f"{score} {row[score]:.4g})")
        model_id = outputs[0].model_id
        # The logged model's own location and id, not `models:/<id>`: MLflow's SQL registry looks that
        # up in the global tracking URI, not this client's (MLflow 3.17).
        version = _version_of(client, name, run_id) or client.create_model_version(
            name, client.get_logged_model(model_id).artifact_location, run_id=run_id, description=text,
            tags={"study": study_name, "trial": str(int(row["trial"])), "value": value}, model_id=model_id)
        client.update_model_version(name, version.version, description=text)
        alias = alias_for(value)
        client.set_registered_model_alias(name, alias, version.version)
        found.append(Registered(value, alias, int(row["trial"]), run_id, name, str(version.version), float(row[score])))
    if not found:
        raise LookupError(f"no trial of study {study_name!r} has a logged MLflow Model to register (a sweep with "
                          "`log_models: false`, or one logged before trials' models were MLflow Models)")
    return found


def _version_of(client, name: str, run_id: str):
    """The version of `name` already registered from `run_id`, if any."""
    return next(iter(client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")), None)
