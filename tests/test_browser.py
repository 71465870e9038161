"""What users see in a real browser (headless Chromium): `scripts/check_ui.py` run as a test.

A tiny tracked study and its report, then `study ui` (runs table, a trial's page, the report's
figures in MLflow's artifact viewer) and `study dashboard` (the study and its metric name). Skipped,
with the reason, where Chromium is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_ui.py"


def _check_ui():
    spec = importlib.util.spec_from_file_location("check_ui", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~1.5-2.5 minutes on 2 cores: training, the report, two servers, a browser
def test_users_see_the_trials_the_report_figures_and_the_dashboard_in_a_browser(tmp_path):
    check_ui = _check_ui()
    if reason := check_ui.skip_reason():
        pytest.skip(reason)

    seen = check_ui.check(tmp_path / "study", shots=tmp_path / "shots", say=lambda message: None)

    assert any("trial-0001 GRU-8x1" in line for line in seen), seen
    assert any("figures drawn" in line for line in seen), seen
    assert len(list((tmp_path / "shots").glob("*.png"))) >= 5
