"""Smoke test of benchmarks/many_workers.py: its `--quick` run (4 and 8 forked workers on a real
PostgreSQL, scripted trials) passes its own checks and prints its table. About two minutes on two
cores; it writes nothing to benchmarks/RESULTS.md (`--quick` never does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_claims_exactly_the_target_with_no_duplicates():
    pytest.importorskip("psycopg")
    pytest.importorskip("pgserver")
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    done = subprocess.run([sys.executable, "benchmarks/many_workers.py", "--quick"], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| claim |")]
    assert len(rows) >= 3 and all(row.rstrip().endswith("| ok |") for row in rows), rows
    assert "**all passed**" in done.stdout
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text() == results
