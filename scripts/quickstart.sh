#!/usr/bin/env bash
# The README's main job on a fresh machine: create .venv, install rnn-study, run the offline quick
# study (sweeps/quick.yaml), print its trials and write its report to reports/quick/. Stores land
# in ./mlruns (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# A .venv made when rnn-study pinned tensorflow-cpu: remove it (and any tensorflow laid over it) first;
# pip would otherwise install tensorflow beside it, over the same files (see pyproject.toml).
if .venv/bin/python -m pip show tensorflow-cpu >/dev/null 2>&1; then .venv/bin/python -m pip uninstall -q -y tensorflow-cpu tensorflow; fi
.venv/bin/python -m pip install -q -e .
.venv/bin/study sweep sweeps/quick.yaml
.venv/bin/study show quick
.venv/bin/study report quick
echo "Report: reports/quick/report.html   Browse every trial: .venv/bin/study ui (then open the printed link)"
