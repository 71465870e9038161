#!/usr/bin/env bash
# Set up and run the test suite (the README's test command): creates .venv, installs the project
# with its test extras, installs Debian's Fashion-MNIST files when apt is available (the test that
# reads the real dataset skips without them), then runs pytest on every test not marked `slow`
# (a few minutes on 2 cores). Offline apart from package registries. Arguments go to pytest:
# `bash scripts/test.sh -m slow` runs the slow tests (real worker processes, PostgreSQL, servers),
# `bash scripts/test.sh -m ""` everything; `.ci/run` runs this, then the slow tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
    || echo "note: could not install dataset-fashion-mnist; its test will be skipped"
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# A .venv made when rnn-study pinned tensorflow-cpu: remove it (and any tensorflow laid over it) first;
# pip would otherwise install tensorflow beside it, over the same files (see pyproject.toml).
if .venv/bin/python -m pip show tensorflow-cpu >/dev/null 2>&1; then .venv/bin/python -m pip uninstall -q -y tensorflow-cpu tensorflow; fi
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -q --durations=15 -m "not slow" "$@"
