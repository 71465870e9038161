"""The README documents what the code does: every hyperparameter, task, command and sweep file."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from study.cli import app
from study.config import HYPERPARAMETERS, TASK_NAMES, SweepConfig

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_hyperparameter_is_documented_with_its_default():
    for name, dimension in HYPERPARAMETERS.items():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README has no row for hyperparameter {name}"
        default = dimension.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = str(default)
        assert f"| {shown} |" in row, f"README default for {name} should be {shown}: {row}"


def test_every_task_and_top_level_key_is_documented():
    for task in TASK_NAMES:
        assert f"| `{task}` |" in README, task
    for key in SweepConfig.model_fields:
        assert f"`{key}`" in README, key


def test_every_command_is_documented_and_the_two_commands_exist():
    for command in get_command(app).commands:
        assert f"`study {command}" in README, command
    for script in ("scripts/quickstart.sh", "scripts/test.sh"):
        assert f"bash {script}" in README and (REPO / script).exists()
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
