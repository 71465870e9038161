"""The options several `study` commands share: the two stores, and how long a sweep runs."""

from __future__ import annotations

import typer

from study.spec.settings import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, STORAGE_ENV, TRACKING_ENV


def _store_option(flag: str, what: str, env: str, default: str, from_file: bool) -> typer.models.OptionInfo:
    fallback = f"the sweep file's `{flag[2:].replace('-', '_')}`, else {default}" if from_file else default
    return typer.Option(None, flag, metavar=what.split()[-1], show_default=False,
                        help=f"{what} [env var: {env}; default: {fallback}]")


StorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=False)
TrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI, from_file=False)
# Commands that read a sweep file, whose `storage` / `tracking_uri` come before the defaults.
FileStorageOption = _store_option("--storage", "Optuna storage URL", STORAGE_ENV, DEFAULT_STORAGE, from_file=True)
FileTrackingOption = _store_option("--tracking-uri", "MLflow tracking URI", TRACKING_ENV, DEFAULT_TRACKING_URI,
                                   from_file=True)
UntilDecidedOption = typer.Option(False, "--until-decided", help="add paired draws until every pair of compared values "
                                  "is decided (anytime-valid confidence sequences), as the file's `decide:` does")
MaxTrialsOption = typer.Option(None, "--max-trials", help="with --until-decided: the most trials to spend "
                               "(default: the file's decide.max_trials, else 4 x trials)")
