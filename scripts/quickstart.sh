#!/usr/bin/env bash
# The README's main job on a fresh machine: create .venv, install rnn-study, run the offline quick
# study (sweeps/quick.yaml), print its trials and write its report to reports/quick/. Stores land
# in ./mlruns (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
.venv/bin/study sweep sweeps/quick.yaml
.venv/bin/study show quick
.venv/bin/study report quick
echo "Report: reports/quick/report.html   Browse every trial: .venv/bin/study ui (then open the printed link)"
